"""A rule's template budget: how long one render may run and how large a value it may build.
The defaults, the hard ceiling a rule file cannot raise, and parsing `budget:` from a rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from emitter.rules.durations import parse_duration


@dataclass(frozen=True)
class Budget:
    """`time` in seconds for one render (all its templates); `size` in characters for any one
    string or list a template builds, and for the rendered text."""

    time: float
    size: int

    @property
    def total(self) -> int:
        """What all the strings one render builds may add up to (a loop building parts)."""
        return self.size * TOTAL_FACTOR


TOTAL_FACTOR = 32
DEFAULT = Budget(time=0.1, size=256 * 1024)
# A rule may ask for more, never for more than this: one rule must not hold a trigger long.
CEILING = Budget(time=2.0, size=4 * 1024 * 1024)

_SIZE = re.compile(r"\s*(\d+)\s*(B|KiB|MiB|KB|MB|k|K|M)?\s*")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "k": 1024, "K": 1024, "KB": 1000,
               "MiB": 1024 * 1024, "M": 1024 * 1024, "MB": 1000 * 1000}
SIZE_EXAMPLES = "65536, 64KiB, 1MiB"


def parse_size(value: object) -> int:
    """Characters from `4096`, `64KiB` or `1MiB`; ValueError with a readable message."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, None
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value)):
        number, unit = int(match.group(1)), match.group(2)
    else:
        raise ValueError(f"{value!r} is not a size; write it like {SIZE_EXAMPLES}")
    if number <= 0:
        raise ValueError(f"{value!r}: a size must be more than zero")
    return number * _SIZE_UNITS[unit]


def parse_budget(raw: dict[str, object]) -> tuple[Budget, list[tuple[str, str]]]:
    """The budget a rule's `budget:` mapping asks for, and (key, message) for each bad value
    (a bad or too-large value falls back to the default for that part)."""
    problems: list[tuple[str, str]] = []
    time, size = DEFAULT.time, DEFAULT.size
    if "time" in raw:
        try:
            time = parse_duration(raw["time"])  # type: ignore[arg-type]
        except ValueError as exc:
            problems.append(("time", f"budget.time: {exc}"))
        else:
            if time <= 0 or time > CEILING.time:
                problems.append(("time", f"budget.time: {raw['time']!r} is outside 0 to "
                                 f"{CEILING.time:g}s, the most a rule may ask for"))
                time = DEFAULT.time
    if "size" in raw:
        try:
            size = parse_size(raw["size"])
        except ValueError as exc:
            problems.append(("size", f"budget.size: {exc}"))
        else:
            if size > CEILING.size:
                problems.append(("size", f"budget.size: {raw['size']!r} is over "
                                 f"{CEILING.size // (1024 * 1024)}MiB, the most a rule may "
                                 "ask for"))
                size = DEFAULT.size
    return Budget(time, size), problems
