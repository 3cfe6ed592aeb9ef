"""Durations as rule files write them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emitter.rules.durations import DURATION_PATTERN, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800),
        ("1w", 604800), ("1h30m", 5400), ("1.5h", 5400), (" 45s ", 45), ("90", 90),
        ("2.5", 2.5), (7, 7), (0.25, 0.25), ("0s", 0),
    ],
)
def test_parses(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5x", "'5x' is not a duration; write it like 500ms, 30s"),
        ("", "'' is not a duration"),
        ("1h 30m", "is not a duration"),
        ("-5s", "is not a duration"),
        ("m", "is not a duration"),
        (True, "got boolean true"),
        (-1, "-1 is negative"),
        (float("nan"), "not a finite duration"),
        (float("inf"), "not a finite duration"),
    ],
)
def test_refuses_with_a_readable_message(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(value)  # type: ignore[arg-type]


@settings(deadline=None)  # no timed assertions: a loaded machine may stall one example
@given(st.text(alphabet="0123456789.mshdw ", max_size=12))
def test_schema_pattern_and_parser_agree(text: str) -> None:
    # The schema's pattern (what editors check) accepts exactly what the parser accepts.
    accepted_by_pattern = re.search(DURATION_PATTERN, text) is not None
    try:
        parse_duration(text)
        parsed = True
    except ValueError:
        parsed = False
    assert accepted_by_pattern == parsed, text
