"""A small durable key/value store for trigger and throttle state (SQLite, WAL mode).

Values are JSON. It lives in its own file in the state directory (`state.sqlite3`), apart
from the outbox. Writes commit before returning; with WAL and `synchronous=NORMAL` a commit
survives a crash of the process (a power loss may lose the last few, which then re-fire:
at-least-once). One connection, guarded by a lock, so any thread may call it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from emitter.errors import ConfigError
from emitter.state.dirs import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID
"""

_PUT = "INSERT OR REPLACE INTO kv (namespace, key, value) VALUES (?, ?, ?)"


class StateStore:
    shared = False  # one process's: claims through it hold on this node only

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL"):
            raise ValueError(f"bad synchronous mode {synchronous!r}")
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                private_file(self.path)  # 0600, and so its -wal and -shm files
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the state store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def items(self, namespace: str) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM kv WHERE namespace = ?", (namespace,)
            ).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def put(self, namespace: str, key: str, value: Any) -> None:
        self.put_many(namespace, {key: value})

    def put_many(
        self, namespace: str, values: Mapping[str, Any], *, delete: Iterable[str] = ()
    ) -> None:
        """Write all of `values` and remove the `delete` keys in one transaction."""
        rows = [(namespace, k, json.dumps(v, separators=(",", ":"))) for k, v in values.items()]
        gone = [(namespace, k) for k in delete]
        if not rows and not gone:
            return  # nothing to write: no transaction (a webhook request without dedup ids)
        if len(rows) == 1 and not gone:  # one statement is its own transaction: one step, not
            with self._lock:             # three (each lets other threads take the GIL)
                self._db.execute(_PUT, rows[0])
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_PUT, rows)
                self._db.executemany("DELETE FROM kv WHERE namespace = ? AND key = ?", gone)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete(self, namespace: str, keys: Iterable[str]) -> None:
        self.put_many(namespace, {}, delete=keys)

    def delete_below(self, namespace: str, limit: float) -> int:
        """Remove the keys whose value is a number below `limit` (keys kept with their expiry
        time as value: a TTL'd set); returns how many went."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM kv WHERE namespace = ? AND CAST(value AS REAL) < ?",
                (namespace, limit))
        return cursor.rowcount

    def take(self, namespace: str, key: str, until: float, now: float) -> bool:
        """Write `key` = `until` unless it holds a number not below `now`; True if written."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) ON CONFLICT"
                " (namespace, key) DO UPDATE SET value = excluded.value"
                " WHERE CAST(kv.value AS REAL) < ?", (namespace, key, json.dumps(until), now))
        return cursor.rowcount > 0

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """No shared transaction here: each write above commits on its own."""
        return contextlib.nullcontext()

    def hold_lease(self, name: str, seconds: float) -> bool:
        """Always held: one node is the whole fleet (the shared store's leases are real)."""
        return True

    def close(self) -> None:
        """Idempotent."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
