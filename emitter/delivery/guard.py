"""Keeping the sender's threads alive: a guarded loop that logs, counts and backs off each
failure and tries again, and the health record the daemon's /healthz reads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from emitter.backoff import Backoff, BackoffPolicy

log = logging.getLogger("emitter.delivery.sender")
# A failing part retries soon, then every few seconds: a full disk is probed gently and
# delivery resumes within seconds of space coming back.
GUARD_PACING = BackoffPolicy(base=0.1, cap=5.0)


@dataclass(frozen=True)
class SenderHealth:
    """What /healthz says about delivery: `ok` is False while any part is failing or a
    thread has stopped while the sender runs."""

    ok: bool
    failing: tuple[str, ...]  # parts whose last attempt failed (dispatch, sender-N, settler)
    failures: int  # failures since start, all parts together
    last_error: str | None
    unsettled: int  # outcomes held in memory because the outbox could not record them
    threads_alive: bool  # every thread of a running sender is alive


class Health:
    """Failure state of each part of the sender. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing: dict[str, str] = {}
        self._failures = 0
        self._last: str | None = None

    def failed(self, part: str, exc: BaseException, retry_in: float) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._failing[part] = message
            self._failures += 1
            self._last = f"{part}: {message}"
        log.error("delivery %s failed (%s); retrying in %.1fs", part, message, retry_in)
        log.debug("delivery %s failure", part, exc_info=exc)

    def recovered(self, part: str) -> None:
        with self._lock:
            was = self._failing.pop(part, None)
        if was is not None:
            log.warning("delivery %s works again", part)

    def snapshot(self, *, alive: bool, unsettled: int) -> SenderHealth:
        with self._lock:
            failing = tuple(sorted(self._failing))
            return SenderHealth(alive and not failing, failing, self._failures, self._last,
                                unsettled, alive)


def guarded(part: str, step: Callable[[], bool], stop: threading.Event,
            health: Health) -> Callable[[], None]:
    """A thread body running `step` until it returns False or `stop` is set; an exception
    is a failure of `part` (logged, counted, shown in health), retried after a back-off."""

    def run() -> None:
        pause = Backoff(GUARD_PACING)
        while not stop.is_set():
            try:
                if not step():
                    return
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                delay = pause.failed()
                health.failed(part, exc, delay)
                stop.wait(delay)
                continue
            if pause.failures:
                pause.succeeded()
                health.recovered(part)

    return run
