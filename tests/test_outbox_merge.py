"""Merged enqueues: the enqueues of one shared transaction are inserted by one multi-row
statement (emitter.delivery.outboxrows.insert_events) instead of one statement per row. The
fast path is held to the plain one: every id returned is the id of exactly that caller's row,
the bounds refuse exactly the callers a one-by-one check would refuse, and a fault in a merged
call fails only its own ops."""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from emitter.delivery.groupcommit import GroupCommitter
from emitter.delivery.outbox import Outbox
from emitter.delivery.outboxrows import INSERT_CHUNK, insert_events
from emitter.errors import OutboxFullError


def _stored(path: Path) -> dict[int, tuple[str, bytes, str]]:
    conn = sqlite3.connect(path)
    try:
        return {i: (r, bytes(b), s) for i, r, b, s in
                conn.execute("SELECT id, rule_id, body, state FROM events")}
    finally:
        conn.close()


def test_concurrent_enqueues_get_the_ids_of_their_own_rows(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    got: dict[tuple[int, int], list[int]] = {}
    lock = threading.Lock()

    def caller(worker: int) -> None:
        for call in range(40):
            n = 1 + (worker * 7 + call) % 5  # 1-5 rows per call
            items = [(f"rule-{worker}", f"w{worker} c{call} r{k}".encode()) for k in range(n)]
            ids = outbox.enqueue(items, claimed=call % 4 == 0)
            with lock:
                got[(worker, call)] = ids

    threads = [threading.Thread(target=caller, args=(w,)) for w in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    outbox.close()
    stored = _stored(tmp_path / "o.db")
    every = [i for ids in got.values() for i in ids]
    assert len(every) == len(set(every)) == len(stored)
    for (worker, call), ids in got.items():
        state = "inflight" if call % 4 == 0 else "pending"
        assert [stored[i] for i in ids] == [
            (f"rule-{worker}", f"w{worker} c{call} r{k}".encode(), state)
            for k in range(len(ids))]


def test_one_enqueue_larger_than_a_statement(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    n = INSERT_CHUNK * 2 + 17
    ids = outbox.enqueue([("r", b"%d" % k) for k in range(n)])
    outbox.close()
    stored = _stored(tmp_path / "o.db")
    assert [stored[i][1] for i in ids] == [b"%d" % k for k in range(n)]


def test_insert_events_ids_follow_the_rows_after_deletes(tmp_path: Path) -> None:
    """Ids stay right when the largest ids were deleted (AUTOINCREMENT never reuses them)."""
    outbox = Outbox(tmp_path / "o.db")
    first = outbox.enqueue([("r", b"a"), ("r", b"b"), ("r", b"c")])
    outbox.close()
    conn = sqlite3.connect(tmp_path / "o.db", isolation_level=None)
    conn.execute("DELETE FROM events WHERE id >= ?", (first[1],))
    conn.execute("BEGIN IMMEDIATE")
    ids = insert_events(conn, [v for k in range(3) for v in
                               ("r", b"n%d" % k, 0.0, 0.0, 9e9, "pending")])
    conn.execute("COMMIT")
    assert ids[0] > first[-1]
    assert [bytes(conn.execute("SELECT body FROM events WHERE id = ?", (i,)).fetchone()[0])
            for i in ids] == [b"n0", b"n1", b"n2"]
    conn.close()


def test_the_bounds_refuse_what_a_one_by_one_check_refuses(tmp_path: Path) -> None:
    """Callers racing for the last room: the accepted ones fit, the refused ones wrote
    nothing, and the stored count is what the accepted ones were told."""
    limit = 100
    outbox = Outbox(tmp_path / "o.db", max_events=limit)
    accepted: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()

    def caller(worker: int) -> None:
        for call in range(10):
            n = 1 + (worker + call) % 4
            try:
                ids = outbox.enqueue([("r", b"x")] * n)
            except OutboxFullError as exc:
                with lock:
                    refused.append(str(exc))
            else:
                with lock:
                    accepted.extend(ids)

    threads = [threading.Thread(target=caller, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    status = outbox.status()
    outbox.close()
    assert refused and all("is full" in r for r in refused)
    assert len(accepted) <= limit
    assert sorted(_stored(tmp_path / "o.db")) == sorted(accepted)
    assert status.pending == len(accepted)


def test_a_fault_in_a_merged_call_fails_only_its_ops(tmp_path: Path) -> None:
    committer = GroupCommitter(tmp_path / "g.db")
    committer.executescript("CREATE TABLE t (k INTEGER PRIMARY KEY);"
                            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER);")
    hold = threading.Lock()
    hold.acquire()

    def blocking(conn: sqlite3.Connection, tally: collections.Counter[str]) -> None:
        hold.acquire()  # keeps the first transaction open while the others queue
        conn.execute("INSERT INTO t VALUES (0)")

    def broken(conn: sqlite3.Connection, tally: collections.Counter[str],
               payloads: list[int]) -> list[int]:
        raise RuntimeError("fault in the merged call")

    def good(conn: sqlite3.Connection, tally: collections.Counter[str],
             payloads: list[int]) -> list[object]:
        conn.executemany("INSERT INTO t VALUES (?)", [(p,) for p in payloads if p % 2])
        return [p * 10 if p % 2 else ValueError(f"even {p}") for p in payloads]

    outcomes: dict[str, object] = {}

    def submit(name: str, call: object) -> None:
        try:
            outcomes[name] = call()  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[name] = f"{type(exc).__name__}: {exc}"

    first = threading.Thread(target=submit, args=("first", lambda: committer.submit(blocking)))
    first.start()
    calls = {"b1": lambda: committer.submit_merged(broken, 1),
             "g1": lambda: committer.submit_merged(good, 1),
             "g2": lambda: committer.submit_merged(good, 2),
             "g3": lambda: committer.submit_merged(good, 3),
             "b2": lambda: committer.submit_merged(broken, 2)}
    others = [threading.Thread(target=submit, args=item) for item in calls.items()]
    for t in others:
        t.start()
    deadline = time.monotonic() + 30
    while len(committer._queue) < len(calls):  # all queued behind the first (leading)
        assert time.monotonic() < deadline, "the merged ops never queued"
        time.sleep(0.01)
    hold.release()
    for t in [first, *others]:
        t.join(30)
    assert outcomes == {"first": None, "b1": "RuntimeError: fault in the merged call",
                        "b2": "RuntimeError: fault in the merged call", "g1": 10,
                        "g2": "ValueError: even 2", "g3": 30}
    committer.close()
    conn = sqlite3.connect(tmp_path / "g.db")
    assert sorted(k for (k,) in conn.execute("SELECT k FROM t")) == [0, 1, 3]
    conn.close()


@pytest.mark.parametrize("n", [1, INSERT_CHUNK, INSERT_CHUNK + 1])
def test_insert_events_chunk_edges(tmp_path: Path, n: int) -> None:
    conn = sqlite3.connect(tmp_path / "o.db", isolation_level=None)
    Outbox(tmp_path / "o.db").close()
    conn.execute("BEGIN IMMEDIATE")
    ids = insert_events(conn, [v for k in range(n) for v in
                               ("r", b"%d" % k, 0.0, 0.0, 9e9, "pending")])
    conn.execute("COMMIT")
    rows = dict(conn.execute("SELECT id, body FROM events"))
    assert [bytes(rows[i]) for i in ids] == [b"%d" % k for k in range(n)]
    conn.close()
