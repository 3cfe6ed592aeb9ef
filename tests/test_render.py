"""Rendering a compiled rule: context, when/foreach, fields, tags, and placed problems."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from emitter.errors import InvalidError
from emitter.problems import Location
from emitter.rules.model import ManualTrigger, Rule, Throttle, Tmpl
from emitter.templates.compiler import CompiledRule, compile_rule
from emitter.templates.render import RenderContext, RenderError, render, render_throttle_key

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
CTX = RenderContext(now=NOW, hostname="web-1", environ={"REGION": "eu", "SECRET": "hunter2"})


def at(line: int, col: int = 5) -> Location:
    return Location("r.yaml", line, col)


def make(event: dict[str, Any] | None = None, **options: Any) -> CompiledRule:
    fields: dict[str, Any] = {"title": Tmpl("T", at(10)), "text": Tmpl("X", at(11))}
    for index, (name, value) in enumerate((event or {}).items()):
        if isinstance(value, str):
            value = Tmpl(value, at(20 + index))
        elif isinstance(value, list):
            value = tuple(Tmpl(v, at(40, 10 + i)) for i, v in enumerate(value))
        fields[name] = value
    for name in ("when", "foreach"):
        if isinstance(options.get(name), str):
            options[name] = Tmpl(options[name], at(5 if name == "when" else 6))
    rule = Rule(id="r1", location=at(3), trigger=ManualTrigger(), event=fields,
                description="demo", **options)
    compiled, problems = compile_rule(rule)
    assert compiled is not None, problems
    return compiled


def test_the_context_has_variables_rule_now_hostname_and_only_named_env() -> None:
    compiled = make({"title": "{{ rule.id }}/{{ rule.description }} {{ hostname }} {{ x }}",
                     "text": "{{ now.year }} {{ env.REGION }} {{ env | length }}"},
                    env=("REGION", "ABSENT"))
    (event,) = render(compiled, {"x": 7}, CTX).events
    assert event == {"title": "r1/demo web-1 7", "text": "2025 eu 1"}


def test_environment_variables_not_named_are_unreachable() -> None:
    compiled = make({"text": "{{ env.SECRET }}"}, env=("REGION",))
    outcome = render(compiled, {}, CTX)
    assert outcome.events == () and outcome.problems[0].check == "undefined"
    outcome = render(make({"text": "{{ environ }}"}), {}, CTX)
    assert "undefined variable 'environ'" in outcome.problems[0].message


def test_when_false_skips_and_when_true_renders() -> None:
    compiled = make(when="outcome == 'success'")
    assert render(compiled, {"outcome": "failure"}, CTX).skipped == "when is false"
    assert len(render(compiled, {"outcome": "success"}, CTX).events) == 1


def test_when_with_an_undefined_name_is_a_placed_problem() -> None:
    outcome = render(make(when="outcom == 'x'"), {"outcome": "x"}, CTX)
    (problem,) = outcome.problems
    assert problem.location == at(5) and "undefined variable 'outcom'" in problem.message
    assert "did you mean 'outcome'" in problem.message
    bare = render(make(when="nothing"), {}, CTX)
    assert bare.problems and bare.problems[0].check == "undefined"


def test_foreach_renders_one_event_per_item() -> None:
    compiled = make({"title": "{{ item.name }} of {{ team }}"}, foreach="services")
    outcome = render(compiled, {"services": [{"name": "a"}, {"name": "b"}], "team": "t"}, CTX)
    assert [e["title"] for e in outcome.events] == ["a of t", "b of t"]
    assert render(compiled, {"services": [], "team": "t"}, CTX).skipped


@pytest.mark.parametrize(("value", "words"), [("'abc'", "must give a list"),
                                              ("{'a': 1}", "must give a list"),
                                              ("range(5000)", "more than 1000 items")])
def test_foreach_must_give_a_bounded_list(value: str, words: str) -> None:
    outcome = render(make(foreach=value), {}, CTX)
    assert words in outcome.problems[0].message and outcome.problems[0].location == at(6)


def test_every_undefined_variable_is_reported_in_one_render() -> None:
    compiled = make({"title": "{{ a }}", "text": "{{ b }}", "tags": ["ok", "{{ c }}"]})
    outcome = render(compiled, {}, CTX)
    assert outcome.events == ()
    assert [(p.message.split(" in ")[0], p.location) for p in outcome.problems] == [
        ("undefined variable 'a'", at(20)), ("undefined variable 'b'", at(21)),
        ("undefined variable 'c'", at(40, 11))]


@pytest.mark.parametrize("text", [
    "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ x.__globals__ }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{% endfor %}"])
def test_sandbox_escapes_become_security_problems(text: str) -> None:
    outcome = render(make({"text": text}), {"x": make}, CTX)
    assert [p.check for p in outcome.problems] == ["security"]
    assert outcome.problems[0].location == at(20)


def test_runtime_errors_are_problems_with_the_template_line() -> None:
    outcome = render(make({"text": "line 1\nline 2 {{ 1 // zero }}"}), {"zero": 0}, CTX)
    (problem,) = outcome.problems
    assert "ZeroDivisionError" in problem.message
    assert (problem.location.line, problem.location.col) == (21, 1)  # type: ignore[union-attr]


@pytest.mark.parametrize(("template", "expected"), [("{{ ts }}", 1700000000),
                                                    (" 1700000000\n", 1700000000),
                                                    ("{{ now | timestamp }}", 1748779200)])
def test_date_happened_renders_to_an_integer(template: str, expected: int) -> None:
    (event,) = render(make({"date_happened": template}), {"ts": 1700000000}, CTX).events
    assert event["date_happened"] == expected


@pytest.mark.parametrize(("template", "words"), [
    ('"{{ ts }}"', "a quoted number: remove the quotes"),
    ("'1700000000'", "a quoted number"),
    ("{{ ts / 2 }}", "drop the fraction"),
    ("yesterday", "must render to an integer"),
    ("1_700_000_000", "must render to an integer"),
])
def test_date_happened_that_is_not_an_integer(template: str, words: str) -> None:
    outcome = render(make({"date_happened": template}), {"ts": 1700000000}, CTX)
    (problem,) = outcome.problems
    assert words in problem.message and problem.json_path == "$.date_happened"


def test_a_literal_integer_date_is_kept() -> None:
    (event,) = render(make({"date_happened": 1700000000}), {}, CTX).events
    assert event["date_happened"] == 1700000000


def test_unified_tags_are_added_once_and_the_rule_wins() -> None:
    ctx = RenderContext(now=NOW, unified_tags=("env:prod", "service:api", "team:a", "x:y"))
    (event,) = render(make({"tags": ["env:staging", "team:a"]}), {}, ctx).events
    assert event["tags"] == ["env:staging", "team:a", "service:api", "x:y"]
    (bare,) = render(make(), {}, ctx).events
    assert bare["tags"] == ["env:prod", "service:api", "team:a", "x:y"]
    (off,) = render(make(unified_tags=False), {}, ctx).events
    assert "tags" not in off


def test_rendering_never_shares_mutable_state_between_calls() -> None:
    ctx = RenderContext(now=NOW, unified_tags=("env:prod",))
    compiled = make({"tags": ["a"]})
    first = render(compiled, {}, ctx).events[0]
    first["tags"].append("mutated")
    assert render(compiled, {}, ctx).events[0]["tags"] == ["a", "env:prod"]


def test_throttle_key() -> None:
    compiled = make(throttle=Throttle(key=Tmpl("{{ service }}-{{ rule.id }}", at(8)),
                                      window=60.0))
    assert render_throttle_key(compiled, {"service": "pay"}, CTX) == "pay-r1"
    with pytest.raises(InvalidError) as info:
        render_throttle_key(compiled, {}, CTX)
    assert info.value.problems[0].location == at(8)
    assert render_throttle_key(make(), {}, CTX) == "r1"


@pytest.mark.parametrize(("option", "text", "line"), [
    ("foreach", "payload.alerts", 6),
    ("foreach", "payload.alerts | map(attribute='labels')", 6),
    ("when", "payload.alerts | length > 0", 5),
    ("when", "payload.status.code == 3", 5),
])
def test_a_missing_key_in_foreach_or_when_is_that_firings_placed_problem(
        option: str, text: str, line: int) -> None:
    """It was a raw UndefinedError out of render (exit 3 in validate, HTTP 500 at run time)."""
    outcome = render(make({"title": "{{ item }}"} if option == "foreach" else None,
                          **{option: text}), {"payload": {"status": {}}}, CTX)
    assert outcome.events == () and not outcome.ok
    (problem,) = outcome.problems
    assert problem.rule_id == "r1" and problem.location == at(line)
    assert problem.check == "undefined" and f"undefined value in {option}" in problem.message


def test_a_throttle_key_that_fails_raises_the_typed_render_error() -> None:
    key = Throttle(key=Tmpl("{{ payload.service }}", at(8)), window=60.0)
    compiled = make(throttle=key)
    with pytest.raises(RenderError) as caught:
        render_throttle_key(compiled, {"payload": {}}, CTX)
    assert isinstance(caught.value, InvalidError)
    assert caught.value.problems[0].location == at(8)
