"""The state a run opens: its state directory (a temporary one for printing runs) or the shared
backend's URL, the outbox and the state store there, the outbox gauges /metrics shows, and
closing it all at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emitter.delivery.backend import (
    STATE_FILE,
    Backend,
    choose_state_url,
    open_postgres,
    open_sqlite,
)
from emitter.delivery.outboxrows import OutboxStatus
from emitter.state.dirs import resolve_state_dir

__all__ = ["STATE_FILE", "RunState"]


class RunState:
    """`RunState.open(flag, environ, temporary=...)`; `close()` once, at the end of the run."""

    def __init__(self, state_dir: Path | str, backend: Backend, temporary: str | None) -> None:
        self.state_dir = state_dir  # the directory, or the URL without its password
        self.backend = backend
        self.outbox: Any = backend.outbox
        self.store: Any = backend.store
        self.temporary = temporary  # a directory deleted at close (dry runs, --sink stdout)
        self._closed = False

    @classmethod
    def open(cls, flag: str | None, environ: Mapping[str, str], *,
             temporary: bool, url: str | None = None) -> RunState:
        """`flag` is --state-dir, `url` --state-url (else EMITTER_STATE_URL); `temporary` (a
        printing run) without either flag takes a fresh directory, so printing runs neither
        move the real file positions nor print (and so remove) events the real outbox holds."""
        fresh = temporary and not (flag or url)
        shared = None if fresh or flag else choose_state_url(url, environ)
        if shared:
            backend = open_postgres(shared)
            return cls(backend.where, backend, None)
        tmp = tempfile.mkdtemp(prefix="emitter-dry-run-") if fresh else None
        try:
            state_dir = resolve_state_dir(tmp or flag, environ)
            return cls(state_dir, open_sqlite(state_dir), tmp)
        except BaseException:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
            raise

    def gauges(self) -> dict[str, float]:
        status = self.outbox.status()
        return {"pending": status.pending, "in_flight": status.inflight,
                "dead": status.dead, "bytes": status.bytes,
                "oldest_age_seconds": status.oldest_age or 0.0}

    def left(self) -> int:
        """Events not yet delivered: pending or in flight."""
        status: OutboxStatus = self.outbox.status()
        return status.pending + status.inflight

    def where_left(self) -> str:
        """Where undelivered events are, as said to the user."""
        if self.temporary:
            return "dropped with the temporary state directory"
        return (f"kept in the outbox in {self.state_dir}; `emitter outbox drain` or the "
                "next `emitter run` (any replica, on a shared backend) sends them")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.backend.close()
        if self.temporary:
            shutil.rmtree(self.temporary, ignore_errors=True)
