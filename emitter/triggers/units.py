"""Trigger units: which rules share one TriggerRunner, and building the runner for them.

A unit is one runner over a group of rules: one per schedule or command rule, one per
followed file, one webhook server, one stdin reader. On reload the daemon keeps a unit whose
rules compare equal (Rule records are frozen dataclasses; compiled regexes compare by pattern
and flags) and restarts any other; durable state (file positions, a command's last result,
throttle windows) lives in the state store and carries over.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from emitter.rules.model import Rule
from emitter.triggers.base import Dispatch, OnError, TriggerHealth, TriggerRunner
from emitter.triggers.registry import TRIGGER_TYPES
from emitter.triggers.spec import RunnerOptions
from emitter.triggers.stdinlines import LineHandle, StdinLines

if TYPE_CHECKING:
    from emitter.state.store import StateStore

UnitKey = tuple[str, str]
RunnerFactory = Callable[[str, Sequence[Any], Dispatch, OnError], TriggerRunner]


def unit_key(rule: Rule) -> UnitKey | None:
    """(trigger type, unit) as the rule's trigger declaration groups it; None: no runner."""
    decl = TRIGGER_TYPES[rule.trigger.type]
    return None if decl.runner is None else (decl.name, decl.unit(rule))


def group_units(rules: Iterable[Rule], *, stdin: bool) -> dict[UnitKey, tuple[Rule, ...]]:
    """Rules by unit, in rule order; stdin rules only when `--stdin` was given."""
    units: dict[UnitKey, list[Rule]] = {}
    for rule in rules:
        key = unit_key(rule)
        if key is None or (key[0] == "stdin" and not stdin):
            continue
        units.setdefault(key, []).append(rule)
    return {k: tuple(v) for k, v in units.items()}


def make_runner(
    kind: str, rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, *,
    store: StateStore, listen: str | None = None, environ: Mapping[str, str] | None = None,
    metrics: Callable[[], str] | None = None, stdin: StdinLines | None = None,
    secret_names: Collection[str] = (), count: Callable[[str, str, int], None] | None = None,
) -> TriggerRunner:
    """The runner for one unit of trigger type `kind`, built by its declaration."""
    factory = TRIGGER_TYPES[kind].runner if kind in TRIGGER_TYPES else None
    if factory is None:
        raise ValueError(f"no runner for trigger type {kind!r}")
    options = RunnerOptions(listen=listen, environ=environ, metrics=metrics, stdin=stdin,
                            secret_names=secret_names, count=count)
    return factory(rules, dispatch, on_error, store, options)


def stdin_unit(rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError,
               source: StdinLines | None) -> StdinUnit:
    from emitter.triggers.stdin import StdinRunner

    handle = (source or StdinLines()).handle()
    runner = StdinRunner(rules, dispatch, on_error, stream=cast(BinaryIO, handle))
    return StdinUnit(runner, handle)


class StdinUnit:
    """A StdinRunner whose reads end as soon as it is stopped (see emitter.triggers.stdinlines)."""

    def __init__(self, runner: Any, handle: LineHandle) -> None:
        self.runner = runner
        self._handle = handle
        self.name = runner.name

    def start(self) -> None:
        self.runner.start()

    def stop(self, timeout: float) -> None:
        self._handle.stop()
        self.runner.stop(timeout)

    def health(self) -> TriggerHealth:
        health: TriggerHealth = self.runner.health()
        return health


def input_ended(unit: TriggerRunner) -> bool:
    """True for a stdin unit whose input reached its end (not one that was stopped)."""
    if not isinstance(unit, StdinUnit):
        return False
    return bool(getattr(unit.runner, "reached_eof", False))
