"""The `file` sink: each event as one JSON line appended to a file, for dry runs and audits."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from emitter.sinks.base import DeliveryResult, Outcome

if TYPE_CHECKING:
    from emitter.events.encode import Encoded


class FileSink:
    """Appends each event's wire bytes as one line to `path`, created 0600 if missing.

    Each `send` (and each `send_many` batch) is written with one `write` on an O_APPEND
    descriptor and fsynced before it counts as DELIVERED, so a line is never half-written
    between two processes and an audit trail survives a crash. A write error is RETRY.
    """

    name = "file"
    fanout = 64  # events a sender worker hands over at once: one write and one fsync

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def send(self, event: Encoded, *, budget: float | None = None) -> DeliveryResult:
        return self.send_many([event])[0]

    def send_many(self, events: Sequence[Encoded]) -> list[DeliveryResult]:
        """Write a batch with one write and one fsync; every result is the batch's."""
        data = b"".join(event.body + b"\n" for event in events)
        with self._lock:
            try:
                fd = self._descriptor()
                _write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            except OSError as exc:
                self._reset()
                why = f"cannot append to {self.path}: {exc.strerror or exc}"
                return [DeliveryResult(Outcome.RETRY, errors=(why,), detail=f"file: {why}")] * len(
                    events
                )
        return [DeliveryResult(Outcome.DELIVERED, detail=f"file: appended to {self.path}")] * len(
            events
        )

    def _reset(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._reset()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
