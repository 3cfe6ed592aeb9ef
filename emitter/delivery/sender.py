"""The sender: a small pool of workers draining the outbox into a sink, with back-off, a shared
rate-limit gate, per-event deadlines and dead letters (outcomes are recorded by
emitter.delivery.settler; `fire`'s own path is emitter.delivery.queued)."""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emitter.delivery.gate import Gate
from emitter.delivery.guard import Health, SenderHealth, guarded
from emitter.delivery.outbox import Outbox, Row, Settlement
from emitter.delivery.retry import RetryPolicy
from emitter.delivery.settler import Settler
from emitter.errors import ConfigError
from emitter.events.encode import Encoded
from emitter.sinks.base import DeliveryResult, Outcome, Sink

log = logging.getLogger(__name__)
SinkFactory = Callable[[], Sink]
# Told of every finished attempt once its outcome is decided: (the row as claimed, the
# result). The daemon counts and logs them per rule.
SettledObserver = Callable[[Row, DeliveryResult], None]
# For the outbox the per-event deadline (stored in each row) bounds retries, not a count.
OUTBOX_POLICY = RetryPolicy(max_attempts=1_000_000, base=0.5, cap=60.0, deadline=86400.0)
IDLE_POLL = 1.0  # seconds: how often to look for work another process (the CLI) added
CLAIM_LINGER = 0.002  # seconds between claims that found fewer rows than room (a trickle)


class _Handoff:
    """The few claimed rows between the dispatcher and the workers (bounded: they are
    inflight in the outbox while they wait here). Workers wait on `_rows_cv`, the
    dispatcher on `_room_cv` (one lock): taking rows wakes only the dispatcher."""

    def __init__(self, capacity: int, low: int) -> None:
        self.capacity, self.low = capacity, low
        self._rows: collections.deque[Row] = collections.deque()
        lock = threading.Lock()
        self._rows_cv = threading.Condition(lock)
        self._room_cv = threading.Condition(lock)

    def wait_for_room(self, stop: threading.Event) -> int:
        """Block until the rows run low (so claims come in batches, not one by one); return
        how many may be added."""
        with self._room_cv:
            self._room_cv.wait_for(lambda: len(self._rows) <= self.low or stop.is_set(), 0.1)
            return self.capacity - len(self._rows) if len(self._rows) <= self.low else 0

    def put_many(self, rows: list[Row]) -> None:
        with self._rows_cv:
            self._rows.extend(rows)
            self._rows_cv.notify(len(rows))

    def get_many(self, stop: threading.Event, most: int) -> list[Row]:
        """Up to `most` rows (none after 0.1 s without any, or when stopping)."""
        with self._rows_cv:
            self._rows_cv.wait_for(lambda: bool(self._rows) or stop.is_set(), 0.1)
            if stop.is_set():
                return []
            rows = [self._rows.popleft() for _ in range(min(most, len(self._rows)))]
            if rows and len(self._rows) <= self.low < len(self._rows) + len(rows):
                self._room_cv.notify()  # running low: the dispatcher claims the next batch
            return rows

    def take_all(self) -> list[Row]:
        with self._rows_cv:
            rows = list(self._rows)
            self._rows.clear()
            return rows


@dataclass(frozen=True)
class SenderCounters:
    sent: int
    retried: int
    dead: int
    rate_limited: int  # 429 answers that paused the sink


class Sender:
    """Workers that take due events from `outbox` and hand each to their own sink.

    `start()` takes the outbox's sender lock and puts events a crash left inflight back to
    pending; `stop(grace)` stops claiming, lets requests in flight finish for up to `grace`
    seconds and leaves everything else in the outbox.
    """

    def __init__(
        self,
        outbox: Outbox,
        sink_factory: SinkFactory,
        *,
        workers: int = 4,
        policy: RetryPolicy = OUTBOX_POLICY,
        claim_batch: int = 32,
        rng: random.Random | None = None,
        idle_poll: float = IDLE_POLL,
        on_settled: SettledObserver | None = None,
    ) -> None:
        self.outbox = outbox
        self._on_settled = on_settled
        self._factory = sink_factory
        self._workers = max(1, workers)
        self._policy = policy
        self._batch = max(1, claim_batch)
        self._idle_poll = idle_poll
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        shared = outbox if getattr(outbox, "shared", False) else None
        self.gate = Gate(policy, self._rng, shared)  # type: ignore[arg-type]
        self._queue = _Handoff(capacity=self._workers + self._batch, low=self._workers)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._count_lock = threading.Lock()
        self._counts = {"sent": 0, "retried": 0, "dead": 0, "rate_limited": 0}
        self._progress = threading.Condition()
        self._health = Health()
        self._settler = Settler(outbox, self._progress, self._health)
        self._lock_fd: int | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        sinks = [self._factory() for _ in range(self._workers)]  # a bad sink fails first
        # Each worker takes as many rows at once as its sink has requests in flight.
        in_flight = sum(_fanout(sink, most=True) for sink in sinks)
        self._queue = _Handoff(capacity=in_flight + self._batch, low=in_flight)
        # On a shared backend every replica sends: leases keep them apart, not a lock.
        if self._lock_fd is None and not getattr(self.outbox, "shared", False):
            self._lock_fd = take_sender_lock(self.outbox.path)
        self.outbox.release_inflight()
        self._settler.start()
        dispatch = guarded("dispatch", self._dispatch_once, self._stop, self._health)
        self._threads = [threading.Thread(target=dispatch, name="outbox-dispatch")]
        self._threads += [
            threading.Thread(target=self._work, args=(sink, f"sender-{i}"),
                             name=f"outbox-sender-{i}")
            for i, sink in enumerate(sinks)
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def stop(self, grace: float = 10.0) -> bool:
        """Stop claiming; wait up to `grace` s for requests in flight. True if all finished
        (anything unfinished stays inflight and is released at the next start)."""
        self._stop.set()
        self.outbox.wake()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self._give_back_queued()
        except Exception as exc:  # noqa: BLE001 - they stay inflight; released at next start
            log.error("could not give back claimed events at stop: %s", exc)
        # Whatever finished is recorded before we return (tried for the rest of the grace).
        self._settler.close(max(1.0, deadline - time.monotonic()))
        finished = not any(t.is_alive() for t in self._threads)
        if finished and self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        return finished

    def drain(self, timeout: float | None = None) -> bool:
        """Block until no event is pending or inflight (dead letters aside), or `timeout`.
        True when the outbox was emptied."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            while self.outbox.has_undelivered():
                left = IDLE_POLL if end is None else min(IDLE_POLL, end - time.monotonic())
                if left <= 0 or self._stop.is_set():
                    return False
                self._progress.wait(left)
        return True

    def health(self) -> SenderHealth:
        """For /healthz: not ok while any part is failing (e.g. the disk is full) or one of
        the threads has stopped while the sender runs."""
        running = bool(self._threads) and not self._stop.is_set()
        alive = not running or (all(t.is_alive() for t in self._threads)
                                and self._settler.alive())
        return self._health.snapshot(alive=alive, unsettled=len(self._settler.unsettled()))

    def counters(self) -> SenderCounters:
        with self._count_lock:
            return SenderCounters(**self._counts)

    def _count(self, name: str) -> None:
        with self._count_lock:
            self._counts[name] += 1

    # ---- the dispatcher: claims bounded batches when workers have room ---------------------

    def _dispatch_once(self) -> bool:
        """One claim; False when stopping. Rows whose outcome the settler still holds are
        not sent again: it records them once the outbox takes writes again."""
        if not self.gate.wait(self._stop):
            return False
        room = self._wait_for_room()
        if room <= 0:
            return True
        rows = self.outbox.claim(room)
        if rows:
            held = self._settler.unsettled()
            rows = [row for row in rows if row.id not in held]
            self._queue.put_many(rows)
            if len(rows) < room:  # a trickle: let a few more arrive before the next claim
                self._stop.wait(CLAIM_LINGER)
            return True
        self.outbox.wait_for_work(self._idle_wait())
        return True

    def _wait_for_room(self) -> int:
        return self._queue.wait_for_room(self._stop)

    def _idle_wait(self) -> float:
        due = self.outbox.next_due()
        if due is None:
            return self._idle_poll
        return min(self._idle_poll, max(0.001, due - time.time()))

    def _give_back_queued(self) -> None:
        self.outbox.unclaim(row.id for row in self._queue.take_all())

    # ---- the workers ------------------------------------------------------------------------

    def _work(self, sink: Sink, part: str) -> None:
        def once() -> bool:
            rows = self._queue.get_many(self._stop, _fanout(sink))
            if not rows:
                return True
            if not self.gate.wait(self._stop):
                self.outbox.unclaim([row.id for row in rows])
                return False
            for row, result in zip(rows, _send_all(sink, rows), strict=True):
                self._settle(row, result)
            return True

        try:
            guarded(part, once, self._stop, self._health)()
        finally:
            sink.close()

    def _settle(self, row: Row, result: DeliveryResult) -> None:
        if result.outcome is Outcome.DELIVERED:
            self.gate.succeeded()
            self._settler.add(Settlement(row.id, "delivered"))
            self._count("sent")
        elif result.outcome is Outcome.REJECTED:
            self.gate.succeeded()
            self._settler.add(Settlement(row.id, "dead", 0.0, result.status, reason(result)))
            self._count("dead")
        else:
            self._retry(row, result)
        if self._on_settled is not None:
            try:
                self._on_settled(row, result)
            except Exception:  # noqa: BLE001 - an observer's bug must not stop delivery
                log.exception("the delivery observer failed on event %d", row.id)

    def _retry(self, row: Row, result: DeliveryResult) -> None:
        delay = self._policy.delay_for(result, row.attempts, self._rng)
        if result.status == 429 or result.retry_after is not None:
            self.gate.pause(delay)
            self._count("rate_limited")
        else:
            self.gate.failed()
        next_at = time.time() + delay
        if next_at > row.deadline:
            why = f"deadline passed after {row.attempts} attempt(s); last: {reason(result)}"
            self._settler.add(Settlement(row.id, "dead", 0.0, result.status, why))
            self._count("dead")
            return
        self._settler.add(Settlement(row.id, "retry", next_at, result.status, reason(result)))
        self._count("retried")


def take_sender_lock(outbox_path: Path) -> int:
    """Become the outbox's one sender: an advisory lock the kernel drops on any exit (kill -9
    included), so releasing inflight rows at start never steals a live sender's work.
    Returns the lock's descriptor; ConfigError when another live process holds it."""
    lock_path = outbox_path.with_name(outbox_path.name + ".sender-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"outbox {outbox_path} is already being sent by another process (pid {holder}); "
            "the daemon and `emitter outbox drain` must not run together"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _send(sink: Sink, row: Row) -> DeliveryResult:
    """One attempt with the stored bytes, exactly as the pipeline encoded them."""
    try:
        return sink.send(Encoded(row.body))
    except Exception as exc:  # noqa: BLE001 - a sink bug must not kill the worker
        return _sink_failed(sink, exc, f"event {row.id}")


def _fanout(sink: Sink, *, most: bool = False) -> int:
    """How many events the sink takes at once through `send_many` now (`fanout`), or at
    most (`max_fanout`, else `fanout`); 1 for a sink without `send_many`."""
    if not hasattr(sink, "send_many"):
        return 1
    now = int(getattr(sink, "fanout", 1))
    return max(1, int(getattr(sink, "max_fanout", now)) if most else now)


def _send_all(sink: Sink, rows: list[Row]) -> list[DeliveryResult]:
    """One attempt for each row, through `send_many` when the sink has it, in order."""
    send_many = getattr(sink, "send_many", None)
    if send_many is None:  # (a sink with it sees single rows too: its window may grow)
        return [_send(sink, row) for row in rows]
    try:
        results = list(send_many([Encoded(row.body) for row in rows]))
        if len(results) != len(rows):
            raise RuntimeError(f"{len(results)} results for {len(rows)} events")
        return results
    except Exception as exc:  # noqa: BLE001 - a sink bug must not kill the worker
        return [_sink_failed(sink, exc, f"events {rows[0].id}-{rows[-1].id}")] * len(rows)


def _sink_failed(sink: Sink, exc: Exception, what: str) -> DeliveryResult:
    """A sink's own bug on `what`: logged with its traceback, and a RETRY for the events."""
    name = getattr(sink, "name", "?")
    log.exception("sink %s failed on %s", name, what)
    why = f"internal error in the {name} sink: {exc!r}"[:500]
    return DeliveryResult(Outcome.RETRY, errors=(why,), detail=why)


def reason(result: DeliveryResult) -> str:
    """One line saying why an attempt failed: the API's `errors`, else the sink's detail."""
    if result.errors:
        return "; ".join(result.errors)
    return result.detail or (f"HTTP {result.status}" if result.status else "no answer")
