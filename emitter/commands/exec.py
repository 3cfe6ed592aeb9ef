"""`emitter exec PATH --rule ID [--var ...] -- CMD ARGS...`: run a job, then fire a rule.

The command runs without a shell; its output reaches the terminal live and unchanged while a
bounded tail is kept. Then rule ID is rendered with `exit_code`, `duration`, `command`,
`stdout`, `stderr`, `output` (the tails), `signal` and `started`, and the event is sent.
emitter exits with the command's exit code whatever happens to the event (a rule problem
or a failed delivery is reported on stderr): wrapping a job never changes its outcome. Only
a usage error before the command starts (no command given) exits 2 without running it.
The event is sent as `emitter fire` sends it (emitter.commands.oneshot): any sink, `--sink
dogstatsd` for a local Agent, through the outbox with `--state-dir` or EMITTER_STATE_DIR.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from emitter.errors import EmitterError, UsageError

if TYPE_CHECKING:
    from emitter.commands.oneshot import Route
    from emitter.settings import Settings
    from emitter.templates.compiler import CompiledRule

WRAPPED_NAMES = ("exit_code", "duration", "command", "stdout", "stderr", "output", "signal",
                 "started")


class _Prepared(NamedTuple):
    """What is known before the job runs: the event can be fired when the job ends."""

    settings: Settings
    route: Route
    compiled: CompiledRule
    raw: dict[str, str]  # the --var values, not yet converted
    secrets: frozenset[str]  # variables the child must not see


def _add_options(p: argparse.ArgumentParser) -> None:
    from emitter.commands.oneshot import add_state_url_option
    from emitter.commands.sinkopts import add_sink_options

    p.add_argument("--rule", metavar="ID", help="the rule to fire (required)")
    p.add_argument("--var", action="append", metavar="NAME=VALUE",
                   help="a param value, converted by the param's type (repeatable)")
    p.add_argument("--dry-run", action="store_true", default=None,
                   help="print the event to stdout instead of sending it (same as --sink "
                   "stdout)")
    add_sink_options(p, defaults=False)
    p.add_argument("--state-dir", metavar="DIR",
                   help="commit the event to the outbox in DIR before sending it, so an "
                   "undelivered one stays queued for `emitter run` or `emitter outbox drain` "
                   "(default: $EMITTER_STATE_DIR; neither: send directly)")
    add_state_url_option(p)
    p.add_argument("--tail", type=int, metavar="BYTES",
                   help="bytes of each output stream kept for the event (default 8192)")
    p.add_argument("--deadline", type=float, metavar="S",
                   help="seconds to keep retrying the event after the command (default 60)")
    p.add_argument("--quiet", "-q", action="store_true", default=None,
                   help="no retry progress, and nothing on stderr when the event was sent")


_DEFAULTS: dict[str, Any] = {"rule": None, "var": None, "dry_run": False, "sink": "datadog",
                             "sink_path": None, "statsd_address": None, "state_dir": None,
                             "state_url": None, "tail": 8192, "deadline": 60.0, "quiet": False}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "exec",
        help="run a command, then fire a rule with its exit code, duration and output",
        description="Run CMD (no shell), passing its output through, then fire rule ID with "
        "exit_code, duration, command, stdout, stderr and output (tails), sending the event as "
        "`emitter fire` does (any --sink; through the outbox with --state-dir). Exits with "
        "the command's exit code, even when the event could not be sent.",
        usage="emitter exec PATH --rule ID [--var NAME=VALUE ...] [--sink NAME]\n"
        "                    [--state-dir DIR] [--dry-run] -- CMD ARGS...",
    )
    p.add_argument("path", metavar="PATH", help="rule file or directory")
    _add_options(p)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")
    p.set_defaults(run=run)


def _split(args: argparse.Namespace) -> list[str]:
    """Options written after PATH land in `command` (argparse stops at the first positional);
    everything before `--` is parsed as options, everything after is the command."""
    rest = list(args.command)
    if "--" in rest:
        cut = rest.index("--")
        options, argv = rest[:cut], rest[cut + 1:]
        if options:
            extra = argparse.ArgumentParser(prog="emitter exec", add_help=False)
            _add_options(extra)
            try:
                parsed = extra.parse_args(options)
            except SystemExit:
                raise UsageError(f"bad options before --: {' '.join(options)}") from None
            for name, value in vars(parsed).items():
                if value is not None:
                    if name == "var":
                        value = [*(args.var or []), *value]
                    setattr(args, name, value)
    else:
        argv = rest
    for name, value in _DEFAULTS.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value if name != "var" else [])
    if not args.rule:
        hint = " (options after PATH need a -- before the command)" if "--" not in rest else ""
        raise UsageError(f"--rule ID is required{hint}: emitter exec PATH --rule ID -- CMD "
                         "ARGS...")
    if not argv:
        raise UsageError("no command to run: emitter exec PATH --rule ID -- CMD ARGS...")
    return argv


def _say(message: str) -> None:
    print(f"emitter: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from emitter.commands.wrap import run_wrapped

    argv = _split(args)
    if args.tail < 0:
        raise UsageError("--tail must be zero or more")
    prepared = _prepare(args)  # problems found before the job are reported, never fatal
    result = run_wrapped(argv, tail_bytes=args.tail, env=_child_env(args, prepared))
    if result.error:
        _say(result.error)
    if prepared is not None:
        try:
            _fire(args, prepared, result.variables())
        except EmitterError as exc:
            _say(f"the event was not sent: {exc}")
        except Exception as exc:  # noqa: BLE001 - the job's exit code matters more
            _say(f"the event was not sent (internal error): {type(exc).__name__}: {exc}")
    return result.exit_code


def _child_env(args: argparse.Namespace, prepared: _Prepared | None) -> dict[str, str]:
    """Our environment without credentials (DD_API_KEY, every webhook secret the rule files
    name...), but with the variables the rule names in `env:`."""
    from emitter.triggers.childenv import child_environ

    if prepared is None:
        return child_environ(os.environ)
    return child_environ(os.environ, keep=prepared.compiled.rule.env, secrets=prepared.secrets)


def _prepare(args: argparse.Namespace) -> _Prepared | None:
    """Load and compile the rule and parse --var before the job runs, so a broken rule is
    reported now; returns None (the job still runs) when it cannot be fired."""
    from emitter.commands._common import parse_vars
    from emitter.commands.oneshot import check_route
    from emitter.rules.loader import load_rules
    from emitter.settings import Settings
    from emitter.templates.compiler import compile_rule

    try:
        raw = parse_vars(args.var)
        loaded = load_rules([args.path])
        errors = [p for p in loaded.problems if p.is_error]
        rule = loaded.rule(args.rule)
        if rule is None and not errors:
            raise UsageError(f"no rule {args.rule!r} in {args.path}")
        settings = Settings.from_environ(os.environ)
        route = check_route(args, settings)
    except EmitterError as exc:
        _say(f"{exc}; running the command anyway, no event will be sent")
        return None
    if errors or rule is None:
        for problem in errors:
            print(problem.format_text(), file=sys.stderr)
        _say("the rules have errors; running the command anyway, no event will be sent")
        return None
    compiled, problems = compile_rule(rule)
    if compiled is None:
        for problem in problems:
            print(problem.format_text(), file=sys.stderr)
        _say("the rule has errors; running the command anyway, no event will be sent")
        return None
    from emitter.triggers.childenv import secret_names

    return _Prepared(settings, route, compiled, raw, secret_names(loaded.rules))


def _fire(args: argparse.Namespace, prepared: _Prepared, wrapped: Mapping[str, Any]) -> None:
    from emitter.events.check import check_event
    from emitter.rules.params import coerce_vars
    from emitter.templates.render import RenderContext, render

    settings, compiled, raw = prepared.settings, prepared.compiled, prepared.raw
    rule = compiled.rule
    declared = {k: v for k, v in wrapped.items() if rule.param(k) is not None and v is not None}
    variables = {**coerce_vars(rule, raw, declared), **wrapped}
    now = datetime.now(timezone.utc)
    ctx = RenderContext(now=now, hostname=settings.hostname,
                        unified_tags=settings.unified_tags, environ=os.environ)
    outcome = render(compiled, variables, ctx)
    problems = [*outcome.problems,
                *(p for e in outcome.events for p in check_event(e, now=now, rule=rule))]
    if any(p.is_error for p in problems):
        for problem in problems:
            print(problem.format_text(), file=sys.stderr)
        raise EmitterError("the rendered event is invalid")
    if outcome.skipped is not None:
        if not args.quiet:
            _say(f"rule {rule.id}: {outcome.skipped}, no event")
        return
    _send(args, prepared, outcome.events)


def _send(args: argparse.Namespace, prepared: _Prepared,
          events: Sequence[Mapping[str, Any]]) -> None:
    """As `emitter fire` sends (emitter.commands.oneshot); what it reports goes to stderr,
    stdout being the job's. A failure raises, for `run` to report."""
    from emitter.commands import oneshot
    from emitter.delivery.retry import RetryPolicy
    from emitter.events.encode import Encoded

    def announce(result: Any) -> None:
        if not (prepared.route.printing or args.quiet):
            _say(f"event sent: {oneshot.sent_line(result)}")

    policy = RetryPolicy(max_attempts=8, deadline=args.deadline)
    oneshot.send_events(prepared.route, prepared.settings, prepared.compiled.rule.id,
                        [Encoded.of(event) for event in events], policy, announce=announce,
                        on_retry=oneshot.retry_progress(bool(args.quiet)))
