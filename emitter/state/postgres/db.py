"""One process's connection to the shared PostgreSQL backend: a small pool, one transaction per
batch held by the calling thread, driver errors turned into OutboxUnavailableError, a COMMIT
whose answer was lost resolved by asking the server, and the versioned migrations
(emitter/state/migrations/NNNN_*.sql) applied under an advisory lock."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from emitter.errors import ConfigError, OutboxUnavailableError

log = logging.getLogger(__name__)
POOL_SIZE = 16  # connections per process; webhook threads beyond it wait for one
POOL_WAIT = 10.0  # seconds a caller waits for a free connection before it is refused
DEFAULT_LEASE = 30.0  # seconds a claim holds an event; renewed while its replica lives
_MIGRATION_LOCK = 0x656D6974  # pg_advisory_xact_lock key: one migrator at a time
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Server-side bounds, so a lost server or a stuck lock never hangs a trigger or a sender.
_OPTIONS = ("-c statement_timeout=30000 -c lock_timeout=15000"
            " -c idle_in_transaction_session_timeout=60000")
# How long a COMMIT whose answer was lost waits to learn from the server whether it committed
# (the request and its thread wait meanwhile): a crashed server commonly restarts and recovers
# within a few seconds, and past about 10 s webhook senders stop waiting for the answer
# (GitHub's timeout is 10 s) and retry, so a longer wait would decide for nobody.
IN_DOUBT_WAIT = 10.0
IN_DOUBT_POLL = 0.25  # seconds between two questions while the server is away
# Asked just before COMMIT (txid_* and pg_*_lsn: PostgreSQL 10+): the transaction id (NULL when
# it wrote nothing: then nothing can be in doubt), where its writes end in the WAL, and where
# the server's last recovery stopped replaying (NULL when it started without one).
_BEFORE_COMMIT = ("SELECT x, CASE WHEN x IS NOT NULL THEN pg_current_wal_insert_lsn()::text END,"
                  " pg_last_wal_replay_lsn()::text FROM txid_current_if_assigned() AS x")
# Asked afterwards on a fresh connection. Crash recovery hands out again the ids of
# transactions whose WAL never reached disk, so txid_status would then describe another
# transaction: when a recovery ran since (the replay point moved) and stopped before our
# writes, ours never committed. Otherwise txid_status is about ours.
_OUTCOME = ("SELECT CASE WHEN r IS NULL OR r IS NOT DISTINCT FROM %(replayed)s::pg_lsn"
            " OR r >= %(written)s::pg_lsn THEN txid_status(%(txid)s) ELSE 'aborted' END"
            " FROM pg_last_wal_replay_lsn() AS r")


class _Pending(NamedTuple):
    """A transaction about to commit, as _BEFORE_COMMIT tells it."""

    txid: int
    written: str
    replayed: str | None


def is_url(text: str | None) -> bool:
    return bool(text) and str(text).startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL without its password, for messages and `outbox status`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def split_options(url: str) -> tuple[str, dict[str, str]]:
    """The URL for libpq and emitter's own query options (`lease=SECONDS`), which libpq
    would refuse."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("lease",)}
    theirs = [(k, v) for k, v in query if k not in ours]
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refusal(where: str, exc: BaseException) -> OutboxUnavailableError:
    return OutboxUnavailableError(
        f"database {where} is unavailable ({_first_line(exc)}); the event was refused, "
        "nothing already accepted was dropped; try again later")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped, in order."""
    found = []
    for item in resources.files("emitter.state").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    """The pool and the per-thread batch transaction; see the module docstring."""

    def __init__(self, url: str, *, migrate: bool = True, pool_size: int = POOL_SIZE,
                 in_doubt_wait: float = IN_DOUBT_WAIT) -> None:
        import psycopg

        self._psycopg = psycopg
        self._in_doubt_wait = in_doubt_wait
        self.where = redact(url)
        self._conninfo, options = split_options(url)
        try:
            self.lease = float(options.get("lease", DEFAULT_LEASE))
        except ValueError:
            raise ConfigError(f"state URL {self.where}: lease must be a number of seconds"
                              ) from None
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.host = socket.gethostname()
        self._free: list[Any] = []
        self._free_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._local = threading.local()
        self._closed = False
        try:
            if migrate:
                self.migrate()
            else:
                with self.tx() as cur:
                    cur.execute("SELECT 1")
        except OutboxUnavailableError as exc:
            raise ConfigError(f"{exc}; check --state-url / EMITTER_STATE_URL") from exc

    # ---- connections ---------------------------------------------------------------------

    def _connect(self, timeout: int = 5) -> Any:
        return self._psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=timeout, options=_OPTIONS,
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            application_name="emitter")

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=POOL_WAIT):
            raise OutboxUnavailableError(
                f"database {self.where}: every connection of this process is busy; "
                "the event was refused, nothing already accepted was dropped; try again later")
        conn = None
        try:
            with self._free_lock:
                conn = self._free.pop() if self._free else None
            if conn is None or conn.closed or conn.broken:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.broken or self._closed:
                    conn.close()
                else:
                    with self._free_lock:
                        self._free.append(conn)
            self._slots.release()

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except self._psycopg.Error as exc:
            raise _refusal(self.where, exc) from exc

    @contextmanager
    def tx(self, *, own: bool = False) -> Iterator[Any]:
        """A cursor inside a transaction: this thread's batch when one is open (and `own`
        is False), else a transaction of its own committed on leaving."""
        held = None if own else getattr(self._local, "cur", None)
        if held is not None:
            yield held
            return
        with self._own() as cur:
            yield cur

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Everything this thread does on the database inside shares one transaction,
        committed at the end (rolled back when the body raises)."""
        if getattr(self._local, "cur", None) is not None:
            yield
            return
        self._local.after = []
        try:
            with self._own() as cur:
                self._local.cur = cur
                try:
                    yield
                finally:
                    self._local.cur = None
            after = self._local.after
        finally:
            self._local.after = None
        for fn in after:
            fn()

    @contextmanager
    def _own(self) -> Iterator[Any]:
        """A cursor in a transaction of its own on a pooled connection, committed on leaving
        (rolled back when the body raises). A COMMIT that loses its connection after the
        transaction wrote is in doubt: _settle asks the server how it ended."""
        pending: _Pending | None = None
        lost: Exception | None = None
        with self._mapped():
            with self._connection() as conn:
                try:
                    with conn.transaction(), conn.cursor() as cur:
                        yield cur
                        cur.execute(_BEFORE_COMMIT)
                        txid, written, replayed = cur.fetchone()
                        if txid is not None:
                            pending = _Pending(int(txid), str(written), replayed)
                except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
                    if pending is None:  # the body or the question failed: no COMMIT was sent
                        raise
                    lost = exc
            if pending is not None and lost is not None:  # outside the pool's slot
                self._settle(pending, lost)

    def _settle(self, pending: _Pending, lost: Exception) -> None:
        """Return when the server says the transaction committed; else OutboxUnavailableError,
        saying so when the outcome is still unknown after IN_DOUBT_WAIT."""
        outcome = self._outcome(pending)
        fields = {"database": self.where, "txid": pending.txid, "error": _first_line(lost)}
        if outcome == "committed":
            log.warning("database COMMIT was in doubt (connection lost) and turned out "
                        "committed", extra=fields)
            return
        if outcome == "aborted":
            raise _refusal(self.where, lost) from lost
        message = (f"database {self.where}: the connection was lost during COMMIT "
                   f"({_first_line(lost)}) and the server did not say within "
                   f"{self._in_doubt_wait:g} s whether transaction {pending.txid} committed; "
                   "the outcome is unknown (in doubt): the event may have been stored, and a "
                   "retry may duplicate it, never lose it")
        log.warning("database COMMIT outcome unknown (in doubt)", extra=fields)
        raise OutboxUnavailableError(message) from lost

    def _outcome(self, pending: _Pending) -> str | None:
        """'committed' or 'aborted' as a fresh connection (not the pool's) learns it, asked
        every IN_DOUBT_POLL s while the server is away or the transaction still in progress
        (its session not yet ended); None when the wait runs out first."""
        end = time.monotonic() + self._in_doubt_wait
        while True:
            with contextlib.suppress(self._psycopg.Error):  # not back yet: ask again
                left = max(2, int(end - time.monotonic()) + 1)  # libpq counts whole seconds
                with self._connect(timeout=min(5, left)) as conn:
                    row = conn.execute(_OUTCOME, pending._asdict()).fetchone()
                if row is not None and row[0] in ("committed", "aborted"):
                    return str(row[0])
            if time.monotonic() + IN_DOUBT_POLL >= end:
                return None
            time.sleep(IN_DOUBT_POLL)

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Call `fn` once this thread's batch commits (at once when none is open)."""
        after = getattr(self._local, "after", None)
        if after is None:
            fn()
        else:
            after.append(fn)

    def reachable(self) -> str | None:
        """None when a query answers, else why not (for /healthz)."""
        try:
            with self.tx(own=True) as cur:
                cur.execute("SELECT 1")
        except OutboxUnavailableError as exc:
            return str(exc)
        return None

    def close(self) -> None:
        self._closed = True
        with self._free_lock:
            free, self._free = self._free, []
        for conn in free:
            conn.close()

    # ---- migrations ----------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not yet applied (in one transaction: all or none); return
        their names. Safe with several replicas starting at once (an advisory lock)."""
        applied: list[str] = []
        with self.tx(own=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY"
                        " KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
            cur.execute("SELECT version FROM schema_migrations")
            done = {int(r[0]) for r in cur.fetchall()}
            for version, name, sql in migrations():
                if version in done:
                    continue
                cur.execute(sql)  # psycopg sends it as one simple-protocol script
                cur.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                            (version, name, time.time()))
                applied.append(name)
        for name in applied:
            log.info("database migration applied", extra={"migration": name})
        return applied

    def versions(self) -> list[int]:
        with self.tx() as cur:
            cur.execute("SELECT version FROM schema_migrations ORDER BY version")
            return [int(r[0]) for r in cur.fetchall()]
