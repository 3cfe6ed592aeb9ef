"""The schema verdict (jsonschema-rs, emitter.schemaverdict) and the message writer (jsonschema
in the same dialect) agree: keyword by keyword on generated values, where the two libraries'
dialects differ, and on rules.schema.json for every rule and example file plus generated
mutations of valid rule documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from emitter.rules import schemacheck as ruleschema
from emitter.rules.yamlload import load_yaml
from emitter.schemas import load_schema
from emitter.schemaverdict import compile_verdict, message_validator

REPO = Path(__file__).resolve().parent.parent
RULES_SCHEMA = load_schema("rules")
REFERENCE = message_validator(RULES_SCHEMA)
FAST = ruleschema.is_valid


def verdict(schema: Any) -> Any:
    return compile_verdict(schema, lambda: message_validator(schema))
SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats()
           | st.sampled_from([0.0, 1.0, -0.5, 2**70]) | st.text(max_size=3)
           | st.sampled_from(["a", "ab", "1", "{{ x }}"]))
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "_c", "1x", "type"]) | st.text(max_size=2),
                      inner, max_size=3),
    max_leaves=6,
)


# ---- keyword by keyword -------------------------------------------------------------------

SMALL_SCHEMAS: list[Any] = [
    True, False, {},
    {"type": "integer"}, {"type": "number"}, {"type": ["string", "null"]},
    {"type": "boolean"}, {"type": "object"}, {"type": "array"},
    {"const": 1}, {"const": True}, {"const": [1, "a"]}, {"const": {"a": 0}}, {"const": None},
    {"enum": [1, True, "a", None, [0], {"a": False}]}, {"enum": ["a", "ab"]},
    {"pattern": "^a"}, {"pattern": "b$", "minLength": 2}, {"maxLength": 1},
    {"minimum": 0}, {"maximum": 1.5}, {"exclusiveMinimum": 0}, {"exclusiveMaximum": 0},
    {"minItems": 1}, {"maxItems": 1}, {"uniqueItems": True}, {"uniqueItems": False},
    {"items": {"type": "string"}}, {"items": False}, {"minProperties": 1}, {"maxProperties": 1},
    {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
    {"properties": {"a": {}}, "additionalProperties": False},
    {"additionalProperties": {"type": "string"}},
    {"propertyNames": {"pattern": "^[a-z_]+$"}}, {"propertyNames": {"maxLength": 1}},
    {"anyOf": [{"type": "string"}, {"minimum": 1}]},
    {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
    {"allOf": [{"type": "number"}, {"maximum": 2}]}, {"not": {"type": "array"}},
    {"if": {"properties": {"a": {"const": 1}}, "required": ["a"]},
     "then": {"required": ["b"]}, "else": {"maxProperties": 1}},
    {"if": {"type": "string"}, "then": {"minLength": 1}}, {"then": {"type": "string"}},
    {"$defs": {"node": {"type": ["array", "integer"], "items": {"$ref": "#/$defs/node"}}},
     "$ref": "#/$defs/node"},
    {"$defs": {"s": {"type": "string"}}, "type": "object",
     "additionalProperties": {"$ref": "#/$defs/s"}, "title": "t", "errorMessage": "m"},
]


@pytest.mark.parametrize("schema", SMALL_SCHEMAS, ids=range(len(SMALL_SCHEMAS)))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSONISH)
def test_each_keyword_verdict_equals_the_message_writers(schema: Any, value: Any) -> None:
    valid = verdict(schema)(value)
    writer = message_validator(schema)
    assert valid == writer.is_valid(value)
    assert valid == (not list(writer.iter_errors(value)))  # "invalid" always has its errors


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"const": 1}, 1.0, True), ({"const": 1}, True, False), ({"enum": [0]}, False, False),
        ({"uniqueItems": True}, [1, True], True), ({"uniqueItems": True}, [1, 1.0], False),
        ({"uniqueItems": True}, [{"a": 1}, {"a": 1}], False),
        ({"uniqueItems": True}, [[0], [False]], True),
        ({"type": "integer"}, 2.0, True), ({"type": "integer"}, 10**400, True),
        ({"maximum": 1}, 10**400, False), ({"pattern": "b"}, "abc", True),
    ],
)
def test_json_semantics(schema: Any, value: Any, valid: bool) -> None:
    assert Draft202012Validator(schema).is_valid(value) is valid  # the cases mean something
    assert verdict(schema)(value) is valid
    assert message_validator(schema).is_valid(value) is valid


# Where Python's re (plain jsonschema) is not ECMA-262 (jsonschema-rs, and the JSON Schema
# spec): `$` before a final newline, `\d`/`\w` on non-ASCII; and NaN/infinity, not JSON numbers.
DIALECT = [
    ({"pattern": "^[a-z]+$"}, "abc\n"),
    ({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"}, "my-rule\n"),
    ({"pattern": "^\\d+$"}, "\u0663"),
    ({"pattern": "^\\w+$"}, "\u00e9t\u00e9"),
    ({"type": "number"}, float("nan")),
    ({"type": "number"}, float("inf")),
    ({"minimum": 0}, float("nan")),
]


@pytest.mark.parametrize(("schema", "value"), DIALECT, ids=range(len(DIALECT)))
def test_where_the_dialects_differ_the_verdict_is_ecmas_and_it_is_worded(
        schema: Any, value: Any) -> None:
    writer = message_validator(schema)
    if "minimum" not in schema:  # `minimum` ignores non-numbers, NaN included, in both
        assert Draft202012Validator(schema).is_valid(value)  # Python's reading: valid
        assert not verdict(schema)(value)
        assert [e.validator for e in writer.iter_errors(value)] in (["pattern"], ["type"])
    assert verdict(schema)(value) == writer.is_valid(value)


def test_a_rule_id_with_a_trailing_newline_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text('version: 1\nrules:\n  - id: "deploy\\n"\n    trigger: {type: manual}\n'
                    "    event: {title: t, text: x}\n", encoding="utf-8")
    doc, problems = load_yaml(str(path))
    assert doc is not None and problems == []
    assert not FAST(doc.data)
    found = ruleschema.check_rules_schema(doc)
    assert [(p.location.line, p.location.col) for _, p in found if p.location] == [(3, 9)]
    assert "'deploy\\n'" in found[0][1].message


def test_a_value_that_is_not_json_gets_the_message_writers_verdict() -> None:
    import datetime

    check = verdict({"type": "object", "additionalProperties": {"type": "string"}})
    assert not check({"a": datetime.timedelta(1)})
    assert not check({1: 2})
    assert check({"a": "b"})


# ---- rules.schema.json on real files ------------------------------------------------------

RULE_FILES = sorted([*REPO.glob("rules/*.yaml"), *REPO.glob("tests/examples/**/*.yaml")])


def loaded(path: Path) -> Iterator[Any]:
    """The document as the loader sees it, and as plain PyYAML reads it."""
    doc, _ = load_yaml(str(path))
    if doc is not None:
        yield doc.data
    try:
        yield yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return


def verdicts(document: Any) -> tuple[bool, bool, bool]:
    return (FAST(document), REFERENCE.is_valid(document),
            ruleschema._validator().is_valid(document))


@pytest.mark.parametrize("path", RULE_FILES, ids=[str(p.relative_to(REPO)) for p in RULE_FILES])
def test_every_rule_and_example_file_gets_one_verdict(path: Path) -> None:
    for document in loaded(path):
        fast, reference, inlined = verdicts(document)
        assert fast == reference == inlined


def test_the_files_include_both_verdicts() -> None:
    found = {REFERENCE.is_valid(d) for p in RULE_FILES for d in loaded(p)}
    assert found == {True, False}


# ---- mutations of valid rule documents ----------------------------------------------------

VALID_DOCS = [d for p in RULE_FILES for d in loaded(p) if REFERENCE.is_valid(d)]
TRIGGER_TYPES = ["manual", "schedule", "file", "webhook", "command", "stdin"]
WORDS = [*TRIGGER_TYPES, "normal", "low", "high", "error", "eror", "info", "success", "warning",
         "first", "summary", "always", "change", "failure", "string", "list", "tuple", "1x",
         "5m", "5 minutes", "0 9 * * 1-5", "/hooks/x", "hooks", "X-Sig", "X Sig", "{{ x }}", "",
         "HOME", "-id"]


def _names(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node.get("properties", {})) | {n for v in node.values() for n in _names(v)}
    if isinstance(node, list):
        return {n for v in node for n in _names(v)}
    return set()


KEYS = sorted(_names(RULES_SCHEMA) | {"extra", "Type", "evry", "1x", "my-var", ""})
SWAPS = JSONISH | st.sampled_from(WORDS) | st.sampled_from(
    [None, True, False, 0, 1, 1.0, -1, 1.5, float("inf"), [], ["a"], ["a", "a"], {},
     {"type": "manual"}, {"type": "schedule", "every": "1m"}, [{"id": "x"}]])


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    children = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, value in children:
        yield from _paths(value, (*here, key))


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    return [_copy(v) for v in node] if isinstance(node, list) else node


@st.composite  # every drawn value is copied: later steps edit it in place
def mutated(draw: st.DrawFn) -> Any:
    document = _copy(draw(st.sampled_from(VALID_DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for step in path[:-1]:
            parent = parent[step]
        target = parent[path[-1]] if path else document
        op = draw(st.sampled_from(["drop", "add", "swap", "word", "retype"]))
        if op == "drop" and path:
            del parent[path[-1]]
        elif op == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(KEYS))] = _copy(draw(SWAPS))
        elif op == "add" and isinstance(target, list):
            target.append(_copy(draw(SWAPS)))
        elif op in ("swap", "word") and path:
            parent[path[-1]] = _copy(draw(SWAPS if op == "swap" else st.sampled_from(WORDS)))
        elif op == "retype" and isinstance(target, dict) and "type" in target:
            target["type"] = draw(st.sampled_from([*TRIGGER_TYPES, "cron", 1]))
        elif not path:
            document = _copy(draw(SWAPS))
    return document


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_rule_documents_get_one_verdict(document: Any) -> None:
    fast, reference, inlined = verdicts(document)
    assert fast == reference == inlined


def test_mutations_reach_both_verdicts() -> None:
    # Without this the test above could pass by only ever comparing "invalid" with "invalid".
    options = settings(database=None, max_examples=2000)
    changed = find(mutated(), lambda d: REFERENCE.is_valid(d) and d not in VALID_DOCS,
                   settings=options)
    assert FAST(changed)
    broken = find(mutated(), lambda d: not REFERENCE.is_valid(d), settings=options)
    assert not FAST(broken)


# ---- rule-test files (`emitter test` reads them with the same verdict/writer pair) --------

TEST_FILES = sorted([*REPO.glob("rules/*.test.yaml"), *REPO.glob("tests/ruletests/**/*.yaml")])


@pytest.mark.parametrize("path", TEST_FILES, ids=[str(p.relative_to(REPO)) for p in TEST_FILES])
def test_every_rule_test_file_gets_one_verdict(path: Path) -> None:
    from emitter.ruletest import parse

    for document in loaded(path):
        assert parse._valid()(document) == (not list(parse._validator().iter_errors(document)))


def test_the_rule_test_files_include_both_verdicts() -> None:
    from emitter.ruletest import parse

    assert {parse._valid()(d) for p in TEST_FILES for d in loaded(p)} == {True, False}
