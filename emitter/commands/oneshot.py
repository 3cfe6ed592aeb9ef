"""Sending the events of one `fire` or `exec` run: the route (`--sink`, `--state-dir` or
`--state-url`) checked before any work, then each event sent directly or through the durable
outbox (local or shared) with one retry policy, and the outcome reported. Both commands call
`check_route` and `send_events`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emitter.errors import EXIT_DELIVERY, EXIT_OK, EXIT_REJECTED, DeliveryError

if TYPE_CHECKING:
    from pathlib import Path

    from emitter.delivery.queued import QueuedDelivery
    from emitter.delivery.retry import RetryHook, RetryPolicy
    from emitter.events.encode import Encoded
    from emitter.settings import Settings
    from emitter.sinks.base import DeliveryResult

STATE_ENV = "EMITTER_STATE_DIR"  # emitter.state.dirs.STATE_ENV (tests check they agree)
STATE_URL_ENV = "EMITTER_STATE_URL"  # emitter.delivery.backend.STATE_URL_ENV (likewise)
NO_KEY_HINT = ("use --sink dogstatsd to send through a local Datadog Agent, or --dry-run to "
               "print the event instead")
Announce = Callable[["DeliveryResult"], None]


@dataclass(frozen=True)
class Route:
    """Where this run's events go, checked before the rule is rendered (or exec's job runs)."""

    sink: str  # a name from emitter.sinks.registry.SINK_NAMES
    opts: Mapping[str, Any]  # the registry's options for it
    state_dir: Path | None  # the outbox's directory; None: send directly (or state_url)
    where: str  # " --state-dir DIR" / " --state-url URL" for the commands we suggest, or ""
    state_url: str | None = None  # the shared backend's outbox (postgresql://...)

    @property
    def printing(self) -> bool:
        return self.sink == "stdout"


def check_route(args: argparse.Namespace, settings: Settings) -> Route:
    """The route from `--dry-run`, `--sink` (and its options) and `--state-dir`. Raises the
    ConfigError/UsageError a bad one would cause later (no DD_API_KEY for the datadog sink,
    a bad DD_DOGSTATSD_URL, an unusable state directory) without opening anything."""
    from emitter.commands.sinkopts import sink_opts
    from emitter.sinks.registry import check_sink

    sink = "stdout" if args.dry_run else args.sink
    if sink == "datadog":
        settings.require_api_key(hint=NO_KEY_HINT)
    opts = sink_opts(args) if sink == args.sink else {}
    check_sink(sink, settings, **opts)
    if sink == "stdout":
        return Route(sink, opts, None, "")
    url = _state_url(args)
    if url is not None:
        flag = f" --state-url {_quoted(url)}" if args.state_url else ""
        return Route(sink, opts, None, flag, url)
    state_dir = _state_dir(args.state_dir)
    return Route(sink, opts, state_dir, _where(args.state_dir, state_dir))


def add_state_url_option(parser: argparse.ArgumentParser) -> None:
    """`--state-url` as fire and exec take it (`emitter run` keeps the same URL)."""
    parser.add_argument("--state-url", metavar="URL",
                        help="commit the event to the shared backend's outbox in PostgreSQL "
                        "(postgresql://...) before sending it, as --state-dir does locally "
                        f"(default: ${STATE_URL_ENV} unless --state-dir is given)")


def _state_url(args: argparse.Namespace) -> str | None:
    """The shared backend's URL: `--state-url`, else EMITTER_STATE_URL when no --state-dir
    names a directory (as `emitter run` chooses); checked, not connected to."""
    from emitter.errors import UsageError

    flag = getattr(args, "state_url", None)
    if flag and args.state_dir:
        raise UsageError("give --state-dir or --state-url, not both")
    url = flag or (None if args.state_dir else os.environ.get(STATE_URL_ENV, "").strip())
    if not url:
        return None
    from emitter.state.postgres.db import is_url

    if not is_url(url):
        what = "--state-url" if flag else STATE_URL_ENV
        raise UsageError(f"{what} {url!r}: expected postgresql://...")
    return str(url)


def _quoted(url: str) -> str:
    import shlex

    from emitter.state.postgres.db import redact

    return shlex.quote(redact(url))


def _state_dir(flag: str | None) -> Path | None:
    """The state directory when one is configured explicitly (flag or EMITTER_STATE_DIR),
    created and proven writable; None (send directly) otherwise: a one-shot command never
    falls back to the per-user default, where no sender may ever run."""
    if not (flag or os.environ.get(STATE_ENV, "").strip()):
        return None  # emitter.state.dirs (and pathlib, ~3 ms) not even imported
    from emitter.state.dirs import resolve_state_dir

    return resolve_state_dir(flag, os.environ)


def _where(flag: str | None, state_dir: Path | None) -> str:
    """` --state-dir DIR` when the flag (not the environment, which the suggested commands
    read too) named the directory."""
    if not flag or state_dir is None:
        return ""
    import shlex  # only on this path: start-up stays lean

    return f" --state-dir {shlex.quote(str(state_dir))}"


def retry_progress(quiet: bool) -> RetryHook:
    """A retry hook saying on stderr which attempt failed and when the next one is."""

    def progress(attempt: int, result: DeliveryResult, delay: float) -> None:
        if not quiet:
            why = "; ".join(result.errors) or result.detail
            status = f"HTTP {result.status}: " if result.status else ""
            print(f"emitter: attempt {attempt} failed ({status}{why}); retrying in "
                  f"{delay:.1f}s", file=sys.stderr)

    return progress


# ---- sending ------------------------------------------------------------------------------


def send_events(route: Route, settings: Settings, rule_id: str, events: Sequence[Encoded],
                policy: RetryPolicy, *, announce: Announce, on_retry: RetryHook | None = None,
                timeout: float | None = None) -> int:
    """Send `events` by `route` with `policy`; `announce` is told of each delivered one.

    Direct: an undelivered event raises DeliveryError (exit 4 refused, 5 retries exhausted).
    Through the outbox: each is committed first; a refused one becomes a dead letter, one
    that exhausted its retries stays pending for a sender; both are reported on stderr and
    the exit code returned. An OutboxFullError (exit 7) refuses the event it hit; those
    before it are reported first. `timeout` bounds each answer of the datadog sink."""
    from emitter.sinks.registry import make_sink

    opts = dict(route.opts)
    if route.sink == "datadog" and timeout is not None:
        opts["timeout"] = (min(3.05, timeout), timeout)
    elif route.printing:
        opts["stream"] = None  # sys.stdout when writing, so a capture sees it
    sink = make_sink(route.sink, settings, **opts)
    try:
        if route.state_dir is None and route.state_url is None:
            from emitter.delivery.retry import deliver

            results = [deliver(sink, event, policy, on_retry=on_retry) for event in events]
            return _report(results, announce)
        return _send_queued(route, sink, rule_id, events, policy, announce, on_retry)
    finally:
        sink.close()


def _send_queued(route: Route, sink: Any, rule_id: str, events: Sequence[Encoded],
                 policy: RetryPolicy, announce: Announce, on_retry: RetryHook | None) -> int:
    from emitter.delivery.queued import deliver_via_outbox

    done: list[QueuedDelivery] = []
    with _outbox(route) as outbox:
        try:
            for event in events:
                done.append(deliver_via_outbox(outbox, sink, rule_id, event, policy,
                                               on_retry=on_retry))
        finally:
            code = _report_queued(done, route.where, announce)
    return code


@contextlib.contextmanager
def _outbox(route: Route) -> Iterator[Any]:
    """The local outbox in the state directory, or the shared backend's."""
    if route.state_url is not None:
        from emitter.delivery.backend import open_postgres

        backend = open_postgres(route.state_url)
        try:
            yield backend.outbox
        finally:
            backend.close()
        return
    from emitter.delivery.outbox import Outbox

    assert route.state_dir is not None
    with Outbox.in_dir(route.state_dir) as outbox:
        yield outbox


def _refused(result: DeliveryResult) -> str:
    errors = "; ".join(result.errors) or "no details"
    if result.status:
        return f"Datadog refused the event (HTTP {result.status}): {errors}"
    return f"the event was refused: {errors}"


def _report(results: Sequence[DeliveryResult], announce: Announce) -> int:
    from emitter.sinks.base import Outcome

    for result in results:
        if result.outcome is Outcome.DELIVERED:
            announce(result)
    failed = [r for r in results if r.outcome is not Outcome.DELIVERED]
    if not failed:
        return EXIT_OK
    exhausted = [r for r in failed if r.outcome is Outcome.RETRY]
    worst = exhausted[0] if exhausted else failed[0]
    if worst.outcome is Outcome.RETRY:
        raise DeliveryError(f"could not deliver the event: {worst.detail}", status=worst.status,
                            errors=worst.errors)
    raise DeliveryError(_refused(worst), status=worst.status, errors=worst.errors,
                        permanent=True)


def _report_queued(done: Sequence[QueuedDelivery], where: str, announce: Announce) -> int:
    from emitter.sinks.base import Outcome

    for item in done:
        if item.result.outcome is Outcome.DELIVERED:
            announce(item.result)
    code = EXIT_OK
    for item in done:
        result = item.result
        if item.queued:
            code = EXIT_DELIVERY
            print(f"emitter: error: could not deliver the event: {result.detail}; left in the "
                  f"outbox as id {item.event_id}; `emitter run` or `emitter outbox "
                  f"drain{where}` will deliver it", file=sys.stderr)
        elif item.dead:
            code = code or EXIT_REJECTED
            print(f"emitter: error: {_refused(result)}; kept as dead letter {item.event_id}: "
                  f"see `emitter outbox list --dead{where}`", file=sys.stderr)
    return code


def sent_line(result: DeliveryResult) -> str:
    """What to say of a delivered event: Datadog's id and URL, else where it went (a sink
    such as dogstatsd gives no id)."""
    if result.event_id or result.url:
        return f"{result.event_id or '-'} {result.url or ''}".rstrip()
    return result.detail
