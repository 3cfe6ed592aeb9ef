"""`emitter outbox status|list|retry|purge|drain`: see and act on the durable outbox.

All of them work while the daemon runs (WAL readers, busy-timeout writers); `drain` refuses
to run beside another sender. None of them creates a state directory: a missing one (or one
without an outbox) is an error naming the path. Exit codes: 0 ok, 2 usage (unknown id),
4 `drain` moved events to dead letters, 5 `drain --until-empty` timed out with events left,
6 no outbox at the state directory, or it is unusable.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from emitter.commands.progress import Advance, progress
from emitter.commands.sinkopts import add_sink_options, sink_opts
from emitter.delivery.outbox import OUTBOX_FILE, Outbox, OutboxStatus, Row
from emitter.errors import EXIT_DELIVERY, EXIT_OK, EXIT_REJECTED, ConfigError, UsageError

DRAIN_GRACE = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "outbox",
        help="see and act on undelivered events and dead letters",
        description="The durable outbox holds every accepted event until a sink takes it. "
        "These commands work while `emitter run` is running.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", metavar="DIR",
                        help="the state directory (default: $EMITTER_STATE_DIR, else "
                        "$XDG_STATE_HOME/emitter, else ~/.local/state/emitter)")
    common.add_argument("--state-url", metavar="URL",
                        help="the shared backend the replicas use (postgresql://...; default: "
                        "$EMITTER_STATE_URL)")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("text", "json"), default="text")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    status = sub.add_parser("status", parents=[common, fmt], help="counts, oldest age, last error")
    status.set_defaults(run=run_status)

    listing = sub.add_parser("list", parents=[common, fmt],
                             help="undelivered events or dead letters")
    listing.add_argument("--dead", action="store_true", help="list dead letters instead")
    listing.add_argument("--limit", type=_count, default=50, metavar="N", help="at most N (50)")
    listing.set_defaults(run=run_list)

    retry = sub.add_parser("retry", parents=[common], help="send dead letters again")
    retry.add_argument("ids", nargs="*", type=_count, metavar="ID")
    retry.add_argument("--all-dead", action="store_true", help="every dead letter")
    retry.set_defaults(run=run_retry)

    purge = sub.add_parser("purge", parents=[common], help="delete dead letters")
    purge.add_argument("--dead", action="store_true", required=True,
                       help="required: only dead letters are ever purged")
    purge.add_argument("--older-than", type=_duration, default=0.0, metavar="AGE",
                       help="only those dead for at least AGE (e.g. 7d, 12h; default: all)")
    purge.set_defaults(run=run_purge)

    drain = sub.add_parser("drain", parents=[common],
                           help="send queued events now, in the foreground")
    add_sink_options(drain)
    drain.add_argument("--until-empty", action="store_true",
                       help="exit once nothing is pending (else run until SIGINT/SIGTERM)")
    drain.add_argument("--timeout", type=_duration, metavar="S",
                       help="with --until-empty: give up after S seconds (exit 5)")
    drain.add_argument("--workers", type=_count, default=4, metavar="N",
                       help="parallel senders (default 4)")
    drain.set_defaults(run=run_drain)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _duration(text: str) -> float:
    from emitter.rules.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[Outbox]:
    from emitter.delivery.backend import choose_state_url, open_postgres
    from emitter.state.dirs import STATE_ENV, choose_state_dir, resolve_state_dir

    url = None if args.state_dir else choose_state_url(args.state_url, os.environ)
    if url:
        backend = open_postgres(url)
        try:
            yield backend.outbox
        finally:
            backend.close()
        return
    chosen = choose_state_dir(args.state_dir, os.environ)
    if not (chosen / OUTBOX_FILE).is_file():
        what = "does not exist" if not chosen.exists() else "holds no outbox"
        raise ConfigError(
            f"state directory {chosen} {what} (nothing was ever queued there); pass "
            f"--state-dir or set {STATE_ENV} to the directory `emitter run` uses"
        )
    outbox = Outbox.in_dir(resolve_state_dir(args.state_dir, os.environ))
    try:
        yield outbox
    finally:
        outbox.close()


# ---- status and list ------------------------------------------------------------------------


def run_status(args: argparse.Namespace) -> int:
    with _open(args) as outbox:
        status = outbox.status()
        shared: Any = outbox if getattr(outbox, "shared", False) else None
        replicas = shared.replicas() if shared is not None else None
    if args.format == "json":
        shown = status_json(status)
        if replicas is not None:
            shown["replicas"] = [vars(r) for r in replicas]
        print(json.dumps(shown, indent=2))
    else:
        print("\n".join(status_lines(status) + replica_lines(replicas)))
    return EXIT_OK


def replica_lines(replicas: list[Any] | None) -> list[str]:
    """The shared backend's replicas: the leases each holds and when it was last seen."""
    if replicas is None:
        return []
    lines = [f"replicas    {len(replicas)} (the backlog above is the whole fleet's)"]
    lines += [f"  {r.replica}  leases {r.inflight:,}  seen {_age(r.seen_ago)} ago"
              for r in replicas]
    return lines


def status_json(status: OutboxStatus) -> dict[str, Any]:
    return {
        "path": str(status.path), "pending": status.pending, "inflight": status.inflight,
        "dead": status.dead, "events": status.events, "bytes": status.bytes,
        "max_events": status.max_events, "max_bytes": status.max_bytes,
        "oldest_age_seconds": status.oldest_age, "last_error": status.last_error,
        "counters": status.counters,
    }


def status_lines(s: OutboxStatus) -> list[str]:
    oldest = "-" if s.oldest_age is None else f"{_age(s.oldest_age)} ago"
    counters = ", ".join(f"{name} {value:,}" for name, value in s.counters.items())
    return [
        f"outbox      {s.path}",
        f"pending     {s.pending:,}",
        f"in flight   {s.inflight:,}",
        f"dead        {s.dead:,}",
        f"size        {s.events:,} events, {_size(s.bytes)} (limits {s.max_events:,} events, "
        f"{_size(s.max_bytes)})",
        f"oldest      {oldest}",
        f"last error  {s.last_error or '-'}",
        f"counters    {counters}",
    ]


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as outbox:
        rows = outbox.list(dead=args.dead, limit=args.limit)
    if args.format == "json":
        print(json.dumps([row_json(r) for r in rows], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("no dead letters" if args.dead else "no undelivered events")
    now = time.time()
    for row in rows:
        print(row_line(row, now))
    return EXIT_OK


def row_json(row: Row) -> dict[str, Any]:
    try:
        event: Any = json.loads(row.body)
    except ValueError:
        event = row.body.decode("utf-8", "replace")
    return {
        "id": row.id, "rule_id": row.rule_id, "state": row.state, "attempts": row.attempts,
        "created_at": _iso(row.created_at), "next_attempt_at": _iso(row.next_attempt_at),
        "deadline": _iso(row.deadline),
        "dead_at": None if row.dead_at is None else _iso(row.dead_at),
        "last_status": row.last_status, "last_error": row.last_error, "event": event,
    }


def row_line(row: Row, now: float) -> str:
    """`ID  STATE  attempts=N age=AGE rule=ID  "title"  [HTTP 400: reason]`"""
    event = row_json(row)["event"]
    title = event.get("title", "") if isinstance(event, dict) else ""
    why = [f"HTTP {row.last_status}"] if row.last_status else []
    why += [row.last_error] if row.last_error else []
    age = _age(now - row.created_at)
    line = (f"{row.id:>8}  {row.state:<8} attempts={row.attempts:<3} age={age:<7} "
            f"rule={row.rule_id}  {json.dumps(title, ensure_ascii=False)}")
    return line + (f"  [{': '.join(why)}]" if why else "")


# ---- retry and purge ---------------------------------------------------------------------


def run_retry(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.all_dead):
        raise UsageError("give event ids to retry, or --all-dead (not both)")
    with _open(args) as outbox:
        changed = outbox.retry(args.ids, all_dead=args.all_dead)
    shown = ", ".join(map(str, changed[:50])) + (" ..." if len(changed) > 50 else "")
    print(f"queued {len(changed)} event(s) for delivery again" + (f": {shown}" if changed else ""))
    missing = sorted(set(args.ids) - set(changed))
    if missing:
        raise UsageError(
            "no such event (or in flight right now): " + ", ".join(map(str, missing))
        )
    return EXIT_OK


def run_purge(args: argparse.Namespace) -> int:
    with _open(args) as outbox:
        purged = outbox.purge_dead(args.older_than)
    print(f"purged {purged} dead letter(s)")
    return EXIT_OK


# ---- drain -------------------------------------------------------------------------------


def run_drain(args: argparse.Namespace) -> int:
    from emitter.delivery.sender import Sender

    with _open(args) as outbox:
        factory = _sink_factory(args)
        before = outbox.status()
        sender = Sender(outbox, factory, workers=args.workers)
        with _stop_on_signals() as stopping, \
                progress("drain", before.pending + before.inflight, unit="event") as advance:
            sender.start()
            try:
                emptied = _wait(sender, stopping, args, _settled_ticker(sender, advance))
            finally:
                sender.stop(DRAIN_GRACE)
        left = outbox.status()
    counts = sender.counters()
    print(f"sent {counts.sent}, retried {counts.retried}, dead {counts.dead}; "
          f"{left.pending + left.inflight} left in the outbox", file=sys.stderr)
    if counts.dead:
        return EXIT_REJECTED
    if args.until_empty and not emptied:
        return EXIT_DELIVERY
    return EXIT_OK


def _settled_ticker(sender: Any, advance: Advance) -> Callable[[], None]:
    """A tick that tells the progress display how many events settled (sent or dead)."""
    done = 0

    def tick() -> None:
        nonlocal done
        counts = sender.counters()
        advance(counts.sent + counts.dead - done)
        done = counts.sent + counts.dead

    return tick


def _wait(sender: Any, stopping: threading.Event, args: argparse.Namespace,
          tick: Callable[[], None]) -> bool:
    if not args.until_empty:
        while not stopping.wait(0.5):
            tick()
        return False
    end = None if args.timeout is None else time.monotonic() + args.timeout
    while not stopping.is_set():
        step = 0.5 if end is None else min(0.5, end - time.monotonic())
        if step <= 0:
            return False
        if sender.drain(step):
            return True
        tick()
    return False


def _sink_factory(args: argparse.Namespace) -> Any:
    from emitter.settings import Settings
    from emitter.sinks.registry import sink_factory

    settings = Settings.from_environ(os.environ)
    return sink_factory(args.sink, settings, **sink_opts(args))


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event (stop claiming, finish in-flight requests) instead of
    killing the process mid-request."""
    stopping = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopping
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
