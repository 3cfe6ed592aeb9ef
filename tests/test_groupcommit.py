"""The group committer under many concurrent callers: each gets its own result or its own
refusal, nothing is lost or run twice, transactions are shared, and nobody is left asleep."""

from __future__ import annotations

import collections
import sqlite3
import threading
from pathlib import Path

from emitter.delivery.groupcommit import GroupCommitter


def test_many_callers_each_get_their_own_outcome(tmp_path: Path) -> None:
    committer = GroupCommitter(tmp_path / "g.db")
    committer.executescript("CREATE TABLE t (k INTEGER PRIMARY KEY);"
                            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER);")
    commits = [0]
    results: dict[int, object] = {}
    lock = threading.Lock()

    def caller(worker: int) -> None:
        for i in range(60):
            key = worker * 1000 + i

            def op(conn: sqlite3.Connection, tally: collections.Counter[str],
                   key: int = key) -> int:
                if key % 7 == 0:
                    tally["refused"] += 1
                    raise ValueError(f"refused {key}")
                conn.execute("INSERT INTO t VALUES (?)", (key,))
                tally["kept"] += 1
                return key * 2

            try:
                got: object = committer.submit(op, durable=i % 3 != 0)
            except ValueError as exc:
                got = str(exc)
            with lock:
                results[key] = got

    original = committer._commit

    def counting(batch: list) -> None:  # type: ignore[type-arg]
        commits[0] += 1
        original(batch)

    committer._commit = counting  # type: ignore[method-assign]
    threads = [threading.Thread(target=caller, args=(w,)) for w in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)  # nobody left asleep
    expected = {w * 1000 + i: (f"refused {w * 1000 + i}" if (w * 1000 + i) % 7 == 0
                               else (w * 1000 + i) * 2) for w in range(32) for i in range(60)}
    assert results == expected
    kept = sorted(k for k, v in expected.items() if isinstance(v, int))
    committer.close()
    conn = sqlite3.connect(tmp_path / "g.db")
    assert [k for (k,) in conn.execute("SELECT k FROM t ORDER BY k")] == kept
    counts = dict(conn.execute("SELECT name, value FROM counters"))
    assert counts == {"kept": len(kept), "refused": len(expected) - len(kept)}
    assert commits[0] < len(expected)  # callers shared transactions


def test_a_failed_commit_fails_every_op_of_its_batch_and_frees_them(tmp_path: Path) -> None:
    committer = GroupCommitter(tmp_path / "g.db")
    committer.executescript("CREATE TABLE t (k INTEGER PRIMARY KEY);"
                            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER);")

    def duplicate(conn: sqlite3.Connection, tally: collections.Counter[str]) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (1)")  # sqlite3.IntegrityError: the batch fails

    errors: list[str] = []

    def caller() -> None:
        try:
            committer.submit(duplicate)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == ["OutboxUnavailableError"] * 8
    assert committer.submit(lambda conn, tally: 5) == 5  # the committer still works
