"""Where a replay keeps its throttle and summary state: in memory (SQLite `:memory:`), or with
`--state-url` on the shared backend's engine inside one transaction whose tables are private
temporary copies, rolled back at the end, so the fleet never sees (nor waits on) a replay."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The tables a dry run writes through the store and the throttler; their temporary copies
# shadow them on the replay's connection (PostgreSQL looks in pg_temp first).
_SHADOWED = ("kv", "throttle_windows", "throttle_summaries", "once_keys")


class _Discard(Exception):
    """Raised into the replay's transaction at the end: roll it back."""


@dataclass
class Scratch:
    store: Any  # emitter.state.store.StateStore or emitter.state.postgres.kv.PgStateStore
    throttler: Callable[[Callable[[], float]], Any]  # a Throttler on `store` with this clock
    close: Callable[[], None]


def open_scratch(state_url: str | None) -> Scratch:
    if state_url is None:
        from emitter.delivery.throttle import Throttler
        from emitter.state.store import StateStore

        store = StateStore(":memory:")
        return Scratch(store, lambda clock: Throttler(store, clock), store.close)
    return _shared(state_url)


def _shared(state_url: str) -> Scratch:
    from emitter.delivery.backend import open_postgres

    backend = open_postgres(state_url)
    stack = contextlib.ExitStack()
    try:
        db = backend.store.db
        stack.enter_context(db.batch())
        with db.tx() as cur:
            cur.execute("SET LOCAL idle_in_transaction_session_timeout = 0")  # reading the log
            for table in _SHADOWED:
                cur.execute(f"CREATE TEMPORARY TABLE {table} (LIKE {table} INCLUDING ALL)"
                            " ON COMMIT DROP")
    except BaseException:
        stack.close()
        backend.close()
        raise

    def close() -> None:
        stack.__exit__(_Discard, _Discard(), None)
        backend.close()

    return Scratch(backend.store, backend.throttler, close)
