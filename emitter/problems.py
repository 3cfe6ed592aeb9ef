"""Problems as values: what went wrong, where (file:line:col or JSON path), and how bad."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Location:
    """A place in a rule file; line and col are 1-based as editors show them."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class Problem(NamedTuple):
    """One thing wrong with a rule file or a rendered event.

    `check` is a short stable id (e.g. "yaml", "schema", "template", "event", "duplicate-id")
    that output formats and tests can key on; `json_path` is set for rendered-event problems.
    """

    message: str
    location: Location | None = None
    severity: Severity = Severity.ERROR
    rule_id: str | None = None
    json_path: str | None = None
    check: str = "schema"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format_text(self) -> str:
        """`path:line:col: error: message [rule-id]` (the place is `<event>` when unknown)."""
        place = str(self.location) if self.location else "<event>"
        where = f" at {self.json_path}" if self.json_path and self.location else ""
        if self.json_path and not self.location:
            place = f"<event>{self.json_path[1:]}" if self.json_path.startswith("$") else place
        rule = f" [{self.rule_id}]" if self.rule_id else ""
        return f"{place}: {self.severity.value}: {self.message}{where}{rule}"


def closest(word: str, choices: Iterable[object]) -> str | None:
    """The choice most like `word` (difflib, ratio >= 0.6), for "did you mean" hints."""
    import difflib  # only when a message is written: not worth its import at every start

    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[object]) -> str:
    """` (did you mean 'x'?)`, or "" when nothing is close."""
    close = closest(word, choices)
    return f" (did you mean {close!r}?)" if close else ""


def errors_in(problems: list[Problem] | tuple[Problem, ...]) -> list[Problem]:
    return [p for p in problems if p.is_error]
