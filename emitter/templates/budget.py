"""The meter every render (and load-time constant folding) runs under: a deadline and size
bounds checked cooperatively from the sandbox's hooks, since a Python thread cannot be stopped
from outside. Exceeding either raises BudgetExceeded, a typed error of that one firing.

Only repetition can make a render slow (a template's own length bounds everything else), so the
deadline is checked where repetition happens: every call (macros recursing, functions), and
every loop as it starts and each _LOOP_TICK steps (`for` iterates through `iterate`). The
`allow_*` size checks run *before* an operation builds a string or list, so a hostile template
never gets to allocate what it asked for. Both read the thread's current meter (one attribute:
a render's, else an endless one), which costs a little; a template whose parse tree holds
nothing that can grow (names, constants, comparisons, conditions) renders unmetered.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from string import Formatter
from time import monotonic
from typing import Any

from jinja2.exceptions import SecurityError

from emitter.rules.budget import DEFAULT, TOTAL_FACTOR, Budget

MAX_POWER_BITS = 100_000  # `9 ** 10**9`, `n * n` on huge integers
_LOOP_TICK = 64  # loop steps between two deadline checks (a step can be nearly free)


class BudgetExceeded(SecurityError):
    """A template ran over its rule's budget (`budget.time` or `budget.size`)."""


class Meter:
    """One thread's render budget being spent: its deadline, and what it may still build.
    Each thread keeps one, reused from render to render (a render starts often: cheaply)."""

    __slots__ = ("budget", "deadline", "left", "size")

    def __init__(self, budget: Budget = DEFAULT, *, metered: bool = True) -> None:
        self.budget = budget
        self.size = budget.size  # read on every check: one attribute, not two
        # Outside a render nothing is counted and no clock is read: an endless deadline and
        # an endless total (subtracting from infinity leaves infinity).
        self.deadline = float("inf")
        self.left: float = budget.total if metered else float("inf")

    def over_time(self) -> BudgetExceeded:
        return BudgetExceeded(f"the template ran over its time budget of "
                              f"{self.budget.time * 1000:g} ms (raise it with budget.time)")

    def over_size(self, size: int, what: str) -> BudgetExceeded:
        return BudgetExceeded(f"{what} would build {size} characters or items, over the "
                              f"size budget of {self.budget.size} (raise it with budget.size)")

    def over_total(self) -> BudgetExceeded:
        return BudgetExceeded(f"the template built more than {self.budget.total} "
                              "characters in all, over its size budget")

    def charge(self, size: int, what: str) -> None:
        """Refuse before building a value of `size` characters or items."""
        if size > self.size:
            raise self.over_size(size, what)
        self.left -= size
        if self.left < 0:
            raise self.over_total()


# Outside any render (a direct call of the environment): the default bounds, no clock.
_UNMETERED = Meter(metered=False)


class _Local(threading.local):
    """Per thread: its own meter, and the one the hooks charge (the own one while a render
    runs, else _UNMETERED). The hooks read `current` once: no lookup, no `active` flag."""

    def __init__(self) -> None:
        self.own = Meter()
        self.current = _UNMETERED


_local = _Local()


def start(budget: Budget) -> Meter | None:
    """Start metering this thread's render; None when a render is already metered (the outer
    meter, e.g. one for a whole firing, goes on counting)."""
    local = _local
    if local.current is not _UNMETERED:
        return None
    meter = local.own
    meter.budget, meter.size = budget, budget.size
    meter.deadline, meter.left = monotonic() + budget.time, budget.size * TOTAL_FACTOR
    local.current = meter
    return meter


def stop(meter: Meter | None) -> None:
    if meter is not None:
        _local.current = _UNMETERED


@contextmanager
def metered(budget: Budget) -> Iterator[Meter]:
    """`with metered(rule.budget):` around everything one firing renders."""
    meter = start(budget)
    try:
        yield current()
    finally:
        stop(meter)


def current() -> Meter:
    return _local.current


def spent() -> bool:
    """Whether this thread's render has run past its deadline or built more than its total
    (False outside a render): nothing more it renders can succeed."""
    meter = _local.current
    return meter.left < 0 or monotonic() > meter.deadline


def tick() -> None:
    meter = _local.current
    if monotonic() > meter.deadline:
        raise meter.over_time()


_SIZED = (list, tuple, range, dict, str)


def iterate(items: Iterable[Any]) -> Iterable[Any]:
    """A `for` loop's items, the deadline checked as it starts and every _LOOP_TICK steps
    (nested loops stop). A list, tuple, range, dict or string of at most _LOOP_TICK items is
    handed back as it is: the start was its check, so its steps cost nothing extra."""
    meter = _local.current
    if monotonic() > meter.deadline:
        raise meter.over_time()
    if type(items) in _SIZED and len(items) <= _LOOP_TICK:  # type: ignore[arg-type]
        return items
    return _ticking(iter(items), meter)


def _ticking(source: Iterator[Any], meter: Meter) -> Iterator[Any]:
    # _LOOP_TICK items at a time, so a step costs no Python-level bookkeeping; they are
    # values a template already holds (Jinja's iterables have no side effects).
    deadline = meter.deadline
    while True:
        chunk = list(islice(source, _LOOP_TICK))
        yield from chunk
        if len(chunk) < _LOOP_TICK:
            return
        if monotonic() > deadline:
            raise meter.over_time()


def concat(parts: Iterable[Any]) -> str:
    """`a ~ b ~ c`: every part as text, joined, then the size checked. Checking after is
    enough: each part is a value already checked, so one join at most adds them up (a loop
    doubling a string stops at the first join over the budget). The check is written out
    here: `~` is the commonest hook."""
    text = "".join(map(str, parts))
    meter = _local.current
    size = len(text)
    if size > meter.size:
        raise meter.over_size(size, "'~'")
    meter.left -= size
    if meter.left < 0:
        raise meter.over_total()
    return text


def _sized(value: Any) -> bool:
    return isinstance(value, (str, list, tuple, bytes))


def allow_binop(operator: str, left: Any, right: Any) -> None:
    """Before `left <operator> right`: the size of a string or list it would build."""
    if operator == "*":
        if _sized(left) or _sized(right):
            seq, times = (left, right) if _sized(left) else (right, left)
            if isinstance(times, int):
                current().charge(len(seq) * max(times, 0), "'*'")
        elif isinstance(left, int) and isinstance(right, int):
            _bits(left.bit_length() + right.bit_length(), "'*'")
    elif operator == "+" and _sized(left) and _sized(right):
        current().charge(len(left) + len(right), "'+'")
    elif operator == "%" and isinstance(left, str):
        allow_percent(left, right)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 \
            and abs(left) > 1:
        _bits(left.bit_length() * right, "'**'")


def _bits(bits: int, what: str) -> None:
    if bits > MAX_POWER_BITS:
        raise BudgetExceeded(f"{what} would build an integer of more than {MAX_POWER_BITS} bits")


# printf-style conversion: %[(key)][flags][width][.precision][length]type
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)")


def allow_percent(fmt: str, values: Any) -> None:
    """`fmt % values` (and the `format` filter): the widths and precisions it would pad to."""
    args = list(values) if isinstance(values, tuple) else [values]
    position, padding = 0, 0
    for match in _PERCENT.finditer(fmt):
        if match.group(3) == "%":
            continue
        for part in match.group(1), match.group(2):
            if part == "*":
                star = args[position] if position < len(args) else 0
                position += 1
                padding += star if isinstance(star, int) else 0
            elif part:
                padding += int(part)
        position += 1
    current().charge(len(fmt) + padding, "'%' formatting")


_FORMATTER = Formatter()
_NUMBERS = re.compile(r"\d+")


def allow_format(fmt: str, args: Any, kwargs: Any) -> None:
    """`fmt.format(...)`: the widths and precisions in its format specs (nested `{}` in a spec
    take the arguments' integers as the widths they may be)."""
    padding = 0
    try:
        fields = list(_FORMATTER.parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _, _, spec, _ in fields:
        if not spec:
            continue
        padding += sum(int(n) for n in _NUMBERS.findall(spec))
        if "{" in spec:
            values = [*args, *kwargs.values()]
            padding += sum(v for v in values if isinstance(v, int) and not isinstance(v, bool))
    current().charge(len(fmt) + padding, "format()")


def allow_text(size: int, what: str) -> None:
    """Before building `size` characters as `what` (the hot hook: `~`, filters, methods)."""
    meter = _local.current
    if size > meter.size:
        raise meter.over_size(size, what)
    meter.left -= size
    if meter.left < 0:
        raise meter.over_total()
