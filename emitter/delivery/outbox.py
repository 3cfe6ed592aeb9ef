"""The durable outbox: accepted events on disk (SQLite, WAL, synchronous=FULL) until a sink
takes them, with dead letters, bounds and group commit.

Every write goes through one group committer (emitter.delivery.groupcommit): concurrent callers
(webhook threads, sender workers) share one transaction and one fsync, and each returns only
once its own work is durable. Rows are claimed in bounded batches; memory never scales with the
backlog. Several processes may open one outbox (the daemon and `emitter outbox ...`): WAL
lets readers run beside the writer and busy_timeout makes writers queue rather than fail.
"""

from __future__ import annotations

import collections
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from emitter.delivery.groupcommit import GroupCommitter, connect
from emitter.delivery.outboxrows import (
    COUNTERS,
    ROW_COLUMNS,
    SCHEMA,
    STATE_COUNTER,
    Enqueue,
    OutboxSignals,
    OutboxStatus,
    Row,
    Settlement,
    delete_events,
    full_error,
    insert_events,
    migrate,
    row_of,
)
from emitter.errors import ConfigError, OutboxFullError, OutboxUnavailableError
from emitter.state.dirs import private_file

OUTBOX_FILE = "outbox.sqlite3"
DEFAULT_MAX_EVENTS = 1_000_000
DEFAULT_MAX_BYTES = 1024**3
DEFAULT_DEADLINE = 24 * 3600.0
# How long a claimed event stays reserved for its sender. A sender that died without
# releasing it (or an `emitter fire` killed mid-request) gives it up after this; it must
# exceed a request's timeout plus the longest rate-limit pause.
CLAIM_LEASE = 300.0
_ERROR_CHARS = 2000  # bound what one API answer can put in a row
T = TypeVar("T")
__all__ = ["CLAIM_LEASE", "OUTBOX_FILE", "Outbox", "OutboxStatus", "Row", "Settlement"]


class Outbox(OutboxSignals):
    """The outbox at `path` (created if missing). Thread-safe; see the module docstring."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.path = Path(path)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.deadline = deadline
        try:
            private_file(self.path)  # 0600, and so its -wal and -shm files
        except OSError as exc:
            raise ConfigError(f"outbox {self.path}: cannot create it: {exc}") from exc
        self._writer = GroupCommitter(self.path)
        self._writer.executescript(SCHEMA)
        self._submit = self._writer.submit
        try:
            self._submit(lambda conn, tally: migrate(conn))
        except OutboxUnavailableError as exc:
            self._writer.close()
            raise ConfigError(f"outbox {self.path}: cannot initialise it: {exc}") from exc
        self._insert = self._insert_merged  # one object: the merge key of every enqueue
        self._reader = connect(self.path)
        self._read_lock = threading.Lock()
        self._work = threading.Event()  # set whenever something may have become due

    @classmethod
    def in_dir(cls, state_dir: str | os.PathLike[str], **kwargs: Any) -> Outbox:
        return cls(Path(state_dir) / OUTBOX_FILE, **kwargs)

    def close(self) -> None:
        self._writer.close()
        with self._read_lock:
            self._reader.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- accepting events ---------------------------------------------------------------

    def enqueue(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        deadline: float | None = None,
        claimed: bool = False,
        lease: float = CLAIM_LEASE,
    ) -> list[int]:
        """Store `(rule_id, body)` pairs durably; return their ids once fsynced.

        All or nothing: when the pairs do not fit under the bounds, none is stored and
        OutboxFullError is raised (the `refused` counter grows); old events are never dropped.
        `claimed=True` stores them already inflight (leased) for a caller that sends them
        itself right away (`emitter fire`), so a running sender does not send them too, for
        `lease` seconds (the caller's whole retry budget).
        """
        if not items:
            return []
        rows = [(rule_id, bytes(body)) for rule_id, body in items]
        ttl = self.deadline if deadline is None else deadline
        ids: list[int] = self._writer.submit_merged(
            self._insert, Enqueue(rows, ttl, max(lease, CLAIM_LEASE) if claimed else None))
        self._work.set()
        return ids

    def _insert_merged(self, conn: sqlite3.Connection, tally: collections.Counter[str],
                       batch: list[Enqueue]) -> list[list[int] | OutboxFullError]:
        """Every enqueue of one transaction: the bounds checked for each in turn (a refused
        one takes no room), then all accepted rows inserted by as few statements as
        INSERT_CHUNK allows."""
        events, size = conn.execute("SELECT events, bytes FROM totals").fetchone()
        now = time.time()
        results: list[list[int] | OutboxFullError] = []
        values: list[Any] = []
        accepted: list[tuple[list[int], int]] = []  # each accepted caller's ids, to be filled
        for item in batch:
            extra = sum(len(body) for _, body in item.rows)
            if events + len(item.rows) > self.max_events or size + extra > self.max_bytes:
                tally["refused"] += len(item.rows)
                results.append(full_error(self.path, events, size, self.max_events,
                                          self.max_bytes, len(item.rows)))
                continue
            events, size = events + len(item.rows), size + extra
            state, due = ("pending", now) if item.lease is None else ("inflight", now + item.lease)
            for rule_id, body in item.rows:
                values.extend((rule_id, body, now, due, now + item.ttl, state))
            mine: list[int] = []
            results.append(mine)
            accepted.append((mine, len(item.rows)))
        ids = insert_events(conn, values)
        tally["accepted"] += len(ids)
        at = 0
        for mine, n in accepted:
            mine.extend(ids[at:at + n])
            at += n
        return results

    # ---- the sender's side --------------------------------------------------------------

    def claim(self, n: int, now: float | None = None) -> list[Row]:
        """Move up to `n` due events to inflight and return them, oldest due first.

        Due means pending with `next_attempt_at` passed, or inflight with an expired lease
        (its claimer died). The returned rows show the attempt being started.
        """
        at = time.time() if now is None else now

        def op(conn: sqlite3.Connection, tally: collections.Counter[str]) -> list[Row]:
            cur = conn.execute(
                "UPDATE events SET state = 'inflight', attempts = attempts + 1,"  # noqa: S608
                " next_attempt_at = ? WHERE id IN ("
                " SELECT id FROM events WHERE state IN ('pending', 'inflight')"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
                f") RETURNING {ROW_COLUMNS}",
                (at + CLAIM_LEASE, at, n),
            )
            rows = [row_of(r) for r in cur.fetchall()]
            rows.sort(key=lambda r: r.id)
            return rows

        return self._submit(op, durable=False)  # a lost claim only means a later one

    def next_due(self) -> float | None:
        """When the earliest pending event becomes due (wall clock), or None when none."""
        found = self._read(
            "SELECT min(next_attempt_at) FROM events WHERE state IN ('pending', 'inflight')", ()
        )
        value = found[0][0] if found else None
        return None if value is None else float(value)

    def has_undelivered(self) -> bool:
        """True while any event is pending or inflight (dead letters do not count)."""
        found = self._read(
            "SELECT EXISTS (SELECT 1 FROM events WHERE state IN ('pending', 'inflight'))", ()
        )
        return bool(found[0][0])

    def unclaim(self, ids: Iterable[int]) -> None:
        """Give claimed events back untried (a stopping sender had not started them)."""
        params = [(time.time(), i) for i in ids]

        def op(conn: sqlite3.Connection, tally: collections.Counter[str]) -> None:
            conn.executemany(
                "UPDATE events SET state = 'pending', next_attempt_at = ?,"
                " attempts = max(attempts - 1, 0) WHERE id = ? AND state = 'inflight'",
                params,
            )

        if params:
            self._submit(op, durable=False)
            self._work.set()

    def settle(self, items: Sequence[Settlement], *, durable: bool = False) -> None:
        """Record many attempts' outcomes in one transaction: delivered rows are deleted,
        retries go back to pending, refusals become dead letters.

        Not fsynced by default: losing a settlement in a power cut only means that event is
        sent again (at-least-once), and the sender settles at a rate fsync would cap.
        """
        delivered = [s.id for s in items if s.outcome == "delivered"]
        now = time.time()
        retried = [(s.next_at, s.status, s.error[:_ERROR_CHARS], s.attempts, s.id)
                   for s in items if s.outcome == "retry"]
        dead = [(now, s.status, s.error[:_ERROR_CHARS], s.id) for s in items if s.outcome == "dead"]
        failed = [s for s in items if s.outcome != "delivered"]

        def op(conn: sqlite3.Connection, tally: collections.Counter[str]) -> None:
            delete_events(conn, delivered)
            conn.executemany(
                "UPDATE events SET state = 'pending', next_attempt_at = ?, last_status = ?,"
                " last_error = ?, attempts = coalesce(?, attempts) WHERE id = ?",
                retried,
            )
            conn.executemany(
                "UPDATE events SET state = 'dead', dead_at = ?, last_status = ?, last_error = ?"
                " WHERE id = ?",
                dead,
            )
            if failed:
                _remember_error(conn, failed[-1].id, failed[-1].status, failed[-1].error)
            tally.update(delivered=len(delivered), retried=len(retried), dead=len(dead))

        if items:
            self._submit(op, durable=durable)

    def release_inflight(self) -> int:
        """Put events left inflight by a crash back to pending (at-least-once delivery)."""

        def op(conn: sqlite3.Connection, tally: collections.Counter[str]) -> int:
            cur = conn.execute(
                "UPDATE events SET state = 'pending', next_attempt_at = ? WHERE state = 'inflight'",
                (time.time(),),
            )
            return int(cur.rowcount)

        released = self._submit(op)
        self._work.set()
        return released

    # ---- inspection and repair (the `emitter outbox` commands) ---------------------------

    def status(self) -> OutboxStatus:
        """Counts, size, oldest age and counters: a few short reads, whatever the backlog
        (the per-state counts are kept by triggers; see outboxrows.migrate)."""
        with self._read_lock:  # one snapshot: the counts and the oldest row agree
            try:
                self._reader.execute("BEGIN")
                totals, oldest, last, counted = self._status_reads()
            except sqlite3.Error as exc:
                raise ConfigError(f"outbox {self.path}: cannot read: {exc}") from exc
            finally:
                if self._reader.in_transaction:
                    self._reader.execute("COMMIT")
        events, size = totals
        counters = dict.fromkeys(COUNTERS, 0)
        counters.update((k, int(v)) for k, v in counted if k in counters)
        by_state = {k[len(STATE_COUNTER):]: int(v) for k, v in counted
                    if k.startswith(STATE_COUNTER)}
        return OutboxStatus(
            path=self.path,
            pending=by_state.get("pending", 0),
            inflight=by_state.get("inflight", 0),
            dead=by_state.get("dead", 0),
            events=int(events),
            bytes=int(size),
            max_events=self.max_events,
            max_bytes=self.max_bytes,
            oldest_age=None if oldest is None else max(0.0, time.time() - oldest[0]),
            last_error=last[0] if last else None,
            counters=counters,
        )

    def _status_reads(self) -> tuple[Any, Any, Any, list[Any]]:
        run = self._reader.execute
        totals = run("SELECT events, bytes FROM totals").fetchone()
        # The lowest id still undelivered is the oldest accepted (ids grow with time): a
        # walk from the start of the table that stops at the first such row.
        oldest = run("SELECT created_at FROM events WHERE state != 'dead' ORDER BY id LIMIT 1"
                     ).fetchone()
        last = run("SELECT value FROM meta WHERE key = 'last_error'").fetchone()
        return totals, oldest, last, run("SELECT name, value FROM counters").fetchall()

    def retry(self, ids: Sequence[int] = (), *, all_dead: bool = False) -> list[int]:
        """Make dead letters (or pending events) due now with a fresh deadline and attempt
        count; return the ids changed. Inflight events and unknown ids are left alone."""
        now = time.time()
        values = (now, now + self.deadline)
        setter = (
            "UPDATE events SET state = 'pending', next_attempt_at = ?, deadline = ?,"
            " attempts = 0, dead_at = NULL WHERE "
        )

        def op(conn: sqlite3.Connection, tally: collections.Counter[str]) -> list[int]:
            if all_dead:
                cur = conn.execute(setter + "state = 'dead' RETURNING id", values)
                return sorted(int(r[0]) for r in cur.fetchall())
            changed: list[int] = []
            for event_id in ids:
                cur = conn.execute(
                    setter + "id = ? AND state != 'inflight' RETURNING id", (*values, event_id)
                )
                changed.extend(int(r[0]) for r in cur.fetchall())
            return changed

        changed = self._submit(op)
        if changed:
            self._work.set()
        return changed

    def purge_dead(self, older_than: float = 0.0) -> int:
        """Delete dead letters that died at least `older_than` seconds ago; return how many."""
        cutoff = time.time() - older_than

        def op(conn: sqlite3.Connection, tally: collections.Counter[str]) -> int:
            cur = conn.execute(
                "DELETE FROM events WHERE state = 'dead' AND dead_at <= ?", (cutoff,)
            )
            return int(cur.rowcount)

        return self._submit(op)

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._read_lock:
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise ConfigError(f"outbox {self.path}: cannot read: {exc}") from exc

    def list_events(self, *, dead: bool = False, limit: int = 50) -> list[Row]:
        """Dead letters (`dead=True`) or undelivered events, oldest first, at most `limit`."""
        where = "state = 'dead'" if dead else "state != 'dead'"
        found = self._read(
            f"SELECT {ROW_COLUMNS} FROM events WHERE {where} ORDER BY id LIMIT ?",  # noqa: S608
            (max(0, limit),),
        )
        return [row_of(r) for r in found]

    list = list_events  # the name the commands use; defined last so it shadows nothing


def _remember_error(
    conn: sqlite3.Connection, event_id: int, status: int | None, error: str
) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    code = f"HTTP {status}" if status is not None else "no answer"
    conn.execute(
        "INSERT OR REPLACE INTO meta VALUES ('last_error', ?)",
        (f"{stamp} event {event_id}: {code}: {error}"[:_ERROR_CHARS],),
    )
