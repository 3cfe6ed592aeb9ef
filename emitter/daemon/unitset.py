"""The trigger units a run keeps: started, kept or restarted to match a rule set (a reload
touches only the units whose rules changed), the webhook unit routed through the front,
and all of them stopped at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from emitter.daemon import logs
from emitter.daemon.front import Front
from emitter.delivery.pipeline import Pipeline, RuleSet
from emitter.triggers.base import OnError, TriggerRunner
from emitter.triggers.childenv import secret_names
from emitter.triggers.units import RunnerFactory, UnitKey, group_units, input_ended

log = logging.getLogger(logs.LIFECYCLE)

READY_TIMEOUT = 5.0  # seconds to wait for a server unit to listen before saying "started"


def unit_name(key: UnitKey) -> str:
    return "/".join(k for k in key if k)


class Units:
    """The running units, keyed by UnitKey, each with the rules it was started for.
    `open_webhook_port` is called when a webhook unit starts (the port may already be open)."""

    def __init__(self, factory: RunnerFactory, front: Front, on_error: OnError, *,
                 stdin: bool, grace: float, open_webhook_port: Callable[[], None]) -> None:
        self._factory = factory
        self._front = front
        self._on_error = on_error
        self._stdin = stdin
        self._grace = grace
        self._open_webhook_port = open_webhook_port
        self._running: dict[UnitKey, tuple[tuple[Any, ...], TriggerRunner]] = {}
        self.secret_names: frozenset[str] = frozenset()  # no child inherits these

    def __len__(self) -> int:
        return len(self._running)

    def named(self) -> Iterator[tuple[str, TriggerRunner]]:
        """(name, runner) of every running unit, for /healthz."""
        for key, (_, runner) in list(self._running.items()):
            yield unit_name(key), runner

    def apply(self, ruleset: RuleSet, pipeline: Pipeline) -> None:
        """Start, keep or restart units so they match `ruleset`."""
        wanted = group_units(ruleset.rules.values(), stdin=self._stdin)
        self.secret_names = secret_names(ruleset.rules.values())
        for key in [k for k in self._running if wanted.get(k) != self._running[k][0]]:
            _, runner = self._running.pop(key)
            if key[0] == "webhook":
                self._front.webhook = None
            runner.stop(self._grace)
            log.info("trigger stopped", extra={"unit": "/".join(key)})
        pipeline.swap(ruleset)
        for key, rules in wanted.items():
            if key not in self._running:
                self._start(key, rules, pipeline)

    def _start(self, key: UnitKey, rules: tuple[Any, ...], pipeline: Pipeline) -> None:
        runner = self._factory(key[0], rules, pipeline.dispatch, self._on_error)
        runner.start()
        wait_ready = getattr(runner, "wait_ready", None)
        if callable(wait_ready) and not wait_ready(READY_TIMEOUT):
            log.warning("trigger not ready yet (still retrying)", extra={"unit": key[0]})
        self._running[key] = (rules, runner)
        self._attach_webhook(key, runner)
        log.info("trigger started", extra={"unit": unit_name(key),
                                           "rules": ",".join(r.id for r in rules)})

    def _attach_webhook(self, key: UnitKey, runner: TriggerRunner) -> None:
        handle = getattr(runner, "handle", None)
        if key[0] != "webhook" or not callable(handle):
            return
        self._front.webhook = handle
        self._open_webhook_port()

    def only_input_ended(self) -> bool:
        """`producer | emitter run --stdin`: stdin was the only trigger and reached its end."""
        if not self._running or any(key[0] != "stdin" for key in self._running):
            return False
        return all(input_ended(unit) for _, unit in self._running.values())

    def stop_all(self, deadline: float) -> None:
        """Stop every unit, each within what is left until `deadline` (monotonic)."""
        for key, (_, runner) in list(self._running.items()):
            runner.stop(max(0.1, deadline - time.monotonic()))
            del self._running[key]
