"""`emitter run`: the daemon. Validates the rules, opens the state, runs triggers and sender.

Lifecycle: `Daemon(config, environ).start()` validates every rule file exactly as
`emitter validate` does (InvalidError listing every problem when any is an error), opens the
state directory, the outbox and the state store, starts the sender and one trigger unit per
group of rules, then `serve()` loops until asked to stop. SIGHUP (or a changed rule file with
`watch`) reloads: the new files are validated first; when invalid the old rules keep running
and the problems are logged; units whose rules did not change keep running untouched.
At the end of standard input with only stdin rules, pending events get `grace` seconds to be
delivered; `undelivered` then says how many are left (the command exits 5 for them).
SIGTERM/SIGINT: triggers stop (what they fired is already durable), the sender gets `grace`
seconds to finish requests in flight, everything else stays in the outbox (a temporary
outbox, as for --dry-run, is drained within `grace` instead: it is deleted at exit).

Under systemd (NOTIFY_SOCKET set) each step is told through notify.Notifier: READY=1 once every
trigger has started and after each reload, RELOADING=1, STOPPING=1, WATCHDOG=1 from `serve()`.

The parts: rule checking and watching in reload.py, the state in runstate.py, the trigger
units in unitset.py, the ending in shutdown.py; this module puts them in order.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from emitter.counters import Metrics
from emitter.daemon import logs
from emitter.daemon.front import DEFAULT_LISTEN, Front, Ports, has_webhooks
from emitter.daemon.health import health_report
from emitter.daemon.metrics import Exposition
from emitter.daemon.notify import Notifier
from emitter.daemon.reload import Checked, RuleWatch, check_rules, recheck
from emitter.daemon.runstate import RunState
from emitter.daemon.settled import settlement_log
from emitter.daemon.shutdown import deliver_after_input, stop_run
from emitter.daemon.unitset import Units
from emitter.delivery.outbox import Outbox
from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
from emitter.delivery.sender import Sender
from emitter.errors import ConfigError, InvalidError
from emitter.settings import Settings
from emitter.sinks.registry import sink_factory
from emitter.state.store import StateStore
from emitter.triggers.base import Dispatch, OnError, TriggerRunner
from emitter.triggers.stdinlines import StdinLines
from emitter.triggers.units import RunnerFactory, make_runner

log = logging.getLogger(logs.LIFECYCLE)

TICK = 0.2  # seconds between looks at signal flags, watched files and due summaries


@dataclass(frozen=True)
class DaemonConfig:
    paths: tuple[str, ...]
    sink: str = "datadog"
    sink_opts: Mapping[str, Any] = field(default_factory=dict)
    state_dir: str | None = None
    state_url: str | None = None  # --state-url: the shared PostgreSQL backend
    dry_run: bool = False  # temporary state directory unless state_dir is given
    listen: str | None = None  # webhook server ADDR:PORT
    metrics_addr: str | None = None
    stdin: bool = False
    watch: bool = False
    watch_interval: float = 2.0
    grace: float = 10.0
    exit_after: float | None = None
    workers: int = 4


class Daemon:
    def __init__(self, config: DaemonConfig, environ: Mapping[str, str],
                 settings: Settings | None = None,
                 runner_factory: RunnerFactory | None = None,
                 notifier: Notifier | None = None) -> None:
        self.config = config
        self.environ = environ
        self.settings = settings or Settings.from_environ(environ)
        self.metrics = Metrics()
        self.traffic = logs.TrafficSummary(self.metrics.snapshot)  # per-rule lines at INFO
        # systemd (Type=notify): nothing is sent unless NOTIFY_SOCKET is set.
        self.notifier = notifier or Notifier(environ)
        self._stop = threading.Event()
        self._started = False  # every trigger unit started: /healthz says ok only then
        self._reload = threading.Event()
        self._watch = RuleWatch(config.paths)
        self._webhook_port = False
        self._stdin: StdinLines | None = None
        self.state: RunState | None = None
        self.pipeline: Pipeline | None = None
        self.sender: Sender | None = None
        self.front = Front(self.health, lambda: Exposition(
            self.metrics, self.state.gauges if self.state else None).answer())
        self.ports = Ports(self.front)
        self.units = Units(runner_factory or self._make_runner, self.front, self._on_error,
                           stdin=config.stdin, grace=config.grace,
                           open_webhook_port=self._open_webhook_port)
        self.input_ended = False  # serve() ended because standard input did
        self.undelivered = 0  # events left in the outbox at shutdown

    @property
    def outbox(self) -> Outbox | None:
        return self.state.outbox if self.state else None

    @property
    def store(self) -> StateStore | None:
        return self.state.store if self.state else None

    @property
    def state_dir(self) -> Path | str | None:
        return self.state.state_dir if self.state else None

    def check_rules(self) -> Checked:
        """Validate and compile the rule files (reload.check_rules)."""
        return check_rules(self.config.paths, self.environ)

    # ---- startup ------------------------------------------------------------------------

    def start(self) -> None:
        ruleset, problems, files = self.check_rules()
        if ruleset is None:
            errors = sum(p.is_error for p in problems)
            raise InvalidError(f"{errors} error(s) in {files} rule file(s); not starting",
                               problems)
        for problem in problems:
            log.warning("rule warning: %s", problem.format_text())
        self._watch.remember()
        printing = self.config.dry_run or self.config.sink == "stdout"
        self.state = RunState.open(self.config.state_dir, self.environ, temporary=printing,
                                   url=self.config.state_url)
        self.pipeline = Pipeline(
            ruleset, self.state.outbox, metrics=self.metrics,
            context=context_factory(self.settings.hostname, self.settings.unified_tags,
                                    self.environ),
            throttler=self.state.backend.throttler(), store=self.state.store,
            backend=self.state.backend,
        )
        self._start_sender(self.state.outbox)
        self._open_ports(ruleset)
        self.units.apply(ruleset, self.pipeline)
        self._started = True
        log.info("started", extra={"rules": len(ruleset.rules), "units": len(self.units),
                                   "state_dir": str(self.state_dir), "sink": self.config.sink})
        self.notifier.ready(self.status())

    def _start_sender(self, outbox: Outbox) -> None:
        factory = sink_factory(self.config.sink, self.settings, **dict(self.config.sink_opts))
        # One writer keeps printed lines whole and in order.
        workers = 1 if self.config.sink in ("stdout", "file") else self.config.workers
        sender = Sender(outbox, factory, workers=workers,
                        on_settled=settlement_log(self.metrics))
        sender.start()
        self.sender = sender

    def _open_ports(self, ruleset: RuleSet) -> None:
        """`--metrics-addr`, and `--listen` (default DEFAULT_LISTEN when a webhook rule
        runs): one front on each, so every port gives the same answers."""
        if self.config.metrics_addr:
            self.ports.open(self.config.metrics_addr, "--metrics-addr")
        if self.config.listen or has_webhooks(ruleset.rules.values()):
            self.ports.open(self.config.listen or DEFAULT_LISTEN, "--listen")
            self._webhook_port = True

    def _open_webhook_port(self) -> None:
        if self._webhook_port:
            return
        try:
            self.ports.open(self.config.listen or DEFAULT_LISTEN, "--listen")
            self._webhook_port = True
        except ConfigError as exc:  # a reload added webhooks: keep running, say why
            self._on_error(None, str(exc))

    def status(self) -> str:
        """One line for systemd's STATUS=: rules, triggers and where it listens."""
        rules = len(self.pipeline.ruleset.rules) if self.pipeline else 0
        ports = ", ".join(f"{host}:{port}" for host, port in self.ports.addresses)
        return (f"{rules} rule(s), {len(self.units)} trigger(s), "
                f"{'listening on ' + ports if ports else 'no port open'}")

    def health(self) -> dict[str, Any]:
        backend = self.state.backend if self.state else None
        return health_report(list(self.units.named()), self.sender, self.ports.dead(),
                             shared=bool(backend and backend.shared),
                             database=backend.database_problem() if backend else None,
                             starting=not self._started)

    def _make_runner(self, kind: str, rules: Sequence[Any], dispatch: Dispatch,
                     on_error: OnError) -> TriggerRunner:
        assert self.store is not None
        if kind == "stdin" and self._stdin is None:
            self._stdin = StdinLines()
        # The daemon's own ports serve webhooks (self.ports): the runner is a route handler.
        return make_runner(kind, rules, dispatch, on_error, store=self.store,
                           listen=None, environ=self.environ, metrics=None, stdin=self._stdin,
                           secret_names=self.units.secret_names,
                           count=self.metrics.inc)

    def _on_error(self, rule_id: str | None, message: str) -> None:
        if rule_id:
            self.metrics.trigger_error(rule_id)
        log.error("trigger error: %s", message, extra={"rule": rule_id or "-"})

    # ---- reload -------------------------------------------------------------------------

    def reload(self) -> bool:
        """Validate the rule files again and switch to them; False (old rules kept) when
        they have errors. systemd hears RELOADING=1, then READY=1 either way."""
        self.notifier.reloading()
        try:
            self._watch.remember()
            ruleset = recheck(self.config.paths, self.environ)
            if ruleset is None:
                return False
            assert self.pipeline is not None
            self.units.apply(ruleset, self.pipeline)
            log.info("reloaded", extra={"rules": len(ruleset.rules), "units": len(self.units)})
            return True
        finally:
            self.notifier.ready(self.status())

    # ---- running ------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def install_signal_handlers(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def serve(self) -> int:
        """Loop until stopped (signal, `exit_after`); returns the exit code (0)."""
        started = time.monotonic()
        next_watch = started + self.config.watch_interval
        while not self._stop.is_set():
            # Short sleeps: a signal handler only sets a flag, looked at here.
            time.sleep(TICK)
            self.notifier.tick()  # the watchdog hears from this loop only while it runs
            if self._reload.is_set():
                self._reload.clear()
                log.info("reload requested")
                self.reload()
            now = time.monotonic()
            if self.config.watch and now >= next_watch:
                next_watch = now + self.config.watch_interval
                if self._watch.changed():
                    log.info("rule files changed")
                    self.reload()
            self._flush_summaries()
            self.traffic.tick()
            if self.units.only_input_ended():
                self.input_ended = True
                deliver_after_input(self.sender, self.state, self.config.grace)
                break
            exit_after = self.config.exit_after
            if exit_after is not None and now - started >= exit_after:
                log.info("exit-after reached")
                break
        return 0

    def _flush_summaries(self) -> None:
        if self.pipeline is None:
            return
        try:
            self.pipeline.flush_summaries()
        except Exception as exc:  # noqa: BLE001 - e.g. outbox full: try again next tick
            log.error("throttle summaries not queued yet: %s", exc)

    def shutdown(self) -> bool:
        """Stop triggers, then the sender within the grace period; close the state.
        True when every in-flight request finished in time."""
        self.notifier.stopping()
        if self.pipeline is not None:
            log.info("stopping", extra={"grace": self.config.grace})
        finished, self.undelivered = stop_run(
            self.ports, self.units, self.sender, self.state, grace=self.config.grace,
            flush=self._flush_summaries, input_ended=self.input_ended)
        if self.state is not None:
            self.state.close()
        self.notifier.close()
        if self.pipeline is not None:
            self.traffic.flush()
            log.info("stopped", extra={"pending": self.undelivered,
                                       "in_flight_finished": finished})
        return finished
