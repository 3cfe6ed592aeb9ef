"""The `command` trigger: runs a command (argv, no shell) every `every` seconds.

Each run gets `timeout` seconds; then its whole process group is killed (SIGKILL), so
children die too, and `exit_code` is -9 with `timed_out` true. Otherwise `exit_code` is the
exit status (negative N when a signal N ended it). Variables: see
emitter.triggers.kinds.command. The child's environment is emitter's without credentials
(emitter.triggers.childenv) but with the variables the rule names in `env:`.

`state` is the result's class: "ok" (exit 0), "failed" (non-zero) or "timed_out". With
`on: always` every run fires; `on: failure` only runs that are not "ok"; `on: change` only a
run whose state differs from the previous run's (output changes do not count: a check's
text often carries timestamps). Before any run is known the previous state is taken as
"ok", so a first run fires under `on: change` only when it fails. The last state is saved
in the StateStore after dispatch returned, so a restart does not fire again for a state
already reported (on the shared backend in the same transaction as the event); if dispatch
fails the state is not saved and the next run fires. On the shared backend an `on: change`
check runs on one replica at a time: each run first takes or renews the store's lease for the
rule (a replica that stops renewing loses it after a slot and its timeout, and another takes
over); on one node the lease is always held.

Runs start at start() and then every `every` seconds from that start (no drift); a run that
overruns its slot skips the slots it covered. A command that cannot be started (not found,
not executable) is reported through `on_error` and tried again at the next slot.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from emitter.errors import EmitterError
from emitter.rules.model import CommandTrigger, Rule
from emitter.state.store import StateStore
from emitter.triggers.base import Dispatch, Firing, OnError, RunnerBase
from emitter.triggers.childenv import child_environ
from emitter.triggers.childenv import secret_names as childenv_secret_names
from emitter.triggers.kinds.command import fires, result_state, result_variables

MAX_OUTPUT = 4096
_NS = "command"
LEASE_MARGIN = 5.0  # seconds a lease outlasts one slot and one run, for slow database trips


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool

    @property
    def state(self) -> str:
        return result_state(self.exit_code, self.timed_out)


class _Tail:
    """Reads a pipe to its end in a thread, keeping only the last `limit` bytes."""

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        self._pipe = pipe
        self._limit = limit
        self.data = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with self._pipe:
            while chunk := self._pipe.read1(65536):  # type: ignore[attr-defined]
                self.data += chunk
                if len(self.data) > 2 * self._limit:
                    del self.data[: -self._limit]

    def text(self, wait: float) -> str:
        self.thread.join(wait)
        return bytes(self.data[-self._limit :]).decode("utf-8", "replace")


def run_command(argv: Sequence[str], timeout: float, limit: int = MAX_OUTPUT,
                env: Mapping[str, str] | None = None) -> RunResult:
    """Run `argv` with a timeout (in `env`, else emitter's environment without credentials);
    raises OSError when it cannot be started."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout kills its children too
        env=dict(env) if env is not None else child_environ(os.environ),
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Tail(proc.stdout, limit), _Tail(proc.stderr, limit)
    timed_out = False
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    duration = time.monotonic() - started
    # A grandchild that left the group could hold the pipes open: do not wait for it long.
    return RunResult(proc.returncode, out.text(1.0), err.text(1.0), duration, timed_out)


class CommandRunner(RunnerBase):
    """Runs the command of each command rule in its own thread."""

    def __init__(
        self,
        rules: Sequence[Rule],
        dispatch: Dispatch,
        on_error: OnError,
        store: StateStore,
        *,
        environ: Mapping[str, str] | None = None,
        secret_names: Collection[str] = (),
    ) -> None:
        names = ",".join(r.id for r in rules)
        super().__init__(f"command:{names}", on_error)
        self._dispatch = dispatch
        self._store = store
        self._environ = os.environ if environ is None else environ
        self._secrets = frozenset(secret_names) | childenv_secret_names(rules)
        self.rules = [r for r in rules if isinstance(r.trigger, CommandTrigger)]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        for rule in self.rules:
            t = threading.Thread(target=self._guard(lambda r=rule: self._loop(r)),  # type: ignore[misc]
                                 name=f"command:{rule.id}", daemon=True)
            t.start()
            self._threads.append(t)
        self._thread = self._threads[0] if self._threads else None

    def stop(self, timeout: float) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _loop(self, rule: Rule) -> None:
        trig = rule.trigger
        assert isinstance(trig, CommandTrigger)
        origin = time.monotonic()
        while not self._stop.is_set():
            self.run_once(rule)
            elapsed = time.monotonic() - origin
            next_slot = (int(elapsed // trig.every) + 1) * trig.every
            self._stop.wait(next_slot - elapsed)

    def run_once(self, rule: Rule) -> RunResult | None:
        """One run of `rule`'s command and, if its `on` says so, one firing."""
        trig = rule.trigger
        assert isinstance(trig, CommandTrigger)
        if trig.on == "change" and not self._leased(rule, trig):
            return None
        try:
            env = child_environ(self._environ, keep=rule.env, secrets=self._secrets)
            result = run_command(trig.command, trig.timeout, env=env)
        except OSError as exc:
            self.report(rule.id, f"command {trig.command[0]!r} cannot run: "
                                 f"{exc.strerror or exc}; retrying next interval")
            return None
        try:
            if self._judge(rule, trig, result):
                self.counted(1)
        except Exception as exc:  # noqa: BLE001 - state not saved: the next run fires
            self.report(rule.id, f"command result not accepted: {exc}")
        return result

    def _judge(self, rule: Rule, trig: CommandTrigger, result: RunResult) -> bool:
        """Fire if `on` says so and save the state: one transaction on the shared backend;
        nothing saved when dispatch refuses. True when it fired."""
        with self._store.batch():
            saved = self._store.get(_NS, rule.id)
            previous = saved["state"] if saved else "ok"
            fired = fires(trig.on, result.state, previous)
            if fired:
                variables = result_variables(trig.command, result, previous)
                self._dispatch([Firing(rule.id, "command", variables, time.time())])
            self._store.put(_NS, rule.id, {"state": result.state,
                                           "exit_code": result.exit_code, "at": time.time()})
        return fired

    def _leased(self, rule: Rule, trig: CommandTrigger) -> bool:
        """Whether this replica holds (took or renewed) the rule's lease for the next slot."""
        try:
            return bool(self._store.hold_lease(f"{_NS}:{rule.id}",
                                               trig.every + trig.timeout + LEASE_MARGIN))
        except EmitterError as exc:  # the database is away: skip this slot, try the next
            self.report(rule.id, f"command check skipped: {exc}")
            return False
