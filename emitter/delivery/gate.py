"""The rate-limit gate every worker of a sink shares: a 429 (or a run of attempts with no
answer) closes it for all of them, and on a shared backend for every replica."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from emitter.delivery.retry import RetryPolicy

log = logging.getLogger(__name__)
# Consecutive failed attempts (no answer, 5xx) before the whole sink backs off: a lone 503
# only delays its own event, a dead intake is probed gently instead of hammered.
FAILURES_BEFORE_PAUSE = 3
SHARED_PAUSE_POLL = 0.5  # seconds between looks at the fleet's shared rate-limit pause


class SharedPause(Protocol):
    """A rate-limit pause every replica sees (emitter.delivery.pgoutbox.PgOutbox)."""

    def share_pause(self, until: float) -> None: ...
    def shared_pause(self) -> float: ...


class Gate:
    """One pause shared by every worker of a sink: a 429 (or a run of failures with no
    answer) closes it until the time the server named, so workers do not retry on their own.
    With `shared` (a shared backend) a 429's pause holds for every replica's senders."""

    def __init__(self, policy: RetryPolicy, rng: random.Random,
                 shared: SharedPause | None = None) -> None:
        self._policy, self._rng = policy, rng
        self._lock = threading.Lock()
        self._until = 0.0  # time.monotonic() when it opens again
        self._failures = 0  # consecutive attempts that got no useful answer
        self._shared = shared
        self._looked = -SHARED_PAUSE_POLL  # time.monotonic() of the last look at `shared`

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)
        if self._shared is not None:
            try:
                self._shared.share_pause(time.time() + seconds)
            except Exception as exc:  # noqa: BLE001 - this replica pauses anyway
                log.warning("rate-limit pause not shared with the other replicas: %s", exc)

    def _look_shared(self) -> None:
        """Adopt the fleet's pause, looked up at most every SHARED_PAUSE_POLL seconds."""
        now = time.monotonic()
        with self._lock:
            if self._shared is None or now - self._looked < SHARED_PAUSE_POLL:
                return
            self._looked = now
        try:
            left = self._shared.shared_pause() - time.time()
        except Exception:  # noqa: BLE001 - the database is down: the senders wait on it anyway
            return
        if left > 0:
            with self._lock:
                self._until = max(self._until, now + left)

    def failed(self) -> None:
        """An attempt got no answer or a 5xx: after a run of them, back off the whole sink,
        longer each time, until an attempt gets an answer again."""
        with self._lock:
            self._failures += 1
            over = self._failures - FAILURES_BEFORE_PAUSE + 1
            if over > 0:
                delay = self._policy.backoff(over, self._rng)
                self._until = max(self._until, time.monotonic() + delay)

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0

    def remaining(self) -> float:
        self._look_shared()
        with self._lock:
            return max(0.0, self._until - time.monotonic())

    def wait(self, stop: threading.Event) -> bool:
        """Block while the gate is closed; False when `stop` was set meanwhile."""
        while True:
            left = self.remaining()
            if left <= 0:
                return not stop.is_set()
            if stop.wait(left):
                return False
