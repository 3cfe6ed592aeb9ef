"""The outbox's maintained per-state counts (what `outbox status` and /metrics read without
counting the backlog) equal a full count after any sequence of operations, on both backends,
and an outbox from before the counts is counted once when opened."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emitter.delivery.outbox import CLAIM_LEASE, Outbox
from emitter.delivery.outboxrows import Settlement
from tests.backends import Place

BOXES = 2  # two writers on one outbox: two connections (and PostgreSQL slots)


def body(n: int) -> bytes:
    return json.dumps({"title": f"event {n}", "text": "t" * (n % 7)}).encode()


@contextlib.contextmanager
def raw(place: Place, box: Any) -> Iterator[Any]:
    """A cursor on the outbox's database that bypasses the outbox (for the reference count)."""
    if place.kind == "postgres":
        with box.db.tx(own=True) as cur:
            yield cur
        return
    conn = sqlite3.connect(box.path, isolation_level=None)
    try:
        yield conn.cursor()
    finally:
        conn.close()


def counted(place: Place, box: Any) -> dict[str, Any]:
    """The plain path: COUNT(*) over the whole table."""
    with raw(place, box) as cur:
        cur.execute("SELECT state, count(*) FROM events GROUP BY state")
        found: dict[str, Any] = {"pending": 0, "inflight": 0, "dead": 0}
        found.update({str(s): int(n) for s, n in cur.fetchall()})
        cur.execute("SELECT count(*), coalesce(sum(length(body)), 0) FROM events")
        found["events"], found["bytes"] = (int(v) for v in cur.fetchone())
        cur.execute("SELECT min(created_at) FROM events WHERE state != 'dead'")
        found["oldest"] = cur.fetchone()[0]
    return found


def maintained(box: Any) -> dict[str, Any]:
    before = time.time()
    s = box.status()
    return {"pending": s.pending, "inflight": s.inflight, "dead": s.dead, "events": s.events,
            "bytes": s.bytes, "oldest": None if s.oldest_age is None else before - s.oldest_age}


def same(place: Place, box: Any) -> None:
    want, got = counted(place, box), maintained(box)
    want_oldest, got_oldest = want.pop("oldest"), got.pop("oldest")
    assert got == want
    assert (got_oldest is None) == (want_oldest is None)
    if want_oldest is not None:  # the age is taken against the clock: allow its tick
        assert abs(got_oldest - want_oldest) < 1.0


def apply(box: Any, op: tuple[Any, ...], held: list[int], known: list[int]) -> None:
    kind, n, pick = op
    if kind == "enqueue":
        known += box.enqueue([("r", body(len(known) + k)) for k in range(n)])
    elif kind == "enqueue_claimed":
        ids = box.enqueue([("r", body(len(known) + k)) for k in range(n)], claimed=True)
        known += ids
        held += ids
    elif kind == "claim":
        held += [r.id for r in box.claim(n)]
    elif kind == "claim_expired":  # inflight rows whose lease ran out are claimed again
        held += [r.id for r in box.claim(n, now=time.time() + CLAIM_LEASE + 60)]
    elif kind in ("deliver", "retry", "retry_later", "dead"):
        chosen = [held[(pick + k) % len(held)] for k in range(min(n, len(held)))] if held else []
        chosen = list(dict.fromkeys(chosen))
        box.settle([settlement(kind, i) for i in chosen])
    elif kind == "unclaim":
        box.unclaim(held[-n:])
    elif kind == "release":
        box.release_inflight()
    elif kind == "requeue":
        box.retry(all_dead=True)
    elif kind == "requeue_ids":
        box.retry([known[(pick + k) % len(known)] for k in range(n)] if known else [])
    elif kind == "purge":
        box.purge_dead()


def settlement(kind: str, event_id: int) -> Settlement:
    if kind == "deliver":
        return Settlement(event_id, "delivered")
    if kind == "dead":
        return Settlement(event_id, "dead", status=400, error="refused")
    later = time.time() + (3600 if kind == "retry_later" else 0)
    return Settlement(event_id, "retry", next_at=later, status=500, error="boom")


KINDS = ["enqueue", "enqueue_claimed", "claim", "claim_expired", "deliver", "retry",
         "retry_later", "dead", "unclaim", "release", "requeue", "requeue_ids", "purge"]
OPS = st.lists(st.tuples(st.integers(0, BOXES - 1), st.sampled_from(KINDS),
                         st.integers(1, 6), st.integers(0, 50)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_maintained_counts_equal_a_full_count(place: Place, ops: list[Any]) -> None:
    with contextlib.ExitStack() as stack:
        boxes = [stack.enter_context(place.outbox()) for _ in range(BOXES)]
        with raw(place, boxes[0]) as cur:
            cur.execute("DELETE FROM events")  # each example starts empty (the trigger counts)
        same(place, boxes[0])
        held: list[int] = []
        known: list[int] = []
        for which, kind, n, pick in ops:
            apply(boxes[which], (kind, n, pick), held, known)
            same(place, boxes[1 - which])  # the other writer sees what this one did
        same(place, boxes[0])


# ---- outboxes from before the counts ----------------------------------------------------------

# The SQLite outbox's schema as releases up to 0.2.0 wrote it (no state counts, no version).
OLD_SQLITE = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, rule_id TEXT NOT NULL, body BLOB NOT NULL,
    created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'inflight', 'dead')),
    last_status INTEGER, last_error TEXT, deadline REAL NOT NULL, dead_at REAL
);
CREATE INDEX events_due ON events (state, next_attempt_at, id);
CREATE TABLE totals (one INTEGER PRIMARY KEY CHECK (one = 1), events INTEGER NOT NULL,
                     bytes INTEGER NOT NULL);
INSERT INTO totals VALUES (1, 0, 0);
CREATE TRIGGER events_count_in AFTER INSERT ON events BEGIN
    UPDATE totals SET events = events + 1, bytes = bytes + length(NEW.body) WHERE one = 1;
END;
CREATE TRIGGER events_count_out AFTER DELETE ON events BEGIN
    UPDATE totals SET events = events - 1, bytes = bytes - length(OLD.body) WHERE one = 1;
END;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def fill_old(cur: Any, mark: str) -> None:
    """Rows in every state, written as an older emitter would (no counts kept)."""
    now = time.time()
    for n, state in enumerate(["pending"] * 5 + ["inflight"] * 3 + ["dead"] * 2):
        cur.execute("INSERT INTO events (rule_id, body, created_at, next_attempt_at, deadline,"
                    f" state) VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark})",
                    ("r", body(n), now + n, now, now + 3600, state))


def test_an_sqlite_outbox_from_before_the_counts_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(OLD_SQLITE)
    fill_old(conn.cursor(), "?")
    conn.close()
    with Outbox(path) as box:
        status = box.status()
        assert (status.pending, status.inflight, status.dead, status.events) == (5, 3, 2, 10)
        box.settle([Settlement(6, "delivered"), Settlement(7, "dead")])
        same(Place("sqlite", str(tmp_path)), box)
    with Outbox(path) as box:  # counted once: a second open keeps the maintained counts
        assert box.status().inflight == 1
    old = sqlite3.connect(path, isolation_level=None)
    try:  # an older emitter still opens it (its schema script runs unchanged)
        old.executescript(OLD_SQLITE.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
                          .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
                          .replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ")
                          .replace("INSERT INTO totals", "INSERT OR IGNORE INTO totals"))
        old.execute("INSERT INTO events (rule_id, body, created_at, next_attempt_at, deadline)"
                    " VALUES ('r', x'7b7d', ?, 1, 2)", (time.time(),))
    finally:
        old.close()
    with Outbox(path) as box:  # and what it wrote was counted by the triggers
        assert box.status().pending == 6
        same(Place("sqlite", str(tmp_path)), box)


def test_a_shared_outbox_from_before_the_counts_is_counted_by_the_migration(
        pg_cluster: Any) -> None:
    pytest.importorskip("psycopg")
    from emitter.state.postgres.db import Database, migrations

    url = pg_cluster.new_database()
    first = Database(url, migrate=False)
    version, name, sql = migrations()[0]
    with first.tx() as cur:  # the schema as 0.2.0 left it, with rows in every state
        cur.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT"
                    " NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
        cur.execute(sql)
        cur.execute("INSERT INTO schema_migrations VALUES (%s, %s, 0)", (version, name))
        fill_old(cur, "%s")
    first.close()
    place = Place("postgres", url)
    with place.outbox() as box:
        status = box.status()
        assert (status.pending, status.inflight, status.dead, status.events) == (5, 3, 2, 10)
        assert 2 in box.db.versions()
        box.retry(all_dead=True)
        same(place, box)
