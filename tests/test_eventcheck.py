"""Checking rendered events: readable messages with JSON paths and rule places, the date
window, and proof that the verdict (jsonschema-rs) agrees with the message writer (jsonschema)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emitter.events.check import check_event, is_valid, schema_problems
from emitter.problems import Location, Severity
from emitter.rules.model import ManualTrigger, Rule, Tmpl
from emitter.schemas import load_schema
from emitter.schemaverdict import message_validator

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
TS = int(NOW.timestamp())
REFERENCE = message_validator(load_schema("event"))


def ok_event(**extra: Any) -> dict[str, Any]:
    return {"title": "Deployed", "text": "body", **extra}


def errors(event: dict[str, Any], rule: Rule | None = None) -> list[tuple[str | None, str]]:
    return [(p.json_path, p.message) for p in check_event(event, now=NOW, rule=rule)
            if p.severity is Severity.ERROR]


@pytest.mark.parametrize(
    ("event", "path", "words"),
    [
        (ok_event(title="x" * 101), "$.title", "title is 101 characters; the limit is 100"),
        (ok_event(title="é" * 101), "$.title", "title is 101 characters"),
        (ok_event(text="x" * 4001), "$.text", "text is 4001 characters; the limit is 4000"),
        (ok_event(aggregation_key="k" * 101), "$.aggregation_key", "the limit is 100"),
        (ok_event(date_happened="1700000000"), "$.date_happened", "quoted number"),
        (ok_event(date_happened=True), "$.date_happened", "must be an integer, not a boolean"),
        (ok_event(priority="high"), "$.priority", "expected one of: normal, low"),
        (ok_event(alert_type="eror"), "$.alert_type", "did you mean 'error'?"),
        (ok_event(tags=["a:b", "c", 3]), "$.tags[2]", "tags[2] must be a string"),
        (ok_event(tags="a:b"), "$.tags", "must be an array, not a string"),
        (ok_event(hots="h"), "$.hots", "unknown field 'hots' (did you mean 'host'?)"),
        ({"text": "only"}, "$.title", "title is required"),
    ],
)
def test_messages_are_readable_and_carry_json_paths(event: dict[str, Any], path: str,
                                                    words: str) -> None:
    found = errors(event)
    assert any(p == path and words in m for p, m in found), found


def test_exactly_100_non_ascii_characters_is_a_valid_title() -> None:
    assert errors(ok_event(title="é" * 100)) == []
    assert errors(ok_event(title="😀" * 100)) == []  # code points, not UTF-16 units or bytes


def test_every_problem_is_reported_at_once() -> None:
    found = errors({"title": "x" * 101, "priority": "urgent", "extra": 1})
    assert {p for p, _ in found} == {"$.title", "$.text", "$.priority", "$.extra"}


def test_with_a_rule_the_place_is_the_template_that_produced_the_value() -> None:
    loc = lambda line, col: Location("r.yaml", line, col)  # noqa: E731
    rule = Rule(id="deploy", location=loc(3, 5), trigger=ManualTrigger(), event={
        "title": Tmpl("{{ t }}", loc(7, 14)), "text": Tmpl("x", loc(8, 13)),
        "tags": (Tmpl("a", loc(9, 14)), Tmpl("{{ n }}", loc(9, 19))),
    })
    problems = check_event({"title": "x" * 101, "text": "x", "tags": ["a", 5, "from-env"],
                            "junk": 1}, now=NOW, rule=rule)
    placed = {p.json_path: (p.location, p.rule_id) for p in problems if p.is_error}
    assert placed["$.title"] == (loc(7, 14), "deploy")
    assert placed["$.tags[1]"] == (loc(9, 19), "deploy")
    assert placed["$.junk"] == (loc(3, 5), "deploy")
    text = next(p for p in problems if p.json_path == "$.title").format_text()
    assert text.startswith("r.yaml:7:14: error: title is 101") and "at $.title" in text


@pytest.mark.parametrize(
    ("offset", "severity", "words"),
    [
        (-390 * 86400, Severity.ERROR, "the limit is 389 days"),
        (-388 * 86400, Severity.WARNING, "older than 18 hours"),
        (-19 * 3600, Severity.WARNING, "Event too far in the past"),
        (-17 * 3600, None, ""),
        (3 * 3600, Severity.WARNING, "in the future"),
        (1 * 3600, None, ""),
    ],
)
def test_the_date_window(offset: int, severity: Severity | None, words: str) -> None:
    problems = check_event(ok_event(date_happened=TS + offset), now=NOW)
    if severity is None:
        assert problems == []
    else:
        assert [(p.severity, p.json_path) for p in problems] == [(severity, "$.date_happened")]
        assert words in problems[0].message


def test_milliseconds_are_recognised() -> None:
    (problem,) = check_event(ok_event(date_happened=TS * 1000), now=NOW)
    assert problem.is_error and "looks like milliseconds" in problem.message


# ---- the fast verdict must be jsonschema's verdict ----------------------------------------

HAND_MADE: list[Any] = [
    ok_event(), ok_event(title="é" * 100), ok_event(title="é" * 101), ok_event(title=""),
    ok_event(date_happened=1.0), ok_event(date_happened=1.5), ok_event(date_happened=True),
    ok_event(date_happened=False), ok_event(date_happened=2**70), ok_event(date_happened=None),
    ok_event(date_happened=float("inf")), ok_event(date_happened=float("nan")),
    ok_event(tags=[]), ok_event(tags=("a",)), ok_event(tags=["a", None]), ok_event(tags={}),
    ok_event(priority="low"), ok_event(priority="LOW"), ok_event(priority=1),
    ok_event(alert_type="success"), ok_event(alert_type=True), ok_event(extra=None),
    {"title": "a"}, {"text": "b"}, {}, [], "event", None, 3, {1: "a", "title": "t", "text": "t"},
    ok_event(host=""), ok_event(source_type_name=["x"]), ok_event(text="x" * 4000),
    ok_event(text="x" * 4001), ok_event(aggregation_key="😀" * 100),
]

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=5,
)
FIELDS = ["title", "text", "date_happened", "priority", "host", "tags", "alert_type",
          "aggregation_key", "source_type_name", "extra", "Title"]
VALUE = st.one_of(
    JSONISH,
    st.sampled_from(["normal", "low", "error", "warning", "info", "success", "x"]),
    st.integers(0, 99).map(lambda n: "é" * 95 + "a" * n),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3),
    st.floats(allow_nan=False).map(float),
)
ANY_EVENT = st.dictionaries(st.sampled_from(FIELDS), VALUE, max_size=9)
LENGTHY = st.integers(95, 105).map(lambda n: "é" * n) | st.text(max_size=4)
# Per-field values mixing valid and near-miss ones, so that most events hinge on one value.
NEAR_VALID = st.fixed_dictionaries(
    {"title": LENGTHY | JSONISH, "text": st.text(max_size=4)},
    optional={
        "date_happened": st.integers() | st.booleans() | st.floats() | JSONISH,
        "priority": st.sampled_from(["normal", "low", "high", "Low"]) | JSONISH,
        "alert_type": st.sampled_from(["error", "warning", "info", "success", "x"]) | JSONISH,
        "tags": st.lists(st.text(max_size=3) | st.integers() | st.booleans(), max_size=3)
        | st.tuples(st.text(max_size=2)) | JSONISH,
        "aggregation_key": LENGTHY | JSONISH,
        "host": st.text(max_size=3) | JSONISH,
        "source_type_name": st.text(max_size=3) | JSONISH,
        "extra": JSONISH,
    },
)
FULL = {"title": "t", "text": "x", "date_happened": 1700000000, "priority": "low",
        "host": "h", "tags": ["a:b"], "alert_type": "info", "aggregation_key": "k",
        "source_type_name": "git"}
TRICKY = (st.booleans() | st.integers() | st.floats() | LENGTHY | st.none()
          | st.sampled_from(["normal", "low", "error", "info", "x"])
          | st.lists(st.text(max_size=2) | st.integers() | st.booleans(), max_size=2)
          | st.tuples(st.text(max_size=2)) | JSONISH)
# A fully valid event with one field changed: the verdict hinges on that one value.
ONE_OFF = st.tuples(st.sampled_from([*FIELDS, "title"]), TRICKY, st.booleans()).map(
    lambda t: {k: v for k, v in {**FULL, t[0]: t[1]}.items() if t[2] or k != "host"})
EVENTS = st.one_of(ONE_OFF, ONE_OFF, ONE_OFF, NEAR_VALID, ANY_EVENT, JSONISH)


@pytest.mark.parametrize("event", HAND_MADE, ids=range(len(HAND_MADE)))
def test_fast_verdict_matches_jsonschema_on_hand_made_cases(event: Any) -> None:
    assert is_valid(event) == REFERENCE.is_valid(event)


@settings(max_examples=1000, deadline=None)
@given(EVENTS)
def test_fast_verdict_matches_jsonschema_on_generated_events(event: Any) -> None:
    assert is_valid(event) == REFERENCE.is_valid(event)


@settings(max_examples=300, deadline=None)
@given(NEAR_VALID)
def test_an_invalid_verdict_always_comes_with_a_message(event: dict[str, Any]) -> None:
    assert bool(schema_problems(event)) == (not REFERENCE.is_valid(event))


def test_a_timedelta_is_not_a_json_value() -> None:
    assert not is_valid(ok_event(date_happened=timedelta(1)))
    assert errors(ok_event(date_happened=timedelta(1)))
