"""Trigger units: which rules share one TriggerRunner, and building the runner for them.

A unit is one runner over a group of rules: one per schedule or command rule, one per
followed file, one webhook server, one stdin reader. On reload the daemon keeps a unit whose
rules compare equal (Rule records are frozen dataclasses; compiled regexes compare by pattern
and flags) and restarts any other; durable state (file positions, a command's last result,
throttle windows) lives in the state store and carries over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, BinaryIO, cast

from emitter.state.store import StateStore
from emitter.triggers.base import Dispatch, OnError, TriggerHealth, TriggerRunner
from emitter.triggers.stdinlines import LineHandle, StdinLines

UnitKey = tuple[str, str]
RunnerFactory = Callable[[str, Sequence[Any], Dispatch, OnError], TriggerRunner]


def unit_key(rule_type: str, rule_id: str, trigger: Any) -> UnitKey | None:
    if rule_type in ("schedule", "command"):
        return (rule_type, rule_id)
    if rule_type == "file":
        return ("file", str(trigger.path))
    if rule_type in ("webhook", "stdin"):
        return (rule_type, "")
    return None  # manual: fired by `emitter fire`/`exec`, nothing to run


def group_units(rules: Iterable[Any], *, stdin: bool) -> dict[UnitKey, tuple[Any, ...]]:
    """Rules by unit, in rule order; stdin rules only when `--stdin` was given."""
    units: dict[UnitKey, list[Any]] = {}
    for rule in rules:
        key = unit_key(rule.trigger.type, rule.id, rule.trigger)
        if key is None or (key[0] == "stdin" and not stdin):
            continue
        units.setdefault(key, []).append(rule)
    return {k: tuple(v) for k, v in units.items()}


def make_runner(
    kind: str, rules: Sequence[Any], dispatch: Dispatch, on_error: OnError, *,
    store: StateStore, listen: str | None, environ: Mapping[str, str],
    metrics: Callable[[], str] | None, stdin: StdinLines | None,
) -> TriggerRunner:
    """The runner for one unit of trigger type `kind`."""
    if kind == "file":
        from emitter.triggers.filetail import FileTailRunner

        return FileTailRunner(rules, dispatch, on_error, store)
    if kind == "schedule":
        from emitter.triggers.schedule import ScheduleRunner

        return ScheduleRunner(rules, dispatch, on_error)
    if kind == "command":
        from emitter.triggers.command import CommandRunner

        return CommandRunner(rules, dispatch, on_error, store)
    if kind == "webhook":
        from emitter.triggers.webhook import WebhookServer

        return WebhookServer(rules, dispatch, on_error, listen=listen, environ=environ,
                             metrics=metrics)
    if kind == "stdin":
        from emitter.triggers.stdin import StdinRunner

        handle = (stdin or StdinLines()).handle()
        runner = StdinRunner(rules, dispatch, on_error, stream=cast(BinaryIO, handle))
        return StdinUnit(runner, handle)
    raise ValueError(f"no runner for trigger type {kind!r}")


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
    """True for a stdin unit whose input reached its end."""
    if not isinstance(unit, StdinUnit):
        return False
    done = getattr(unit.runner, "done", None)
    return bool(done is not None and done.is_set())
