"""The outbox's storage format: the SQLite schema, the row and settlement records, the status
record, and how a stored row becomes a `Row`. The behaviour lives in emitter.delivery.outbox."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from emitter.errors import OutboxFullError

COUNTERS = ("accepted", "delivered", "retried", "dead", "refused")

State = Literal["pending", "inflight", "dead"]

# The tables. The counting triggers are not here: `migrate` installs them (an outbox written
# before the per-state counts existed gets them, and its counts, once).
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: `outbox retry ID` stays unambiguous
    rule_id TEXT NOT NULL,
    body BLOB NOT NULL,                    -- the exact JSON bytes to send
    created_at REAL NOT NULL,              -- wall clock (survives restarts)
    attempts INTEGER NOT NULL DEFAULT 0,   -- sends started (counted at claim)
    next_attempt_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'inflight', 'dead')),
    last_status INTEGER,
    last_error TEXT,
    deadline REAL NOT NULL,
    dead_at REAL
);
CREATE INDEX IF NOT EXISTS events_due ON events (state, next_attempt_at, id);
CREATE TABLE IF NOT EXISTS totals (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    events INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

STATES: tuple[State, ...] = ("pending", "inflight", "dead")
# PRAGMA user_version of an outbox whose state counts are kept by the triggers.
SCHEMA_VERSION = 1


# Per-row triggers keep the rows per state exact in the transaction that changes them,
# whoever writes (the daemon, `emitter outbox ...`, an older emitter): `outbox status` and
# /metrics read them instead of counting the backlog. They are rows of `counters`, named
# "state:<state>" at fixed negative rowids (never given to a counter; a trigger finds them
# without a name lookup): that page is written by every commit already, where a table of
# their own cost each 1-event commit one more 4 KiB WAL page (bench_scale.py `enqueue`), and
# older emitters still open the outbox (new columns in totals would break their schema).
STATE_COUNTER = "state:"
STATE_ROWIDS = {"pending": -1, "inflight": -2, "dead": -3}  # as in the triggers
_TRIGGERS = (
    "DROP TRIGGER IF EXISTS events_count_in",
    "DROP TRIGGER IF EXISTS events_count_out",
    "DROP TRIGGER IF EXISTS events_count_move",
    """CREATE TRIGGER events_count_in AFTER INSERT ON events BEGIN
        UPDATE totals SET events = events + 1, bytes = bytes + length(NEW.body) WHERE one = 1;
        UPDATE counters SET value = value + 1
        WHERE rowid = CASE NEW.state WHEN 'pending' THEN -1 WHEN 'inflight' THEN -2 ELSE -3 END;
    END""",
    """CREATE TRIGGER events_count_out AFTER DELETE ON events BEGIN
        UPDATE totals SET events = events - 1, bytes = bytes - length(OLD.body) WHERE one = 1;
        UPDATE counters SET value = value - 1
        WHERE rowid = CASE OLD.state WHEN 'pending' THEN -1 WHEN 'inflight' THEN -2 ELSE -3 END;
    END""",
    """CREATE TRIGGER events_count_move AFTER UPDATE OF state ON events
    WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE counters SET value = value - 1
        WHERE rowid = CASE OLD.state WHEN 'pending' THEN -1 WHEN 'inflight' THEN -2 ELSE -3 END;
        UPDATE counters SET value = value + 1
        WHERE rowid = CASE NEW.state WHEN 'pending' THEN -1 WHEN 'inflight' THEN -2 ELSE -3 END;
    END""",
)


def migrate(conn: sqlite3.Connection) -> bool:
    """Bring an outbox to SCHEMA_VERSION inside the caller's write transaction: (re)install
    the triggers and count the rows once (an outbox from before the counts). True if it did."""
    if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= SCHEMA_VERSION:
        return False
    for statement in _TRIGGERS:
        conn.execute(statement)
    counts = dict.fromkeys(STATES, 0)
    for state, n in conn.execute("SELECT state, count(*) FROM events GROUP BY state"):
        counts[state] = int(n)
    conn.executemany("INSERT OR REPLACE INTO counters (rowid, name, value) VALUES (?, ?, ?)",
                     [(STATE_ROWIDS[s], STATE_COUNTER + s, n) for s, n in counts.items()])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return True


ROW_COLUMNS = (
    "id, rule_id, body, created_at, attempts, next_attempt_at, state, "
    "last_status, last_error, deadline, dead_at"
)


@dataclass(frozen=True)
class Row:
    """One event in the outbox."""

    id: int
    rule_id: str
    body: bytes
    created_at: float
    attempts: int
    next_attempt_at: float
    state: State
    last_status: int | None
    last_error: str | None
    deadline: float
    dead_at: float | None = None


@dataclass(frozen=True)
class Settlement:
    """The outcome of one attempt, as `Outbox.settle` records it."""

    id: int
    outcome: Literal["delivered", "retry", "dead"]
    next_at: float = 0.0  # retry: when it is due again (wall clock)
    status: int | None = None
    error: str = ""
    attempts: int | None = None  # retry: overrides the stored attempt count


@dataclass(frozen=True)
class OutboxStatus:
    path: Path
    pending: int
    inflight: int
    dead: int
    events: int  # all rows, dead letters included (they count toward the bound)
    bytes: int
    max_events: int
    max_bytes: int
    oldest_age: float | None  # seconds since the oldest undelivered event was accepted
    last_error: str | None
    counters: dict[str, int]  # accepted, delivered, retried, dead, refused (since creation)


def row_of(values: Sequence[Any]) -> Row:
    return Row(
        id=int(values[0]),
        rule_id=str(values[1]),
        body=bytes(values[2]),
        created_at=float(values[3]),
        attempts=int(values[4]),
        next_attempt_at=float(values[5]),
        state=values[6],
        last_status=None if values[7] is None else int(values[7]),
        last_error=values[8],
        deadline=float(values[9]),
        dead_at=None if values[10] is None else float(values[10]),
    )


INSERT_COLUMNS = ("rule_id", "body", "created_at", "next_attempt_at", "deadline", "state")
INSERT_CHUNK = 500  # rows per INSERT statement (6 parameters each, far under SQLite's 32,766)


@functools.lru_cache(maxsize=64)
def _insert_sql(n: int) -> str:
    """Only placeholders and the fixed column names go into the text."""
    marks = "(" + ", ".join("?" * len(INSERT_COLUMNS)) + ")"
    columns = ", ".join(INSERT_COLUMNS)
    return f"INSERT INTO events ({columns}) VALUES " + ", ".join([marks] * n)  # noqa: S608


@functools.lru_cache(maxsize=64)
def _delete_sql(n: int) -> str:
    return "DELETE FROM events WHERE id IN (" + ", ".join("?" * n) + ")"  # noqa: S608


def delete_events(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Delete rows by id, INSERT_CHUNK per statement (one statement, not one per row)."""
    for start in range(0, len(ids), INSERT_CHUNK):
        chunk = ids[start:start + INSERT_CHUNK]
        conn.execute(_delete_sql(len(chunk)), chunk)


def insert_events(conn: sqlite3.Connection, values: Sequence[Any]) -> list[int]:
    """Insert rows given as one flat sequence of INSERT_COLUMNS values; return their ids.

    One statement per INSERT_CHUNK rows. The ids are the statement's last rowid and the ones
    before it: AUTOINCREMENT gives each new row one more than the largest id ever used, and
    the caller holds the write transaction, so one statement's rows are consecutive
    (tests/test_outbox_merge.py checks every id against its row)."""
    width = len(INSERT_COLUMNS)
    ids: list[int] = []
    for start in range(0, len(values), INSERT_CHUNK * width):
        chunk = values[start:start + INSERT_CHUNK * width]
        n = len(chunk) // width
        last = int(conn.execute(_insert_sql(n), chunk).lastrowid or 0)
        ids.extend(range(last - n + 1, last + 1))
    return ids


@dataclass(frozen=True)
class Enqueue:
    """One `Outbox.enqueue` call's rows as they wait for the shared transaction: `lease` set
    means stored inflight, reserved for that many seconds (`emitter fire`)."""

    rows: list[tuple[str, bytes]]
    ttl: float
    lease: float | None


def full_error(where: object, events: int, size: int, max_events: int, max_bytes: int,
               n: int) -> OutboxFullError:
    """The refusal of `n` new events by an outbox at its bound (both backends say this)."""
    return OutboxFullError(
        f"outbox {where} is full ({events:,} events, {size:,} bytes; limits {max_events:,} "
        f"events, {max_bytes:,} bytes): refused {n} new event(s); nothing already accepted was "
        "dropped. Let the sender catch up, or free room with `emitter outbox purge --dead`.")


class OutboxSignals:
    """What both outboxes (SQLite and the shared PostgreSQL one) give the senders on top of
    their own `settle`: one-event shortcuts and the in-process wake-up for new work."""

    _work: threading.Event

    def settle(self, items: Sequence[Settlement], *, durable: bool = False) -> None:
        raise NotImplementedError

    def wait_for_work(self, timeout: float) -> bool:
        """Block until an enqueue/retry in this process may have made work, or `timeout`."""
        woke = self._work.wait(timeout)
        self._work.clear()
        return woke

    def wake(self) -> None:
        self._work.set()

    def mark_delivered(self, event_id: int) -> None:
        self.settle([Settlement(event_id, "delivered")], durable=True)

    def mark_retry(self, event_id: int, next_at: float, status: int | None, error: str, *,
                   attempts: int | None = None) -> None:
        """Back to pending, due at `next_at`; `attempts` overrides the stored count."""
        self.settle([Settlement(event_id, "retry", next_at, status, error, attempts)],
                    durable=True)

    def mark_dead(self, event_id: int, status: int | None, error: str) -> None:
        self.settle([Settlement(event_id, "dead", 0.0, status, error)], durable=True)
