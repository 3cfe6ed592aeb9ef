"""The state a run opens: its state directory (a temporary one for printing runs), the outbox
and the state store in it, the outbox gauges /metrics shows, and closing it all at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from emitter.delivery.outbox import Outbox
from emitter.state.dirs import resolve_state_dir
from emitter.state.store import StateStore

STATE_FILE = "state.sqlite3"


class RunState:
    """`RunState.open(flag, environ, temporary=...)`; `close()` once, at the end of the run."""

    def __init__(self, state_dir: Path, outbox: Outbox, store: StateStore,
                 temporary: str | None) -> None:
        self.state_dir = state_dir
        self.outbox = outbox
        self.store = store
        self.temporary = temporary  # a directory deleted at close (dry runs, --sink stdout)
        self._closed = False

    @classmethod
    def open(cls, flag: str | None, environ: Mapping[str, str], *,
             temporary: bool) -> RunState:
        """`flag` is --state-dir; `temporary` (a printing run) without it takes a fresh
        directory, so printing runs neither move the real file positions nor print (and so
        remove) events the real outbox holds for Datadog."""
        tmp = tempfile.mkdtemp(prefix="emitter-dry-run-") if temporary and not flag else None
        outbox: Outbox | None = None
        try:
            state_dir = resolve_state_dir(tmp or flag, environ)
            outbox = Outbox.in_dir(state_dir)
            return cls(state_dir, outbox, StateStore(state_dir / STATE_FILE), tmp)
        except BaseException:
            if outbox is not None:
                outbox.close()
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
        status = self.outbox.status()
        return status.pending + status.inflight

    def where_left(self) -> str:
        """Where undelivered events are, as said to the user."""
        if self.temporary:
            return "dropped with the temporary state directory"
        return (f"kept in the outbox in {self.state_dir}; `emitter outbox drain` or the "
                "next `emitter run` sends them")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.store.close()
        self.outbox.close()
        if self.temporary:
            shutil.rmtree(self.temporary, ignore_errors=True)
