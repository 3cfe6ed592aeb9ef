"""The outbox on PostgreSQL, shared by every replica: the SQLite Outbox's interface, claims with
FOR UPDATE SKIP LOCKED and a lease each replica renews while it lives (a killed replica's
events are claimed again once their lease runs out), per-replica status and shared pauses."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from emitter.delivery.outboxrows import (
    COUNTERS,
    ROW_COLUMNS,
    STATES,
    OutboxSignals,
    OutboxStatus,
    Row,
    Settlement,
    full_error,
    row_of,
)
from emitter.state.postgres.db import Database

log = logging.getLogger(__name__)
DEFAULT_MAX_EVENTS = 1_000_000  # the SQLite outbox's bounds (emitter.delivery.outbox)
DEFAULT_MAX_BYTES = 1024**3
DEFAULT_DEADLINE = 24 * 3600.0
_ERROR_CHARS = 2000
# Within these of a bound, enqueues serialise on one advisory lock (see _check_room).
_MARGIN_EVENTS = 1_000
_MARGIN_BYTES = 1 << 20
_BOUND_LOCK = 0x656D6974_626F756E  # "emitboun": one lock key for the outbox bound

_COUNT = ("INSERT INTO counters VALUES (%s, pg_backend_pid() %% 16, %s) ON CONFLICT (name, slot)"
          " DO UPDATE SET value = counters.value + excluded.value")
_RATE_LIMIT = "rate-limit"
REPLICA_SHOWN = 3600.0  # `outbox status` lists the replicas seen within this many seconds


@dataclass(frozen=True)
class ReplicaLeases:
    """One replica as `emitter outbox status` shows it."""

    replica: str
    host: str
    pid: int
    seen_ago: float  # seconds since it last renewed its leases
    inflight: int  # events it holds a lease on


class PgOutbox(OutboxSignals):
    """See the module docstring. Thread-safe; writes join the calling thread's batch."""

    shared = True  # several senders may work on it at once (no sender lock)

    def __init__(self, db: Database, *, max_events: int = DEFAULT_MAX_EVENTS,
                 max_bytes: int = DEFAULT_MAX_BYTES, deadline: float = DEFAULT_DEADLINE) -> None:
        self.db = db
        self.path = db.where
        self.max_events, self.max_bytes, self.deadline = max_events, max_bytes, deadline
        self.lease = db.lease
        self._work = threading.Event()
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = time.time()

    def close(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(5)

    def __enter__(self) -> PgOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- accepting events ---------------------------------------------------------------

    def enqueue(self, items: Sequence[tuple[str, bytes]], *, deadline: float | None = None,
                claimed: bool = False, lease: float | None = None) -> list[int]:
        """Store `(rule_id, body)` pairs; all or nothing (OutboxFullError over the bounds).
        Inside a batch they commit with it; else before returning."""
        if not items:
            return []
        rows = [(rule_id, bytes(body)) for rule_id, body in items]
        ttl = self.deadline if deadline is None else deadline
        now = time.time()
        due = now + max(lease or self.lease, self.lease) if claimed else now
        with self.db.tx() as cur:
            self._check_room(cur, rows)
            cur.execute(
                "INSERT INTO events (rule_id, body, created_at, next_attempt_at, deadline,"
                " state, claimed_by) SELECT r, b, %s, %s, %s, %s, %s FROM unnest(%s::text[],"
                " %s::bytea[]) WITH ORDINALITY AS t(r, b, n) ORDER BY n RETURNING id",
                (now, due, now + ttl, "inflight" if claimed else "pending",
                 self.db.replica if claimed else None, [r for r, _ in rows],
                 [b for _, b in rows]))
            ids = sorted(int(r[0]) for r in cur.fetchall())
            cur.execute(_COUNT, ("accepted", len(rows)))
        self.db.on_commit(self._work.set)
        return ids

    def _check_room(self, cur: Any, rows: Sequence[tuple[str, bytes]]) -> None:
        """Refuse the batch when it would pass the bounds. Far below them the check reads the
        committed totals without a lock (replicas enqueue in parallel); within the margin of
        a bound every batch takes one advisory lock and counts again, so batches near the
        limit are decided one at a time and see each other's committed rows. The bound is
        exact unless unlocked batches in flight at once hold more than the margin."""
        extra = sum(len(body) for _, body in rows)
        events, size = self._totals(cur)
        if (events + len(rows) + _MARGIN_EVENTS <= self.max_events
                and size + extra + _MARGIN_BYTES <= self.max_bytes):
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_BOUND_LOCK,))
        events, size = self._totals(cur)
        if events + len(rows) <= self.max_events and size + extra <= self.max_bytes:
            return
        with self.db.tx(own=True) as other:  # the refusal counts even when the batch rolls back
            other.execute(_COUNT, ("refused", len(rows)))
        raise full_error(self.path, events, size, self.max_events, self.max_bytes, len(rows))

    @staticmethod
    def _totals(cur: Any) -> tuple[int, int]:
        cur.execute("SELECT sum(events), sum(bytes) FROM totals")
        events, size = (int(v or 0) for v in cur.fetchone())
        return events, size

    # ---- the senders' side --------------------------------------------------------------

    def claim(self, n: int, now: float | None = None) -> list[Row]:
        """Lease up to `n` due events to this replica, oldest due first: pending ones whose
        time came, and inflight ones whose lease ran out (their replica died)."""
        at = time.time() if now is None else now
        self._start_renewing()
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE events SET state = 'inflight', attempts = attempts + 1,"  # noqa: S608
                " next_attempt_at = %s, claimed_by = %s WHERE id IN (SELECT id FROM events"
                " WHERE state <> 'dead' AND next_attempt_at <= %s ORDER BY next_attempt_at, id"
                f" LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {ROW_COLUMNS}",
                (at + self.lease, self.db.replica, at, n))
            rows = [row_of(r) for r in cur.fetchall()]
        rows.sort(key=lambda r: r.id)
        return rows

    def next_due(self) -> float | None:
        with self.db.tx() as cur:
            cur.execute("SELECT min(next_attempt_at) FROM events WHERE state <> 'dead'")
            value = cur.fetchone()[0]
        return None if value is None else float(value)

    def has_undelivered(self) -> bool:
        with self.db.tx() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM events WHERE state <> 'dead')")
            return bool(cur.fetchone()[0])

    def unclaim(self, ids: Iterable[int]) -> None:
        params = [(time.time(), i, self.db.replica) for i in ids]
        if not params:
            return
        with self.db.tx() as cur:
            cur.executemany(
                "UPDATE events SET state = 'pending', next_attempt_at = %s, attempts ="
                " greatest(attempts - 1, 0), claimed_by = NULL WHERE id = %s AND state ="
                " 'inflight' AND claimed_by = %s", params)
        self._work.set()

    def settle(self, items: Sequence[Settlement], *, durable: bool = False) -> None:
        """Record attempts' outcomes in one transaction. A retry or dead letter is recorded
        only while this replica still holds the event (its lease may have run out and
        another replica taken it); a delivery always removes it."""
        if not items:
            return
        me, now = self.db.replica, time.time()
        delivered = [s.id for s in items if s.outcome == "delivered"]
        retried = [(s.next_at, s.status, s.error[:_ERROR_CHARS], s.attempts, s.id, me)
                   for s in items if s.outcome == "retry"]
        dead = [(now, s.status, s.error[:_ERROR_CHARS], s.id, me)
                for s in items if s.outcome == "dead"]
        failed = [s for s in items if s.outcome != "delivered"]
        with self.db.tx() as cur:
            if delivered:
                cur.execute("DELETE FROM events WHERE id = ANY(%s)", (delivered,))
            if retried:
                cur.executemany(
                    "UPDATE events SET state = 'pending', next_attempt_at = %s, last_status ="
                    " %s, last_error = %s, attempts = coalesce(%s, attempts), claimed_by = NULL"
                    " WHERE id = %s AND (claimed_by = %s OR state = 'pending')", retried)
            if dead:
                cur.executemany(
                    "UPDATE events SET state = 'dead', dead_at = %s, last_status = %s,"
                    " last_error = %s, claimed_by = NULL WHERE id = %s AND claimed_by = %s",
                    dead)
            if failed:
                self._remember_error(cur, failed[-1])
            for name, count in (("delivered", len(delivered)), ("retried", len(retried)),
                                ("dead", len(dead))):
                if count:
                    cur.execute(_COUNT, (name, count))

    @staticmethod
    def _remember_error(cur: Any, item: Settlement) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        code = f"HTTP {item.status}" if item.status is not None else "no answer"
        text = f"{stamp} event {item.id}: {code}: {item.error}"[:_ERROR_CHARS]
        cur.execute("INSERT INTO meta VALUES ('last_error', %s) ON CONFLICT (key) DO UPDATE"
                    " SET value = excluded.value", (text,))

    def release_inflight(self) -> int:
        """Put this replica's inflight events back to pending. Other replicas' events stay
        theirs until their lease runs out (then any replica claims them like pending ones),
        so a starting sender never takes a live replica's work."""
        with self.db.tx() as cur:
            cur.execute("UPDATE events SET state = 'pending', next_attempt_at = %s,"
                        " claimed_by = NULL WHERE state = 'inflight' AND claimed_by = %s",
                        (time.time(), self.db.replica))
            released = int(cur.rowcount)
        self._work.set()
        return released

    # ---- leases and shared pauses ---------------------------------------------------------

    def _start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                             name="outbox-lease-renewal")
            self._renewer.start()

    def _renew_loop(self) -> None:
        # The first round at once: a replica is listed (with the leases it holds) from its
        # first claim, not a third of a lease later (a kill before then hid its leases).
        while True:
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - retried next round; leases outlive one miss
                log.warning("outbox leases not renewed: %s", exc)
            if self._stop.wait(self.lease / 3):
                return

    def renew(self) -> int:
        """Extend this replica's leases and say it is alive; returns the events held."""
        now = time.time()
        with self.db.tx(own=True) as cur:
            cur.execute(
                "UPDATE events SET next_attempt_at = %s WHERE claimed_by = %s AND state ="
                " 'inflight' AND next_attempt_at < %s", (now + self.lease, self.db.replica,
                                                         now + self.lease))
            held = int(cur.rowcount)
            cur.execute(
                "INSERT INTO replicas VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE"
                " SET seen_at = excluded.seen_at", (self.db.replica, self.db.host, os.getpid(),
                                                    self._started, now))
        return held

    def share_pause(self, until: float) -> None:
        """A 429 named a reset time: every replica's senders wait until `until` (wall)."""
        with self.db.tx(own=True) as cur:
            cur.execute("INSERT INTO pauses VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET"
                        " until_at = greatest(pauses.until_at, excluded.until_at)",
                        (_RATE_LIMIT, until))

    def shared_pause(self) -> float:
        """Until when (wall clock) the fleet's senders pause; 0 when they do not."""
        with self.db.tx(own=True) as cur:
            cur.execute("SELECT until_at FROM pauses WHERE name = %s", (_RATE_LIMIT,))
            row = cur.fetchone()
        return 0.0 if row is None else float(row[0])

    def replicas(self) -> list[ReplicaLeases]:
        now = time.time()
        with self.db.tx() as cur:
            cur.execute(
                "SELECT r.id, r.host, r.pid, r.seen_at, count(e.id) FROM replicas r LEFT JOIN"
                " events e ON e.claimed_by = r.id AND e.state = 'inflight' AND"
                " e.next_attempt_at > %s WHERE r.seen_at > %s GROUP BY r.id ORDER BY"
                " r.started_at", (now, now - REPLICA_SHOWN))
            rows = cur.fetchall()
        return [ReplicaLeases(str(i), str(h), int(p), max(0.0, now - float(s)), int(n))
                for i, h, p, s, n in rows]

    # ---- inspection and repair ----------------------------------------------------------

    def status(self) -> OutboxStatus:
        with self.db.tx() as cur:
            # Kept by triggers (migration 0002): 16 slot rows, not a count of the backlog.
            cur.execute("SELECT sum(events), sum(bytes), sum(pending), sum(inflight),"
                        " sum(dead) FROM totals")
            events, size, *counts = (int(v or 0) for v in cur.fetchone())
            by_state = dict(zip(STATES, counts, strict=True))
            # The lowest id undelivered is the oldest accepted: the first such in the index.
            cur.execute("SELECT created_at FROM events WHERE state <> 'dead' ORDER BY id"
                        " LIMIT 1")
            first = cur.fetchone()
            oldest = None if first is None else first[0]
            cur.execute("SELECT value FROM meta WHERE key = 'last_error'")
            last = cur.fetchone()
            cur.execute("SELECT name, sum(value) FROM counters GROUP BY name")
            counters = dict.fromkeys(COUNTERS, 0)
            counters.update({str(k): int(v) for k, v in cur.fetchall()})
        return OutboxStatus(
            path=self.path,  # type: ignore[arg-type]  # a redacted URL, shown as is
            pending=by_state.get("pending", 0), inflight=by_state.get("inflight", 0),
            dead=by_state.get("dead", 0), events=events, bytes=size,
            max_events=self.max_events, max_bytes=self.max_bytes,
            oldest_age=None if oldest is None else max(0.0, time.time() - float(oldest)),
            last_error=None if last is None else str(last[0]), counters=counters)

    def retry(self, ids: Sequence[int] = (), *, all_dead: bool = False) -> list[int]:
        now = time.time()
        setter = ("UPDATE events SET state = 'pending', next_attempt_at = %s, deadline = %s,"
                  " attempts = 0, dead_at = NULL, claimed_by = NULL WHERE ")
        with self.db.tx() as cur:
            if all_dead:
                cur.execute(setter + "state = 'dead' RETURNING id", (now, now + self.deadline))
            else:
                cur.execute(setter + "id = ANY(%s) AND state <> 'inflight' RETURNING id",
                            (now, now + self.deadline, list(ids)))
            changed = sorted(int(r[0]) for r in cur.fetchall())
        if changed:
            self._work.set()
        return changed

    def purge_dead(self, older_than: float = 0.0) -> int:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM events WHERE state = 'dead' AND dead_at <= %s",
                        (time.time() - older_than,))
            return int(cur.rowcount)

    def list_events(self, *, dead: bool = False, limit: int = 50) -> list[Row]:
        where = "state = 'dead'" if dead else "state <> 'dead'"
        with self.db.tx() as cur:
            cur.execute(f"SELECT {ROW_COLUMNS} FROM events WHERE {where} ORDER BY id"  # noqa: S608
                        " LIMIT %s", (max(0, limit),))
            return [row_of(r) for r in cur.fetchall()]

    list = list_events  # the name the commands use; defined last so it shadows nothing
