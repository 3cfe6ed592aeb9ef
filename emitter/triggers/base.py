"""The trigger interface: `Firing`, the `Dispatch` callback, `TriggerRunner` and back-off.

A trigger turns the outside world into `Firing`s and hands them to `dispatch`, synchronously:
dispatch returns only once the resulting events are durable (or raises an `EmitterError`,
e.g. `OutboxFullError`), and only then does the trigger acknowledge its input (answer 202,
save a file position, save a command's last state). Failures are reported through
`on_error(rule_id | None, message)` and retried; they never end the process.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from emitter import backoff
from emitter.firing import Dispatch, Firing, OnError

__all__ = [
    "Backoff", "Dispatch", "Firing", "OnError", "RunnerBase", "TriggerHealth", "TriggerRunner",
]




@dataclass(frozen=True)
class TriggerHealth:
    name: str
    running: bool
    firings: int  # firings dispatched successfully since start
    errors: int
    last_error: str | None = None
    failing: bool = False  # its thread crashed within the last FAILING_WINDOW seconds


FAILING_WINDOW = 30.0  # seconds a crash keeps a runner "failing" in /healthz


class TriggerRunner(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...

    def health(self) -> TriggerHealth: ...


class Backoff(backoff.Backoff):
    """Retrying a failing trigger: the one back-off policy (emitter.backoff), from `first`
    seconds doubling up to `cap`, jittered."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        super().__init__(backoff.BackoffPolicy(first, cap))


class RunnerBase:
    """Bookkeeping shared by the runners: a stop event, a thread, health counters."""

    def __init__(self, name: str, on_error: OnError) -> None:
        self.name = name
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._firings = 0
        self._errors = 0
        self._last_error: str | None = None
        self._crashed_at: float | None = None

    def _start_thread(self, target: Callable[[], None]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._guard(target), name=self.name, daemon=True)
        self._thread.start()

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    target()
                    return
                except Exception as exc:  # noqa: BLE001 - a trigger bug must not end the daemon
                    with self._lock:
                        self._crashed_at = time.monotonic()
                    self.report(None, f"{self.name} crashed: {type(exc).__name__}: {exc}")
                    self._stop.wait(1.0)

        return run

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def report(self, rule_id: str | None, message: str) -> None:
        with self._lock:
            self._errors += 1
            self._last_error = message
        # A broken reporter must not break the trigger.
        with contextlib.suppress(Exception):
            self._on_error(rule_id, message)

    def counted(self, firings: int) -> None:
        with self._lock:
            self._firings += firings

    def health(self) -> TriggerHealth:
        running = self._thread is not None and self._thread.is_alive()
        with self._lock:
            crashed = self._crashed_at
            failing = crashed is not None and time.monotonic() - crashed < FAILING_WINDOW
            return TriggerHealth(self.name, running, self._firings, self._errors,
                                 self._last_error, failing)


def now() -> float:
    return time.time()
