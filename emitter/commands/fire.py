"""`emitter fire PATH --rule ID`: render one rule now, check the event, post it (with retries).

`--sink dogstatsd` sends it to a local Datadog Agent instead (no API key needed). With a state
directory configured (`--state-dir` or EMITTER_STATE_DIR) the event goes through the durable
outbox first: a refused event becomes a dead letter, one that exhausted its retries stays
queued for `emitter run` / `emitter outbox drain`. Without one it is sent directly. The retry
rules are the same either way (emitter.commands.oneshot, shared with `emitter exec`).

Exit codes: 0 delivered (202) or `when` false, 1 invalid rule/event, 2 usage, 4 refused by the
API (a dead letter with a state directory), 5 retries exhausted or unreachable (left in the
outbox with a state directory), 6 no API key for the datadog sink, a bad DogStatsD address or
an unusable state directory, 7 outbox full (see emitter.errors).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from emitter.commands import _common as common
from emitter.commands import oneshot
from emitter.errors import EXIT_INVALID, EXIT_OK
from emitter.settings import Settings

if TYPE_CHECKING:
    from emitter.events.encode import Encoded
    from emitter.problems import Problem
    from emitter.sinks.base import DeliveryResult
    from emitter.templates.compiler import CompiledRule


def register(subparsers: Any) -> None:
    from emitter.commands.sinkopts import add_sink_options

    parser = subparsers.add_parser(
        "fire",
        help="render one rule now and send the event to Datadog",
        description="Render rule ID from PATH with the given variables, check the event "
        "against the argument spec, and send it: to Datadog's Events API (retrying "
        "transient failures; prints the event's id and URL), or with --sink dogstatsd to "
        "the local Datadog Agent (no API key needed).",
    )
    common.add_rule_arguments(
        parser, "fire", "a param value, converted by the param's type (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the JSON body instead of sending it (same as --sink stdout)")
    add_sink_options(parser)
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
    oneshot.add_state_url_option(parser)
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
    route = oneshot.check_route(args, settings)  # a bad sink or state dir fails before rendering
    events = _render(args, settings)
    if events is None:
        return EXIT_INVALID
    if not events:
        return EXIT_OK
    from emitter.delivery.retry import RetryPolicy

    policy = RetryPolicy(max_attempts=args.max_attempts, deadline=args.deadline)
    return oneshot.send_events(route, settings, args.rule, events, policy,
                               announce=_announcer(args, route.sink),
                               on_retry=oneshot.retry_progress(args.quiet),
                               timeout=args.timeout)


def _announcer(args: argparse.Namespace, sink: str) -> oneshot.Announce:
    """Datadog's id and URL on stdout (scripts read them); for the other sinks, which give
    no id, where the event went on stderr (unless --quiet); stdout printed the body itself."""

    def announce(result: DeliveryResult) -> None:
        if sink == "datadog":
            print(oneshot.sent_line(result))
        elif sink != "stdout" and not args.quiet:
            print(f"emitter: event sent ({oneshot.sent_line(result)})", file=sys.stderr)

    return announce


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
