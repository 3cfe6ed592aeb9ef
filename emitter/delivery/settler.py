"""Recording the sender's outcomes in the outbox in batches, off the workers' path."""

from __future__ import annotations

import logging
import threading

from emitter.delivery.outbox import Outbox, Settlement

log = logging.getLogger(__name__)


class Settler:
    """Records the workers' outcomes in the outbox in batches, off the workers' path, so a
    worker goes on to its next request at once. Until recorded, an event stays inflight: a
    crash in between means it is sent again, never lost."""

    LIMIT = 512  # outcomes waiting to be recorded before workers must wait
    BATCH = 64  # record at once when this many are waiting...
    LINGER = 0.02  # ...or after this many seconds

    def __init__(self, outbox: Outbox, progress: threading.Condition) -> None:
        self._outbox, self._progress = outbox, progress
        self._items: list[Settlement] = []
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="outbox-settler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, item: Settlement) -> None:
        with self._cv:
            self._cv.wait_for(lambda: len(self._items) < self.LIMIT or self._closed)
            self._items.append(item)
            if len(self._items) in (1, self.BATCH):  # start lingering, or stop it
                self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._items) or self._closed)
                # Linger a moment so one transaction records many outcomes (the rows stay
                # inflight meanwhile, which is exactly what they are until recorded).
                self._cv.wait_for(lambda: len(self._items) >= self.BATCH or self._closed,
                                  self.LINGER)
                batch, self._items = self._items, []
                self._cv.notify_all()
            if not batch:
                return  # closed and nothing left
            try:
                self._outbox.settle(batch)
            except Exception:  # noqa: BLE001 - they stay inflight and are sent again later
                log.exception("could not record %d delivery outcome(s)", len(batch))
            with self._progress:
                self._progress.notify_all()
