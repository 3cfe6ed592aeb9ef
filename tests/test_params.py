"""Typed variables from --var strings and JSON; example sets for validate."""

from __future__ import annotations

import re
from typing import Any

import pytest

from emitter.errors import UsageError
from emitter.problems import Location, Severity
from emitter.rules.model import (
    ManualTrigger,
    Param,
    Rule,
    Tmpl,
    Trigger,
)
from emitter.rules.params import coerce_vars, convert, example_variable_sets

HERE = Location("r.yaml", 2, 5)


def rule(*params: Param, trigger: Trigger | None = None) -> Rule:
    return Rule(id="r", location=HERE, trigger=trigger or ManualTrigger(), params=params,
                event={"title": Tmpl("t", HERE), "text": Tmpl("x", HERE)})


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("string", " 007 ", " 007 "),
        ("integer", "42", 42),
        ("integer", "-3", -3),
        ("number", "2.5", 2.5),
        ("number", "7", 7),
        ("number", "1e3", 1000.0),
        ("boolean", "yes", True),
        ("boolean", "FALSE", False),
        ("boolean", "1", True),
        ("boolean", "0", False),
        ("list", '["a", 1]', ["a", 1]),
        ("object", '{"a": {"b": null}}', {"a": {"b": None}}),
    ],
)
def test_values_are_converted_by_declared_type(kind: Any, text: str, value: Any) -> None:
    result = convert(Param("p", type=kind), text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    ("kind", "text", "words"),
    [("integer", "4.2", "not an integer"), ("number", "nan", "not a number"),
     ("boolean", "maybe", "not a boolean"), ("list", "[1,", "not ("),
     ("list", '{"a": 1}', "not a list"), ("object", "[]", "not an object")],
)
def test_bad_values_say_why(kind: Any, text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        convert(Param("p", type=kind), text)


def test_defaults_json_values_and_overrides() -> None:
    r = rule(Param("service"), Param("count", type="integer", default=1),
             Param("dry", type="boolean", default=False), Param("tags", type="list", default=[]))
    got = coerce_vars(r, {"service": "pay", "count": "3"}, {"tags": ["a"], "count": 9})
    assert got == {"service": "pay", "count": 3, "dry": False, "tags": ["a"]}


def test_every_problem_is_listed_in_one_usage_error() -> None:
    r = rule(Param("service"), Param("outcome", enum=("success", "failure")),
             Param("count", type="integer"), Param("region"))
    with pytest.raises(UsageError) as info:
        coerce_vars(r, {"servise": "pay", "outcome": "sucess", "count": "x"},
                    {"region": 5})
    message = str(info.value)
    assert "unknown variable 'servise'" in message and "did you mean 'service'?" in message
    assert "outcome: 'sucess' is not one of \"success\", \"failure\"" in message
    assert "count: 'x' is not an integer" in message
    assert "region: 5 from the vars file is not a string" in message
    assert "service: required" in message
    assert "count: required" not in message and "region: required" not in message
    assert info.value.exit_code == 2


def test_a_bool_is_not_an_integer_in_a_vars_file() -> None:
    with pytest.raises(UsageError, match="not an integer"):
        coerce_vars(rule(Param("n", type="integer")), {}, {"n": True})


def test_example_sets_are_examples_then_enum_combinations() -> None:
    r = rule(Param("service", example="pay"),
             Param("outcome", enum=("success", "failure"), example="failure"),
             Param("level", enum=("a", "b")), Param("note", default="n/a"))
    sets, problems = example_variable_sets(r)
    assert problems == []
    assert sets[0] == {"service": "pay", "outcome": "failure", "level": "a", "note": "n/a"}
    assert {(s["outcome"], s["level"]) for s in sets} == {
        ("success", "a"), ("success", "b"), ("failure", "a"), ("failure", "b")}
    assert len(sets) == 4


def test_example_sets_are_bounded_with_a_warning() -> None:
    r = rule(*(Param(f"p{i}", enum=tuple("abcd")) for i in range(4)))
    sets, problems = example_variable_sets(r, limit=10)
    assert len(sets) == 10
    (warning,) = problems
    assert warning.severity is Severity.WARNING and "256 combinations" in warning.message


def test_a_param_without_example_makes_the_rule_unrenderable() -> None:
    r = rule(Param("service", example="pay"), Param("version", location=Location("r.yaml", 9, 7)))
    sets, problems = example_variable_sets(r)
    assert sets == []
    (warning,) = problems
    assert warning.severity is Severity.WARNING
    assert "no example: validate cannot render this rule" in warning.message
    assert warning.location == Location("r.yaml", 9, 7)


def test_no_params_gives_one_empty_set() -> None:
    assert example_variable_sets(rule()) == ([{}], [])
