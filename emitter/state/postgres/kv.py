"""The state store on PostgreSQL: the SQLite StateStore's interface (JSON values per namespace)
over the shared `kv` table, plus fleet-wide once keys and leases. File positions are per host:
their keys carry the host name, so two hosts tailing the same path keep their own places."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from emitter.errors import OutboxUnavailableError
from emitter.state.postgres.db import Database

log = logging.getLogger(__name__)

# Namespaces whose keys name something on this host (a file path): kept per host.
HOST_LOCAL = frozenset({"file"})
_NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
# Seconds between removals of expired once keys. Each schedule slot claims a key of its own
# (never claimed again), so without them the table would grow by one row per firing forever.
ONCE_PURGE_EVERY = 3600.0


class PgStateStore:
    """Same methods as emitter.state.store.StateStore; writes join this thread's batch."""

    shared = True  # seen by every replica: claims through it hold fleet-wide

    def __init__(self, db: Database) -> None:
        self.db = db
        self.path = db.where
        self._once_purged = 0.0  # the first claim purges

    def _key(self, namespace: str, key: str) -> str:
        return f"{self.db.host}\x1f{key}" if namespace in HOST_LOCAL else key

    def _unkey(self, namespace: str, key: str) -> str | None:
        if namespace not in HOST_LOCAL:
            return key
        host, _, rest = key.partition("\x1f")
        return rest if host == self.db.host else None

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """One transaction for this thread's writes inside (and a dispatch's outbox rows)."""
        return self.db.batch()

    def get(self, namespace: str, key: str) -> Any | None:
        with self.db.tx() as cur:
            cur.execute("SELECT value FROM kv WHERE namespace = %s AND key = %s",
                        (namespace, self._key(namespace, key)))
            row = cur.fetchone()
        return None if row is None else json.loads(row[0])

    def items(self, namespace: str) -> dict[str, Any]:
        with self.db.tx() as cur:
            cur.execute("SELECT key, value FROM kv WHERE namespace = %s", (namespace,))
            rows = cur.fetchall()
        found = {}
        for key, value in rows:
            mine = self._unkey(namespace, key)
            if mine is not None:
                found[mine] = json.loads(value)
        return found

    def put(self, namespace: str, key: str, value: Any) -> None:
        self.put_many(namespace, {key: value})

    def put_many(self, namespace: str, values: Mapping[str, Any], *,
                 delete: Iterable[str] = ()) -> None:
        """Write all of `values` and remove the `delete` keys in one transaction."""
        rows = [(namespace, self._key(namespace, k), json.dumps(v, separators=(",", ":")))
                for k, v in values.items()]
        gone = [(namespace, self._key(namespace, k)) for k in delete]
        with self.db.tx() as cur:
            if rows:
                cur.executemany(
                    "INSERT INTO kv (namespace, key, value) VALUES (%s, %s, %s) ON CONFLICT"
                    " (namespace, key) DO UPDATE SET value = excluded.value", rows)
            if gone:
                cur.executemany("DELETE FROM kv WHERE namespace = %s AND key = %s", gone)

    def delete(self, namespace: str, keys: Iterable[str]) -> None:
        self.put_many(namespace, {}, delete=keys)

    def delete_below(self, namespace: str, limit: float) -> int:
        """Remove the keys whose value is a number below `limit`; returns how many went."""
        with self.db.tx() as cur:
            cur.execute(
                "DELETE FROM kv WHERE namespace = %s AND CASE WHEN value ~ %s"
                " THEN value::double precision END < %s", (namespace, _NUMBER, limit))
            return int(cur.rowcount)

    # ---- fleet-wide coordination ---------------------------------------------------------

    def take(self, namespace: str, key: str, until: float, now: float) -> bool:
        """Write `key` = `until` unless it holds a number not below `now`: True for the one
        caller in the fleet that did (a marker lapses at its value). Its own transaction."""
        with self.db.tx(own=True) as cur:
            cur.execute(
                "INSERT INTO kv (namespace, key, value) VALUES (%s, %s, %s) ON CONFLICT"
                " (namespace, key) DO UPDATE SET value = excluded.value WHERE CASE WHEN"
                " kv.value ~ %s THEN kv.value::double precision END < %s RETURNING key",
                (namespace, self._key(namespace, key), json.dumps(until), _NUMBER, now))
            return cur.fetchone() is not None

    def claim_once(self, key: str, ttl: float) -> bool:
        """True for the first caller in the fleet to claim `key` (until it expires); inside a
        batch the claim commits, or is undone, with the batch's events."""
        now = time.time()
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO once_keys VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET"
                " expires_at = excluded.expires_at WHERE once_keys.expires_at < %s"
                " RETURNING key", (key, now + ttl, now))
            claimed = cur.fetchone() is not None
        if now - self._once_purged >= ONCE_PURGE_EVERY:
            self._once_purged = now
            try:
                self.purge_once_keys(now)
            except OutboxUnavailableError as exc:  # the claim stands; the next hour retries
                log.warning("could not remove expired schedule keys: %s", exc)
        return claimed

    def purge_once_keys(self, now: float) -> int:
        """Remove the once keys expired before `now` (their own transaction); how many went."""
        with self.db.tx(own=True) as cur:
            cur.execute("DELETE FROM once_keys WHERE expires_at < %s", (now,))
            return int(cur.rowcount)

    def hold_lease(self, name: str, seconds: float) -> bool:
        """Take or renew the lease `name` for this replica; False while another holds it."""
        now = time.time()
        with self.db.tx(own=True) as cur:
            cur.execute(
                "INSERT INTO leases VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " holder = excluded.holder, until_at = excluded.until_at"
                " WHERE leases.holder = excluded.holder OR leases.until_at < %s"
                " RETURNING holder", (name, self.db.replica, now + seconds, now))
            return cur.fetchone() is not None

    def close(self) -> None:
        """The database is closed by its owner (the backend)."""

    def __enter__(self) -> PgStateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
