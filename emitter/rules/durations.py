"""Durations as rule files write them ("500ms", "30s", "5m", "1h30m", "2d", "1w" or seconds)."""

from __future__ import annotations

import math
import re

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

# Kept next to the parser so the schema's pattern and the parser cannot drift apart
# (tests/test_rules_schema.py checks the schema uses this exact pattern).
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?(ms|s|m|h|d|w))+\s*$|^\s*\d+(\.\d+)?\s*$"
EXAMPLES = "500ms, 30s, 5m, 1h30m, 2d, 1w or a number of seconds"


def parse_duration(text: str | int | float) -> float:
    """Return the duration in seconds; raise ValueError with a readable message."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration ({EXAMPLES}), got boolean {str(text).lower()}")
    if isinstance(text, (int, float)):
        return _check(float(text), repr(text))
    if not isinstance(text, str):
        raise ValueError(f"expected a duration ({EXAMPLES}), got {type(text).__name__}")
    stripped = text.strip()
    if _NUMBER.fullmatch(stripped):
        return _check(float(stripped), repr(text))
    if not _WHOLE.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a duration; write it like {EXAMPLES}")
    total = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(stripped))
    return _check(total, repr(text))


def _check(seconds: float, shown: str) -> float:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{shown} is not a finite duration")
    if seconds < 0:
        raise ValueError(f"{shown} is negative; a duration must be zero or more")
    return seconds
