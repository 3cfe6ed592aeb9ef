"""`emitter fire PATH --rule ID`: render one rule now, check the event, post it (with retries).

With a state directory configured (`--state-dir` or EMITTER_STATE_DIR) the event goes through
the durable outbox first (delivery.sender.deliver_via_outbox): a refused event becomes a dead
letter, one that exhausted its retries stays queued for `emitter run` / `emitter outbox drain`.
Without one it is sent directly. The retry rules are the same either way.

Exit codes: 0 delivered (202) or `when` false, 1 invalid rule/event, 2 usage, 4 refused by the
API (a dead letter with a state directory), 5 retries exhausted or unreachable (left in the
outbox with a state directory), 6 no API key or unusable state directory, 7 outbox full (see
emitter.errors).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from emitter.commands import _common as common
from emitter.errors import EXIT_DELIVERY, EXIT_INVALID, EXIT_OK, EXIT_REJECTED, DeliveryError
from emitter.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path

    from emitter.delivery.queued import QueuedDelivery
    from emitter.delivery.retry import RetryHook, RetryPolicy
    from emitter.events.encode import Encoded
    from emitter.problems import Problem
    from emitter.sinks.base import DeliveryResult, Sink
    from emitter.templates.compiler import CompiledRule

STATE_ENV = "EMITTER_STATE_DIR"  # emitter.state.dirs.STATE_ENV (tests check they agree)
NO_KEY_HINT = "use --dry-run (or --sink stdout) to print the event instead of posting it"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fire",
        help="render one rule now and post the event to Datadog",
        description="Render rule ID from PATH with the given variables, check the event "
        "against the argument spec, and post it to Datadog's Events API (retrying "
        "transient failures). Prints the event's id and URL.",
    )
    common.add_rule_arguments(
        parser, "fire", "a param value, converted by the param's type (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the JSON body instead of posting (same as --sink stdout)")
    parser.add_argument("--sink", choices=("datadog", "stdout"), default="datadog")
    parser.add_argument("--timeout", type=_positive(float), default=10.0, metavar="S",
                        help="seconds to wait for each answer (default 10)")
    parser.add_argument("--max-attempts", type=_positive(int), default=6, metavar="N",
                        help="attempts before giving up (default 6)")
    parser.add_argument("--deadline", type=_positive(float), default=120.0, metavar="S",
                        help="seconds before giving up, all attempts together (default 120)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no retry progress or warnings on stderr")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="commit the event to the outbox in DIR before sending it, so an "
                        "undelivered one stays queued for `emitter run` or `emitter outbox "
                        "drain` (default: $EMITTER_STATE_DIR; neither: send directly)")
    parser.set_defaults(run=run)


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
        return value

    return parse


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_environ(os.environ)
    printing = args.dry_run or args.sink == "stdout"
    if not printing:
        settings.require_api_key(hint=NO_KEY_HINT)
    state_dir = None if printing else _state_dir(args)  # an unusable one fails before rendering
    events = _render(args, settings)
    if events is None:
        return EXIT_INVALID
    if not events:
        return EXIT_OK
    sink = _make_sink(args, settings, printing)
    try:
        if state_dir is not None:
            return _deliver_queued(sink, events, args, state_dir)
        results = [_deliver(sink, event, args) for event in events]
    finally:
        sink.close()
    return _report(results, printing)


def _state_dir(args: argparse.Namespace) -> Path | None:
    """The state directory when one is configured explicitly (flag or EMITTER_STATE_DIR),
    created and proven writable; None (send directly) otherwise: `fire` never falls back to
    the per-user default, where no sender may ever run."""
    if not (args.state_dir or os.environ.get(STATE_ENV, "").strip()):
        return None  # emitter.state.dirs (and pathlib, ~3 ms) not even imported
    from emitter.state.dirs import resolve_state_dir

    return resolve_state_dir(args.state_dir, os.environ)


# ---- rule -> checked events ---------------------------------------------------------------


def _render(args: argparse.Namespace, settings: Settings) -> list[Encoded] | None:
    """The checked events to send, encoded ([] when `when` is false); None after printing
    problems."""
    from emitter.events.check import check_event
    from emitter.events.encode import Encoded
    from emitter.rules.params import coerce_vars
    from emitter.templates.render import RenderContext, render

    compiled = _compile(args)
    if compiled is None:
        return None
    rule = compiled.rule
    variables = coerce_vars(rule, common.parse_vars(args.var),
                            common.read_vars_file(args.vars_file))
    now = datetime.now(timezone.utc)
    context = RenderContext(now=now, hostname=settings.hostname,
                            unified_tags=settings.unified_tags, environ=os.environ)
    outcome = render(compiled, variables, context)
    if not outcome.ok:
        _invalid(outcome.problems)
        return None
    if outcome.skipped is not None:
        print(f"rule {rule.id}: {outcome.skipped}, no event", file=sys.stderr)
        return []
    found = [p for event in outcome.events for p in check_event(event, now=now, rule=rule)]
    if any(p.is_error for p in found):
        _invalid(found)
        return None
    common.show_problems([*outcome.problems, *found], quiet=args.quiet)
    return [Encoded.of(event) for event in outcome.events]


def _compile(args: argparse.Namespace) -> CompiledRule | None:
    """The requested rule, loaded and compiled; None after printing problems. Any error in
    the files loaded counts (as `validate` would say), not only the requested rule's."""
    compiled, problems = common.compile_named_rule(args.paths, args.rule)
    if compiled is None:
        _invalid(problems)
        return None
    common.show_problems(problems, quiet=args.quiet)  # warnings only, by now
    return compiled


def _invalid(problems: Sequence[Problem]) -> None:
    common.report_invalid(problems, "; nothing was sent")


# ---- delivery -----------------------------------------------------------------------------


def _make_sink(args: argparse.Namespace, settings: Settings, printing: bool) -> Sink:
    if printing:
        from emitter.sinks.stdout import StdoutSink

        return StdoutSink(sys.stdout)
    from emitter.sinks.registry import make_sink  # lean transport unless a proxy applies

    return make_sink("datadog", settings, timeout=(min(3.05, args.timeout), args.timeout))


def _policy(args: argparse.Namespace) -> RetryPolicy:
    from emitter.delivery.retry import RetryPolicy

    return RetryPolicy(max_attempts=args.max_attempts, deadline=args.deadline)


def _progress(args: argparse.Namespace) -> RetryHook:
    def progress(attempt: int, result: DeliveryResult, delay: float) -> None:
        if not args.quiet:
            why = "; ".join(result.errors) or result.detail
            status = f"HTTP {result.status}: " if result.status else ""
            print(f"emitter: attempt {attempt} failed ({status}{why}); retrying in "
                  f"{delay:.1f}s", file=sys.stderr)

    return progress


def _deliver(sink: Sink, event: Encoded, args: argparse.Namespace) -> DeliveryResult:
    from emitter.delivery.retry import deliver

    return deliver(sink, event, _policy(args), on_retry=_progress(args))


def _report(results: Sequence[DeliveryResult], printing: bool) -> int:
    from emitter.sinks.base import Outcome

    for result in results:
        if result.outcome is Outcome.DELIVERED and not printing:
            print(f"{result.event_id or '-'} {result.url or ''}".rstrip())
    failed = [r for r in results if r.outcome is not Outcome.DELIVERED]
    if not failed:
        return EXIT_OK
    exhausted = [r for r in failed if r.outcome is Outcome.RETRY]
    worst = exhausted[0] if exhausted else failed[0]
    errors = "; ".join(worst.errors) or "no details"
    if worst.outcome is Outcome.RETRY:
        raise DeliveryError(f"could not deliver the event: {worst.detail}", status=worst.status,
                            errors=worst.errors)
    raise DeliveryError(f"Datadog refused the event (HTTP {worst.status}): {errors}",
                        status=worst.status, errors=worst.errors, permanent=True)


# ---- delivery through the outbox ----------------------------------------------------------


def _deliver_queued(sink: Sink, events: Sequence[Encoded], args: argparse.Namespace,
                    state_dir: Path) -> int:
    """Commit each event to the outbox, then send it with the same retry rules. An
    OutboxFullError (exit 7) refuses the event it hit; those before it are reported first."""
    from emitter.delivery.outbox import Outbox
    from emitter.delivery.queued import deliver_via_outbox

    done: list[QueuedDelivery] = []
    with Outbox.in_dir(state_dir) as outbox:
        try:
            for event in events:
                done.append(deliver_via_outbox(outbox, sink, args.rule, event, _policy(args),
                                               on_retry=_progress(args)))
        finally:
            code = _report_queued(done, _where(args, state_dir))
    return code


def _where(args: argparse.Namespace, state_dir: Path) -> str:
    """` --state-dir DIR` for the commands we suggest, when the flag (not the environment,
    which they read too) named the directory."""
    if not args.state_dir:
        return ""
    import shlex  # only on this path: start-up stays lean

    return f" --state-dir {shlex.quote(str(state_dir))}"


def _report_queued(done: Sequence[QueuedDelivery], where: str) -> int:
    from emitter.sinks.base import Outcome

    for item in done:
        if item.result.outcome is Outcome.DELIVERED:
            print(f"{item.result.event_id or '-'} {item.result.url or ''}".rstrip())
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
            errors = "; ".join(result.errors) or "no details"
            print(f"emitter: error: Datadog refused the event (HTTP {result.status}): {errors}; "
                  f"kept as dead letter {item.event_id}: see `emitter outbox list "
                  f"--dead{where}`", file=sys.stderr)
    return code
