"""`emitter render PATH --rule ID`: print the event(s) a rule renders, checked, without sending.

Output: one compact JSON object per line (JSON Lines): one line for a rule, one per item
for a `foreach` rule, nothing when `when` is false. Exit codes: 0 rendered and valid (or
skipped), 1 invalid rule or event (problems on stderr with file:line:col and JSON path),
2 usage (unknown rule id, bad --var, bad --now).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from emitter.commands import _common as common
from emitter.errors import EXIT_INVALID, EXIT_OK, UsageError

if TYPE_CHECKING:
    from emitter.problems import Problem
    from emitter.rules.model import Rule
    from emitter.templates.compiler import CompiledRule


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the event a rule renders (checked, never sent)",
        description="Render rule ID from PATH with the given variables and check the event "
        "against the argument spec. Prints one compact JSON object per line (JSON Lines): "
        "one line per event, so a foreach rule prints one line per item and a rule whose "
        "`when` is false prints nothing. Variables a trigger would provide (a webhook's "
        "payload, a file line) get validate's sample values unless given with --var.",
        epilog="exit status: 0 rendered (or skipped by when), 1 invalid rule or event, "
        "2 usage error (unknown rule, bad --var)",
    )
    common.add_rule_arguments(
        parser, "render", "a variable, converted by the param's type (repeatable); trigger "
        "variables such as payload take JSON when their sample is JSON")
    parser.add_argument("--now", metavar="ISO", type=_instant,
                        help="render as if it were this time (ISO 8601; no zone means UTC)")
    parser.add_argument("--pretty", action="store_true",
                        help="indent each JSON object (then the output is not JSON Lines)")
    parser.set_defaults(run=run)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _invalid(problems: Sequence[Problem]) -> int:
    common.report_invalid(problems)
    return EXIT_INVALID


def _trigger_value(sample: Any, text: str, name: str) -> Any:
    if isinstance(sample, str):
        return text
    from emitter.rules.jsonvalue import parse_json

    try:
        return parse_json(text)
    except ValueError as exc:
        raise UsageError(f"--var {name}: the trigger gives a JSON value here; "
                         f"{text[:80]!r} is not usable JSON ({exc})") from None


def _variables(rule: Rule, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """Trigger samples, overridden by --vars-file and --var; params typed by coerce_vars."""
    from emitter.rules.params import coerce_vars
    from emitter.triggers.registry import sample_variables

    raw = common.parse_vars(args.var)
    from_file = dict(common.read_vars_file(args.vars_file) or {})
    samples = sample_variables(rule, now)
    provided = [n for n in samples if rule.param(n) is None]  # not params: not coerced
    given = {n: from_file.pop(n) for n in provided if n in from_file}
    given.update({n: _trigger_value(samples[n], raw.pop(n), n) for n in provided if n in raw})
    return {**samples, **given, **coerce_vars(rule, raw, from_file)}


def _compiled(args: argparse.Namespace) -> CompiledRule | int:
    compiled, problems = common.compile_named_rule(args.paths, args.rule)
    return compiled if compiled is not None else _invalid(problems)


def run(args: argparse.Namespace) -> int:
    from emitter.events.check import check_event
    from emitter.settings import unified_tags
    from emitter.templates.render import RenderContext, render

    compiled = _compiled(args)
    if isinstance(compiled, int):
        return compiled
    now: datetime = args.now or datetime.now(timezone.utc)
    variables = _variables(compiled.rule, args, now)
    environ = dict(os.environ)
    ctx = RenderContext(now=now, hostname=socket.gethostname(),
                        unified_tags=unified_tags(environ), environ=environ)
    outcome = render(compiled, variables, ctx)
    found = [*outcome.problems,
             *(p for e in outcome.events for p in check_event(e, now=now, rule=compiled.rule))]
    if any(p.is_error for p in found):
        return _invalid(found)
    common.show_problems(found)  # warnings
    if outcome.skipped:
        print(f"rule {compiled.rule.id}: {outcome.skipped}, no event", file=sys.stderr)
    for event in outcome.events:
        print(_dump(event, args.pretty))
    return EXIT_OK


def _dump(event: Mapping[str, Any], pretty: bool) -> str:
    if pretty:
        return json.dumps(event, ensure_ascii=False, indent=2)
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
