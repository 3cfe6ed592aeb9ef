"""A COMMIT whose answer is lost with its connection, on a real PostgreSQL (the throwaway
cluster) behind a real TCP proxy that cuts the connection just after (or instead of)
forwarding the COMMIT: Database learns the outcome from the server and says it as it is."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from emitter.errors import OutboxUnavailableError
from emitter.state.postgres.db import Database
from tests.pgproxy import CommitCutter

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-in-url"  # trust auth ignores it; it must appear in no message


@pytest.fixture()
def proxy(pg_cluster: Any) -> Iterator[CommitCutter]:
    with CommitCutter(pg_cluster.socket_dir) as cutter:
        yield cutter


@pytest.fixture()
def direct(pg_cluster: Any) -> str:
    """A fresh database with an empty table t, reached without the proxy; its URL."""
    url = str(pg_cluster.new_database())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (k TEXT NOT NULL)")
    return url


@pytest.fixture()
def logged() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("emitter.state.postgres.db")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def through(proxy: CommitCutter, direct: str, **options: Any) -> Database:
    return Database(proxy.url(urlsplit(direct).path.lstrip("/"), PASSWORD), migrate=False,
                    **options)


def rows(direct: str) -> list[str]:
    with psycopg.connect(direct) as conn:
        return [r[0] for r in conn.execute("SELECT k FROM t ORDER BY k").fetchall()]


def said(records: list[logging.LogRecord]) -> str:
    return "\n".join(repr(r.__dict__) for r in records)


@pytest.mark.parametrize("how", ["tx", "batch"])
def test_a_commit_whose_answer_is_lost_but_committed_returns_normally(
        proxy: CommitCutter, direct: str, logged: list[logging.LogRecord], how: str) -> None:
    db = through(proxy, direct)
    committed: list[str] = []
    proxy.arm("after")
    if how == "tx":
        with db.tx() as cur:
            cur.execute("INSERT INTO t VALUES ('x')")
    else:
        with db.batch():
            with db.tx() as cur:
                cur.execute("INSERT INTO t VALUES ('x')")
            db.on_commit(lambda: committed.append("ran"))
    assert proxy.cut.is_set()  # the COMMIT really was cut off from its answer
    assert rows(direct) == ["x"]  # stored, exactly once
    assert committed == ([] if how == "tx" else ["ran"])
    (warning,) = logged
    assert warning.levelno == logging.WARNING
    assert "in doubt" in warning.getMessage() and "committed" in warning.getMessage()
    assert PASSWORD not in said(logged)
    db.close()


def test_a_commit_lost_before_the_server_got_it_is_refused_and_nothing_stored(
        proxy: CommitCutter, direct: str, logged: list[logging.LogRecord]) -> None:
    db = through(proxy, direct)
    proxy.arm("before")
    with pytest.raises(OutboxUnavailableError) as caught, db.tx() as cur:
        cur.execute("INSERT INTO t VALUES ('x')")
    assert proxy.cut.is_set()
    assert "the event was refused" in str(caught.value)
    assert "unknown" not in str(caught.value) and PASSWORD not in str(caught.value)
    assert rows(direct) == []
    assert logged == []
    with db.tx() as cur:  # and the pool goes on with a sound connection
        cur.execute("INSERT INTO t VALUES ('y')")
    assert rows(direct) == ["y"]
    db.close()


def test_a_commit_whose_outcome_stays_unknown_says_so(
        proxy: CommitCutter, direct: str, logged: list[logging.LogRecord]) -> None:
    db = through(proxy, direct, in_doubt_wait=1.0)
    proxy.arm("before")
    proxy.refuse = True  # the pool's connection is open; every new one fails: server "away"
    with pytest.raises(OutboxUnavailableError) as caught, db.tx() as cur:
        cur.execute("INSERT INTO t VALUES ('x')")
    message = str(caught.value)
    assert "unknown (in doubt)" in message, message
    assert "may duplicate it, never lose it" in message, message
    assert PASSWORD not in message and PASSWORD not in said(logged)
    (warning,) = logged
    assert "unknown" in warning.getMessage()
    db.close()


def test_an_id_handed_out_again_after_crash_recovery_is_not_taken_for_ours(
        pg_cluster: Any, proxy: CommitCutter, direct: str) -> None:
    """The server crashes with the transaction's WAL still in its buffers: recovery never
    sees that id and gives it to the next transaction, which commits. txid_status then says
    'committed' about that other transaction; ours must still be refused."""
    db = through(proxy, direct, in_doubt_wait=60.0)
    proxy.arm("before")
    proxy.hold_server_side = True  # the session stays open in its transaction until the crash
    proxy.refuse = True
    outcome: list[BaseException | None] = []

    def ours() -> None:
        try:
            with db.tx() as cur:
                cur.execute("INSERT INTO t VALUES ('ours')")
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=ours)
    thread.start()
    assert proxy.cut.wait(30)
    with psycopg.connect(direct, autocommit=True) as conn:
        (xid,) = conn.execute("SELECT backend_xid::text::bigint FROM pg_stat_activity WHERE"
                              " state = 'idle in transaction' AND datname = current_database()"
                              ).fetchone()  # type: ignore[misc]
    pg_cluster.stop_immediate()
    pg_cluster.restart()
    with psycopg.connect(direct, autocommit=True) as conn:
        others = []
        for _ in range(5):
            with conn.transaction():
                conn.execute("INSERT INTO t VALUES ('other')")
                others.append(conn.execute("SELECT txid_current()").fetchone()[0])  # type: ignore[index]
    assert xid in others, (xid, others)  # the id really was handed out again
    proxy.refuse = False  # now the waiting COMMIT may ask the server
    thread.join(90)
    (result,) = outcome
    assert isinstance(result, OutboxUnavailableError), result
    assert "the event was refused" in str(result)
    assert "ours" not in rows(direct)
    db.close()
