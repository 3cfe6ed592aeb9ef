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
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from emitter.counters import Metrics
from emitter.daemon import logs
from emitter.daemon.front import DEFAULT_LISTEN, Front, Ports, has_webhooks, webhook_secrets
from emitter.daemon.health import health_report
from emitter.daemon.metrics import Exposition
from emitter.daemon.settled import settlement_log
from emitter.delivery.outbox import Outbox
from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
from emitter.delivery.sender import Sender
from emitter.delivery.throttle import Throttler
from emitter.errors import ConfigError, InvalidError
from emitter.problems import Problem
from emitter.rules.loader import find_rule_files, load_rules
from emitter.settings import Settings
from emitter.sinks.registry import sink_factory
from emitter.state.dirs import resolve_state_dir
from emitter.state.store import StateStore
from emitter.templates.compiler import compile_rules
from emitter.triggers.base import Dispatch, OnError, TriggerRunner
from emitter.triggers.childenv import secret_names
from emitter.triggers.stdinlines import StdinLines
from emitter.triggers.units import RunnerFactory, UnitKey, group_units, input_ended, make_runner
from emitter.validate.pipeline import validate_paths

log = logging.getLogger(__name__)

TICK = 0.2  # seconds between looks at signal flags, watched files and due summaries
STATE_FILE = "state.sqlite3"
READY_TIMEOUT = 5.0  # seconds to wait for a server unit to listen before saying "started"


@dataclass(frozen=True)
class DaemonConfig:
    paths: tuple[str, ...]
    sink: str = "datadog"
    sink_opts: Mapping[str, Any] = field(default_factory=dict)
    state_dir: str | None = None
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
                 runner_factory: RunnerFactory | None = None) -> None:
        self.config = config
        self.environ = environ
        self.settings = settings or Settings.from_environ(environ)
        self.metrics = Metrics()
        self._runner_factory = runner_factory or self._make_runner
        self._units: dict[UnitKey, tuple[tuple[Any, ...], TriggerRunner]] = {}
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._mtimes: dict[str, float] = {}
        self._tmp_state: str | None = None
        self._webhook_port = False
        self._closers: list[Callable[[], None]] = []
        self._stdin: StdinLines | None = None
        self.pipeline: Pipeline | None = None
        self.sender: Sender | None = None
        self.store: StateStore | None = None
        self.outbox: Outbox | None = None
        self.state_dir: Path | None = None
        self._gauges: Callable[[], dict[str, float]] | None = None
        self.front = Front(self.health, lambda: Exposition(self.metrics, self._gauges).answer())
        self.ports = Ports(self.front)
        self.input_ended = False  # serve() ended because standard input did
        self.undelivered = 0  # events left in the outbox at shutdown

    # ---- rules --------------------------------------------------------------------------

    def check_rules(self) -> tuple[RuleSet | None, list[Problem], int]:
        """Validate and compile the rule files: (rules or None when any error, problems,
        files checked). The same checks as `emitter validate`."""
        now = datetime.now(timezone.utc)
        report = validate_paths(list(self.config.paths), now=now, environ=self.environ)
        problems = list(report.problems)
        files = len(report.files)
        if any(p.is_error for p in problems):
            return None, problems, files
        loaded = load_rules(list(self.config.paths))
        compiled, more = compile_rules(loaded.rules)
        problems += [p for p in (*loaded.problems, *more) if p not in problems]
        if any(p.is_error for p in problems):
            return None, problems, files
        logs.add_secrets(webhook_secrets(compiled, self.environ))
        return RuleSet.of(compiled), problems, files

    def _remember_mtimes(self) -> None:
        self._mtimes = _mtimes(self.config.paths)

    # ---- startup ------------------------------------------------------------------------

    def start(self) -> None:
        ruleset, problems, files = self.check_rules()
        if ruleset is None:
            errors = sum(p.is_error for p in problems)
            raise InvalidError(f"{errors} error(s) in {files} rule file(s); not starting",
                               problems)
        for problem in problems:
            log.warning("rule warning: %s", problem.format_text())
        self._remember_mtimes()
        self._open_state()
        assert self.outbox is not None and self.store is not None
        self.pipeline = Pipeline(
            ruleset, self.outbox, metrics=self.metrics,
            context=context_factory(self.settings.hostname, self.settings.unified_tags,
                                    self.environ),
            throttler=Throttler(self.store), store=self.store,
        )
        self._start_sender()
        self._open_ports(ruleset)
        self._apply(ruleset)
        log.info("started", extra={"rules": len(ruleset.rules), "units": len(self._units),
                                   "state_dir": str(self.state_dir), "sink": self.config.sink})

    def _open_state(self) -> None:
        flag = self.config.state_dir
        if (self.config.dry_run or self.config.sink == "stdout") and not flag:
            # Printing runs must not move the real file positions, nor print (and so
            # remove) events the real outbox holds for Datadog.
            self._tmp_state = tempfile.mkdtemp(prefix="emitter-dry-run-")
            flag = self._tmp_state
        self.state_dir = resolve_state_dir(flag, self.environ)
        self.outbox = Outbox.in_dir(self.state_dir)
        self._closers.append(self.outbox.close)
        self.store = StateStore(self.state_dir / STATE_FILE)
        self._closers.append(self.store.close)
        outbox = self.outbox

        def gauges() -> dict[str, float]:
            status = outbox.status()
            return {"pending": status.pending, "in_flight": status.inflight,
                    "dead": status.dead, "bytes": status.bytes,
                    "oldest_age_seconds": status.oldest_age or 0.0}

        self._gauges = gauges

    def _start_sender(self) -> None:
        assert self.outbox is not None
        factory = sink_factory(self.config.sink, self.settings, **dict(self.config.sink_opts))
        # One writer keeps printed lines whole and in order.
        workers = 1 if self.config.sink in ("stdout", "file") else self.config.workers
        sender = Sender(self.outbox, factory, workers=workers,
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

    def health(self) -> dict[str, Any]:
        units = [("/".join(k for k in key if k), runner)
                 for key, (_, runner) in list(self._units.items())]
        return health_report(units, self.sender, self.ports.dead())

    # ---- trigger units ------------------------------------------------------------------

    def _apply(self, ruleset: RuleSet) -> None:
        """Start, keep or restart units so they match `ruleset`."""
        assert self.pipeline is not None
        wanted = group_units(ruleset.rules.values(), stdin=self.config.stdin)
        self._secret_names = secret_names(ruleset.rules.values())  # no child inherits these
        for key in [k for k in self._units if wanted.get(k) != self._units[k][0]]:
            rules, runner = self._units.pop(key)
            if key[0] == "webhook":
                self.front.webhook = None
            runner.stop(self.config.grace)
            log.info("trigger stopped", extra={"unit": "/".join(key)})
        self.pipeline.swap(ruleset)
        for key, rules in wanted.items():
            if key in self._units:
                continue
            runner = self._runner_factory(key[0], rules, self.pipeline.dispatch,
                                          self._on_error)
            runner.start()
            wait_ready = getattr(runner, "wait_ready", None)
            if callable(wait_ready) and not wait_ready(READY_TIMEOUT):
                log.warning("trigger not ready yet (still retrying)", extra={"unit": key[0]})
            self._units[key] = (rules, runner)
            self._attach_webhook(key, runner)
            log.info("trigger started", extra={"unit": "/".join(k for k in key if k),
                                               "rules": ",".join(r.id for r in rules)})

    def _make_runner(self, kind: str, rules: Sequence[Any], dispatch: Dispatch,
                     on_error: OnError) -> TriggerRunner:
        assert self.store is not None
        if kind == "stdin" and self._stdin is None:
            self._stdin = StdinLines()
        # The daemon's own ports serve webhooks (self.ports): the runner is a route handler.
        return make_runner(kind, rules, dispatch, on_error, store=self.store,
                           listen=None, environ=self.environ, metrics=None, stdin=self._stdin,
                           secret_names=self._secret_names)

    def _attach_webhook(self, key: UnitKey, runner: TriggerRunner) -> None:
        handle = getattr(runner, "handle", None)
        if key[0] != "webhook" or not callable(handle):
            return
        self.front.webhook = handle
        if not self._webhook_port:
            try:
                self.ports.open(self.config.listen or DEFAULT_LISTEN, "--listen")
                self._webhook_port = True
            except ConfigError as exc:  # a reload added webhooks: keep running, say why
                self._on_error(None, str(exc))

    def _on_error(self, rule_id: str | None, message: str) -> None:
        if rule_id:
            self.metrics.trigger_error(rule_id)
        log.error("trigger error: %s", message, extra={"rule": rule_id or "-"})

    # ---- reload -------------------------------------------------------------------------

    def reload(self) -> bool:
        """Validate the rule files again and switch to them; False (old rules kept) when
        they have errors."""
        self._remember_mtimes()
        try:
            ruleset, problems, _ = self.check_rules()
        except Exception as exc:  # noqa: BLE001 - e.g. a rule directory removed: keep going
            log.error("reload failed, keeping the old rules: %s", exc)
            return False
        if ruleset is None:
            for problem in problems:
                if problem.is_error:
                    log.error("reload: %s", problem.format_text())
            log.error("reload refused: the rule files have errors; the old rules keep running",
                      extra={"errors": sum(p.is_error for p in problems)})
            return False
        self._apply(ruleset)
        log.info("reloaded", extra={"rules": len(ruleset.rules), "units": len(self._units)})
        return True

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
            if self._reload.is_set():
                self._reload.clear()
                log.info("reload requested")
                self.reload()
            now = time.monotonic()
            if self.config.watch and now >= next_watch:
                next_watch = now + self.config.watch_interval
                if _mtimes(self.config.paths) != self._mtimes:
                    log.info("rule files changed")
                    self.reload()
            self._flush_summaries()
            if self._only_input_ended():
                self._deliver_after_input()
                break
            exit_after = self.config.exit_after
            if exit_after is not None and now - started >= exit_after:
                log.info("exit-after reached")
                break
        return 0

    def _deliver_after_input(self) -> None:
        """`producer | emitter run --stdin` ended: deliver what is pending, for up to
        `grace` seconds; what is left is said at shutdown (`undelivered`)."""
        self.input_ended = True
        log.info("standard input ended and nothing else runs: delivering, then exiting",
                 extra={"pending": self._left(), "grace": self.config.grace})
        if self.sender is not None:
            self.sender.drain(self.config.grace)

    def _left(self) -> int:
        if self.outbox is None:
            return 0
        status = self.outbox.status()
        return status.pending + status.inflight

    def _only_input_ended(self) -> bool:
        """`producer | emitter run --stdin`: stdin was the only trigger and reached its end."""
        if not self._units or any(key[0] != "stdin" for key in self._units):
            return False
        return all(input_ended(unit) for _, unit in self._units.values())

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
        if self.pipeline is not None:
            log.info("stopping", extra={"grace": self.config.grace})
        deadline = time.monotonic() + self.config.grace
        self.ports.close()  # no new requests: webhooks answered so far are durable
        for key, (_, runner) in list(self._units.items()):
            runner.stop(max(0.1, deadline - time.monotonic()))
            del self._units[key]
        self._flush_summaries()
        finished = True
        if self.sender is not None:
            if self._tmp_state:
                # A temporary outbox is deleted below: what the triggers fired just before
                # the stop (--exit-after, Ctrl-C) is printed within the grace, not dropped.
                self.sender.drain(max(0.1, deadline - time.monotonic()))
            finished = self.sender.stop(max(0.1, deadline - time.monotonic()))
        pending = self.undelivered = self._left()
        if self.input_ended and pending:
            kept = ("dropped with the temporary state directory" if self._tmp_state
                    else f"kept in the outbox in {self.state_dir}; `emitter outbox drain` or the "
                    "next `emitter run` sends them")
            log.error("standard input ended: %d event(s) not delivered within --grace "
                      "%.0fs; %s", pending, self.config.grace, kept,
                      extra={"undelivered": pending, "state_dir": str(self.state_dir)})
        for close in reversed(self._closers):
            close()
        self._closers.clear()
        if self._tmp_state:
            shutil.rmtree(self._tmp_state, ignore_errors=True)
        if self.pipeline is not None:
            log.info("stopped", extra={"pending": pending, "in_flight_finished": finished})
        return finished


def _mtimes(paths: Sequence[str]) -> dict[str, float]:
    try:
        files = find_rule_files(list(paths))
    except Exception:  # noqa: BLE001 - a path that vanished counts as a change
        return {}
    found: dict[str, float] = {}
    for path in files:
        try:
            found[path] = os.stat(path).st_mtime
        except OSError:
            found[path] = -1.0
    return found
