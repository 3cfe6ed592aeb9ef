"""Where a run keeps what it must not lose: one storage interface, two implementations.

A local directory is the SQLite backend (the outbox and state store files in it, as always);
a `postgresql://` URL (`--state-url` or EMITTER_STATE_URL) is the shared backend several
replicas use at once (emitter.state.postgres, emitter.delivery.pgoutbox and .pgthrottle).
`Backend` is what the pipeline, throttle, triggers' state, sender and `outbox` commands get:

- `outbox` (enqueue, claim with lease, settle, dead letters, status), `store` (key/value
  state: file positions, command state, webhook delivery ids), `throttler(clock)`;
- `batch()`: one transaction for a dispatch (throttle decisions, once keys and outbox rows
  commit together; a no-op for SQLite, whose outbox commits the batch in one transaction);
- `claim_once(key, ttl)`: fleet-wide once (a schedule slot); always True on one node;
- `database_problem()`: None, or why the database cannot be reached (for /healthz).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emitter.state.postgres.db import is_url, redact

STATE_URL_ENV = "EMITTER_STATE_URL"
STATE_FILE = "state.sqlite3"


def choose_state_url(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The shared backend's URL from `--state-url`, then EMITTER_STATE_URL; None: SQLite."""
    for value in (flag, environ.get(STATE_URL_ENV, "").strip() or None):
        if value:
            return value
    return None


@dataclass
class Backend:
    """The storage a run opens; see the module docstring. `close()` once, at the end."""

    where: str  # the state directory, or the URL without its password
    outbox: Any  # emitter.delivery.outbox.Outbox or emitter.delivery.pgoutbox.PgOutbox
    store: Any  # emitter.state.store.StateStore or emitter.state.postgres.kv.PgStateStore
    shared: bool = False
    _db: Any = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def throttler(self, clock: Callable[[], float] | None = None) -> Any:
        import time

        if self._db is not None:
            from emitter.delivery.pgthrottle import PgThrottler

            return PgThrottler(self._db, clock or time.time)
        from emitter.delivery.throttle import Throttler

        return Throttler(self.store, clock or time.time)

    def batch(self) -> contextlib.AbstractContextManager[None]:
        return self._db.batch() if self._db is not None else contextlib.nullcontext()

    def claim_once(self, key: str, ttl: float) -> bool:
        return bool(self.store.claim_once(key, ttl)) if self.shared else True

    def database_problem(self) -> str | None:
        return self._db.reachable() if self._db is not None else None

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def open_sqlite(state_dir: Path, **outbox_opts: Any) -> Backend:
    from emitter.delivery.outbox import Outbox
    from emitter.state.store import StateStore

    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    outbox = Outbox.in_dir(state_dir, **outbox_opts)
    try:
        store = StateStore(state_dir / STATE_FILE)
    except BaseException:
        outbox.close()
        raise
    return Backend(str(state_dir), outbox, store, _closers=[outbox.close, store.close])


def open_postgres(url: str, *, migrate: bool = True, **outbox_opts: Any) -> Backend:
    from emitter.delivery.pgoutbox import PgOutbox
    from emitter.state.postgres.kv import PgStateStore

    db = _database(url, migrate)
    outbox = PgOutbox(db, **outbox_opts)
    return Backend(redact(url), outbox, PgStateStore(db), shared=True, _db=db,
                   _closers=[db.close, outbox.close])


def _database(url: str, migrate: bool) -> Any:
    from emitter.errors import ConfigError

    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"state URL {redact(url)} needs the PostgreSQL driver: pip install "
            "'dd-event-emitter[postgres]'") from None
    from emitter.state.postgres.db import Database

    return Database(url, migrate=migrate)


def open_backend(location: str | os.PathLike[str], **outbox_opts: Any) -> Backend:
    """A URL opens the shared backend; anything else is a state directory (SQLite)."""
    text = os.fspath(location)
    if is_url(text):
        return open_postgres(text, **outbox_opts)
    return open_sqlite(Path(text), **outbox_opts)


@contextlib.contextmanager
def opened(location: str | os.PathLike[str], **outbox_opts: Any) -> Iterator[Backend]:
    backend = open_backend(location, **outbox_opts)
    try:
        yield backend
    finally:
        backend.close()


__all__ = ["STATE_URL_ENV", "Backend", "choose_state_url", "is_url", "open_backend", "opened"]
