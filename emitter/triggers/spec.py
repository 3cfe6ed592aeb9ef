"""The record every trigger type declares itself with: the variables it gives templates, how
its runners are built, and how a rule test or a replay feeds it (see emitter.triggers.kinds).

`validate`'s samples, the schema's and README's trigger descriptions, `emitter test`,
`emitter replay` and `emitter run` all read these records; nothing else lists the variables.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from emitter.firing import Dispatch, Firing, OnError
from emitter.problems import Problem
from emitter.rules.model import Rule, Trigger

if TYPE_CHECKING:
    from emitter.state.store import StateStore
    from emitter.triggers.base import TriggerRunner

Sampler = Callable[[Trigger, datetime], Any]


class Variable(NamedTuple):
    """One variable a trigger gives templates. `sample` is what validate renders with: a
    value, or a function of the trigger and validate's `now`."""

    name: str
    type: str  # "string", "integer", "number", "boolean", "object", "JSON"
    description: str
    sample: Any
    open: bool = False  # its shape is the sender's (a JSON body): the sample is only a stand-in


@dataclass(frozen=True)
class RunnerOptions:
    """What `emitter run` knows beyond the rules, for the factories that need it."""

    listen: str | None = None
    environ: Mapping[str, str] | None = None
    metrics: Callable[[], str] | None = None  # the /metrics text, for the webhook server
    stdin: Any = None  # the daemon's StdinLines; None: read sys.stdin directly
    secret_names: Collection[str] = ()  # environment variables no child may inherit
    count: Callable[[str, str, int], None] | None = None  # per-rule counters (Metrics.inc)


@dataclass
class FeedState:
    """What a trigger remembers between the inputs of one rule test (line numbers, the last
    command state), and what it refused or skipped."""

    next_line: int = 1
    last_command: str = "ok"  # the command trigger's state before any run is known
    matcher: Any = None  # the file trigger's LineMatcher, built at the first lines
    problems: list[Problem] = field(default_factory=list)  # inputs the trigger refused
    quiet: list[str] = field(default_factory=list)  # why inputs fired nothing


# One unit's rules -> its runner (not started). A unit is the rules one runner serves.
RunnerFactory = Callable[[Sequence[Rule], Dispatch, OnError, "StateStore", RunnerOptions],
                         "TriggerRunner"]
# (rule, the test input's own value, time, state) -> firings; see each kind's `feed`.
Feeder = Callable[[Rule, Any, float, FeedState], list[Firing]]


def _no_extra(trigger: Trigger) -> tuple[str, ...]:
    return ()


def _one_unit(rule: Rule) -> str:
    return ""


@dataclass(frozen=True)
class TriggerType:
    """One trigger type, declared once."""

    name: str
    fired_by: str  # one sentence: what fires it (the schema's `type` description starts so)
    options: str  # the README's options column (markdown)
    variables: tuple[Variable, ...]
    test_input: str  # the rule-test key its inputs are given under (`lines:`, `webhook:`...)
    runner: RunnerFactory | None  # None: nothing runs in the daemon (manual)
    feed: Feeder
    unit: Callable[[Rule], str] = _one_unit  # rules with the same unit share one runner
    extra_note: str = ""  # variables named by the rule itself, said before the fixed ones
    extra_names: Callable[[Trigger], tuple[str, ...]] = _no_extra  # e.g. a regex's groups
    extra_sample: Any = "example"

    def names(self, trigger: Trigger) -> frozenset[str]:
        """Every variable name this trigger gives templates for a rule with `trigger`."""
        return frozenset(self.extra_names(trigger)) | {v.name for v in self.variables}

    def samples(self, trigger: Trigger, now: datetime) -> dict[str, Any]:
        """Sample values for every name, so validate can render the rule."""
        values: dict[str, Any] = {n: self.extra_sample for n in self.extra_names(trigger)}
        for var in self.variables:
            values[var.name] = var.sample(trigger, now) if callable(var.sample) else var.sample
        return values
