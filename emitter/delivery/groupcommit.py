"""Group commit for one SQLite database: concurrent writers share a transaction and an fsync,
and each returns only once its own work is durable. Used by the outbox."""

from __future__ import annotations

import collections
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from emitter.errors import ConfigError, OutboxUnavailableError

BUSY_TIMEOUT_MS = 10_000
T = TypeVar("T")
# An op gets the connection (inside a transaction) and a tally of counter deltas, which the
# committer adds to the `counters` table once per transaction. An op that refuses (raises
# anything but sqlite3.Error) must do so before it writes: there are no per-op savepoints,
# they cost more than the inserts. It may still count its refusal in the tally. An
# sqlite3.Error fails the whole transaction and every op in it.
OpFn = Callable[[sqlite3.Connection, "collections.Counter[str]"], T]
# A merged op (`submit_merged`): the ops of one transaction submitted with the same function
# go to one call of it, with their payloads in queue order, and it returns one result per
# payload. A result that is an Exception is raised to that op's caller (a refusal: it must
# not have written that payload's rows). Merging lets a batch of inserts be one statement:
# every statement lets go of the interpreter lock while SQLite runs it, and under many
# request threads each of those costs the leader a wait to get it back.
MergedFn = Callable[[sqlite3.Connection, "collections.Counter[str]", list[Any]], list[Any]]


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=FULL and a generous busy timeout."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: every commit is fsynced before the writer is told it is done, so an
        # acknowledged event survives a power cut, not just a process crash.
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        raise ConfigError(f"outbox {path}: cannot open it: {exc}") from exc
    return conn


class _Op:
    """One caller's work; its thread sleeps on `_wake` (a lock it cannot take until the
    leader releases it) until the op is done or the caller is made the next leader."""

    __slots__ = ("fn", "merge", "payload", "durable", "result", "error", "done", "_wake")

    def __init__(self, fn: OpFn[Any] | None, durable: bool, merge: MergedFn | None = None,
                 payload: Any = None) -> None:
        self.fn = fn
        self.merge = merge
        self.payload = payload
        self.durable = durable
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self._wake = threading.Lock()
        self._wake.acquire()

    def sleep(self) -> None:
        self._wake.acquire()

    def wake(self) -> None:
        self._wake.release()


class GroupCommitter:
    """Owns the one writing connection of a process to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.Lock()  # guards _queue and _committing
        self._queue: collections.deque[_Op] = collections.deque()
        self._committing = False
        self._idle = threading.Event()  # no commit running (for close)
        self._idle.set()
        self._sync = "FULL"

    def executescript(self, script: str) -> None:
        try:
            self._conn.executescript(script)
        except sqlite3.Error as exc:
            raise ConfigError(f"outbox {self.path}: cannot initialise it: {exc}") from exc

    def close(self) -> None:
        self._idle.wait(30)
        with self._lock:
            self._conn.close()

    def submit(self, fn: OpFn[T], *, durable: bool = True) -> T:
        """Run `fn` inside a shared write transaction; return once that transaction is durable.

        A caller that finds no commit running becomes the leader: it takes every queued op,
        runs them in one transaction (an op that refuses leaves the others unaffected),
        commits once and wakes each of their callers, and only theirs. Callers arriving
        meanwhile queue; when the leader's own op is done it hands the leadership to the
        first of them (one targeted wake-up), which commits the next batch.

        `durable=False` is for bookkeeping whose loss in a power cut is harmless (a claim, a
        delivered event's deletion: at worst a duplicate): a transaction holding only such ops
        is committed without fsync (synchronous=NORMAL; WAL keeps it ordered and crash-safe,
        and the next durable commit's fsync covers it too).
        """
        return self._run(_Op(fn, durable))  # type: ignore[no-any-return]

    def submit_merged(self, merge: MergedFn, payload: Any, *, durable: bool = True) -> Any:
        """Like `submit`, with the ops of one transaction that share `merge` run by one call
        of it (see MergedFn); returns this payload's result."""
        return self._run(_Op(None, durable, merge, payload))

    def _run(self, op: _Op) -> Any:
        with self._lock:
            self._queue.append(op)
            leading = not self._committing
            if leading:
                self._committing = True
                self._idle.clear()
        if not leading:
            op.sleep()
        if not op.done:  # the leader now (first in, or handed over)
            self._lead(op)
        if op.error is not None:
            raise op.error
        return op.result

    def _lead(self, own: _Op) -> None:
        """Commit everything queued (`own` is among it: a leader's op stays queued until it
        leads), wake those callers, then hand over to the next waiting op or stand down."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
        try:
            self._commit(batch)
        except BaseException as exc:  # e.g. KeyboardInterrupt mid-commit: free the others
            for other in batch:
                if not other.done:
                    other.error, other.done = exc, True
            raise
        finally:
            self._finish(batch, own)

    def _finish(self, batch: list[_Op], own: _Op) -> None:
        for other in batch:
            if other is not own:
                other.wake()
        with self._lock:
            successor = self._queue[0] if self._queue else None  # not done: it will lead
            if successor is None:
                self._committing = False
                self._idle.set()
        if successor is not None:
            successor.wake()

    def _commit(self, batch: list[_Op]) -> None:
        conn = self._conn
        tally: collections.Counter[str] = collections.Counter()
        sync = "FULL" if any(op.durable for op in batch) else "NORMAL"
        try:
            if sync != self._sync:
                conn.execute(f"PRAGMA synchronous = {sync}")
                self._sync = sync
            conn.execute("BEGIN IMMEDIATE")
            merged: list[MergedFn] = []
            for op in batch:
                if op.merge is None:
                    _apply(op, conn, tally)
                elif op.merge not in merged:  # the group runs where its first op stood
                    merged.append(op.merge)
                    _apply_merged([o for o in batch if o.merge == op.merge], conn, tally)
            for name, delta in tally.items():
                conn.execute(
                    "INSERT INTO counters VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    (name, delta),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = self._storage_error(exc)
            for op in batch:
                op.error, op.result = failure, None
        for op in batch:
            op.done = True

    def _storage_error(self, exc: sqlite3.Error) -> Exception:
        """Any failure to commit (disk full, I/O error, a lock held past the busy timeout)
        means the outbox cannot take work now; it clears by itself when the cause does."""
        text = str(exc)
        why = "the disk is full" if "full" in text else "it cannot be written"
        return OutboxUnavailableError(
            f"outbox {self.path}: {why} ({text}); the event was refused, nothing already "
            "accepted was dropped; try again later"
        )


def _apply(op: _Op, conn: sqlite3.Connection, tally: collections.Counter[str]) -> None:
    assert op.fn is not None
    try:
        op.result = op.fn(conn, tally)
    except sqlite3.Error:
        raise  # the whole transaction is in doubt: every op fails
    except Exception as exc:  # noqa: BLE001 - handed back to that op's caller
        op.error = exc


def _apply_merged(group: list[_Op], conn: sqlite3.Connection,
                  tally: collections.Counter[str]) -> None:
    merge = group[0].merge
    assert merge is not None
    try:
        results = merge(conn, tally, [op.payload for op in group])
        if len(results) != len(group):
            raise RuntimeError(f"{merge!r} returned {len(results)} results for {len(group)}")
    except sqlite3.Error:
        raise
    except Exception as exc:  # noqa: BLE001 - a fault in the merged call fails its ops only
        results = [exc] * len(group)
    for op, result in zip(group, results, strict=True):
        if isinstance(result, Exception):
            op.error = result
        else:
            op.result = result
