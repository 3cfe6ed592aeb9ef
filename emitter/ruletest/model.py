"""Frozen records for rule test files (`*.test.yaml`) and for the results of running them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from emitter.problems import Location, Problem

DEFAULT_NOW = "2026-01-01T00:00:00Z"
DEFAULT_HOSTNAME = "test-host"

# ---- inputs: one record per trigger kind -------------------------------------------------


@dataclass(frozen=True)
class ParamsInput:
    """Manual trigger: param values as a --vars-file would give them (YAML types kept)."""

    values: Mapping[str, Any]
    kind: Literal["params"] = "params"


@dataclass(frozen=True)
class LinesInput:
    """File trigger: log lines in the order the tailer reads them."""

    lines: tuple[str, ...]
    kind: Literal["lines"] = "lines"


@dataclass(frozen=True)
class WebhookInput:
    """Webhook trigger: one request. `body` is a parsed value, or a str sent verbatim."""

    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["webhook"] = "webhook"


@dataclass(frozen=True)
class CommandResult:
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False


@dataclass(frozen=True)
class CommandInput:
    """Command trigger: successive results of its command."""

    results: tuple[CommandResult, ...]
    kind: Literal["command_results"] = "command_results"


@dataclass(frozen=True)
class ScheduleInput:
    """Schedule trigger: the POSIX times it fired."""

    times: tuple[float, ...]
    kind: Literal["scheduled_times"] = "scheduled_times"


@dataclass(frozen=True)
class StdinInput:
    """Stdin trigger: JSON objects, one per line."""

    objects: tuple[Mapping[str, Any], ...]
    kind: Literal["stdin"] = "stdin"


Input = ParamsInput | LinesInput | WebhookInput | CommandInput | ScheduleInput | StdinInput
INPUT_KINDS = ("params", "lines", "webhook", "command_results", "scheduled_times", "stdin")


@dataclass(frozen=True)
class Step:
    """One input applied at time `at` (POSIX seconds)."""

    at: float
    input: Input
    location: Location


# ---- expectations and cases --------------------------------------------------------------


@dataclass(frozen=True)
class Expectation:
    """`events` (exact list; subset match per event unless `exact`), `no_event`, or `error`."""

    events: tuple[Mapping[str, Any], ...] = ()
    exact: bool = False
    error: str | None = None
    location: Location | None = None

    @property
    def no_event(self) -> bool:
        return not self.events and self.error is None


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class

    name: str
    rule_id: str
    now: float
    steps: tuple[Step, ...]
    expect: Expectation
    location: Location
    until: float | None = None


@dataclass(frozen=True)
class TestFile:
    __test__ = False

    path: str
    rule_files: tuple[str, ...]  # resolved paths
    cases: tuple[TestCase, ...]
    hostname: str = DEFAULT_HOSTNAME
    env: Mapping[str, str] = field(default_factory=dict)


# ---- results ------------------------------------------------------------------------------


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"  # ran, and the outcome differs from the expectation
    ERROR = "error"  # could not run: unknown rule, rule file invalid, input of the wrong kind


@dataclass(frozen=True)
class CaseResult:
    name: str
    rule_id: str
    location: Location
    status: Status
    message: str = ""  # one line: why it failed
    diff: str = ""  # unified diff of expected vs rendered events (JSON, sorted keys)
    events: tuple[Mapping[str, Any], ...] = ()  # what the case produced
    duration: float = 0.0  # seconds

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED


@dataclass(frozen=True)
class FileResult:
    """One test file: its cases' results, or the problems that kept it from running."""

    path: str
    cases: tuple[CaseResult, ...] = ()
    problems: tuple[Problem, ...] = ()
    duration: float = 0.0

    @property
    def broken(self) -> bool:
        return any(p.is_error for p in self.problems)

    def count(self, status: Status) -> int:
        return sum(1 for c in self.cases if c.status is status)


@dataclass(frozen=True)
class RunResult:
    files: tuple[FileResult, ...]

    @property
    def cases(self) -> tuple[CaseResult, ...]:
        return tuple(c for f in self.files for c in f.cases)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.cases) and not any(f.broken for f in self.files)

    def count(self, status: Status) -> int:
        return sum(f.count(status) for f in self.files)
