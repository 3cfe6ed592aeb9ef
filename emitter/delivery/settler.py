"""Recording the sender's outcomes in the outbox in batches, off the workers' path; outcomes
the outbox cannot record yet (a full disk) are kept and retried, never dropped."""

from __future__ import annotations

import logging
import threading
import time

from emitter.backoff import Backoff
from emitter.delivery.guard import GUARD_PACING, Health
from emitter.delivery.outbox import Outbox, Settlement

log = logging.getLogger(__name__)


class Settler:
    """Records the workers' outcomes in the outbox in batches, off the workers' path, so a
    worker goes on to its next request at once. Until recorded, an event stays inflight: a
    crash in between means it is sent again, never lost. When recording fails the outcomes
    stay here and are retried with back-off; `unsettled()` names their events so the sender
    never sends one again meanwhile (its claim lease may run out while the disk is full)."""

    LIMIT = 512  # outcomes waiting to be recorded before workers must wait
    BATCH = 64  # record at once when this many are waiting...
    LINGER = 0.02  # ...or after this many seconds

    def __init__(self, outbox: Outbox, progress: threading.Condition,
                 health: Health | None = None) -> None:
        self._outbox, self._progress = outbox, progress
        self._health = health or Health()
        self._items: list[Settlement] = []
        self._recording: list[Settlement] = []
        self._cv = threading.Condition()
        self._closed = False
        self._give_up_at = float("inf")
        self._thread = threading.Thread(target=self._run, name="outbox-settler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def add(self, item: Settlement) -> None:
        with self._cv:
            self._cv.wait_for(lambda: len(self._items) < self.LIMIT or self._closed)
            self._items.append(item)
            if len(self._items) in (1, self.BATCH):  # start lingering, or stop it
                self._cv.notify_all()

    def unsettled(self) -> set[int]:
        """Ids of events whose outcome is decided but not yet recorded."""
        with self._cv:
            return {s.id for s in self._items} | {s.id for s in self._recording}

    def close(self, timeout: float = 30.0) -> None:
        """Record what is left, trying for up to `timeout` seconds when the outbox fails."""
        with self._cv:
            self._closed = True
            self._give_up_at = time.monotonic() + timeout
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout + 1)

    def _run(self) -> None:
        pause = Backoff(GUARD_PACING)
        while True:
            batch = self._next_batch()
            if not batch:
                return  # closed and nothing left
            try:
                self._outbox.settle(batch)
            except Exception as exc:  # noqa: BLE001 - kept and retried: see the class doc
                if not self._failed(batch, exc, pause.failed()):
                    return
                continue
            with self._cv:
                self._recording = []
            if pause.failures:
                pause.succeeded()
                self._health.recovered("settler")
            with self._progress:
                self._progress.notify_all()

    def _next_batch(self) -> list[Settlement]:
        with self._cv:
            self._cv.wait_for(lambda: bool(self._items) or self._closed)
            # Linger a moment so one transaction records many outcomes (the rows stay
            # inflight meanwhile, which is exactly what they are until recorded).
            self._cv.wait_for(lambda: len(self._items) >= self.BATCH or self._closed,
                              self.LINGER)
            self._recording, self._items = self._items, []
            self._cv.notify_all()
            return self._recording

    def _failed(self, batch: list[Settlement], exc: Exception, delay: float) -> bool:
        """Put `batch` back first in line; False when closing and out of time."""
        self._health.failed("settler", exc, delay)
        with self._cv:
            self._items[:0] = batch
            self._recording = []
            if self._closed and time.monotonic() >= self._give_up_at:
                log.error("%d delivery outcome(s) could not be recorded before stopping; "
                          "those events stay inflight and are sent again at the next start",
                          len(self._items))
                return False
            self._cv.wait(delay)
        return True
