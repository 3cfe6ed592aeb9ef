"""`emitter replay PATH (--file LOG | --webhook-dir DIR)`: what rules would have sent for a
historical log or saved webhook payloads. Events go to stdout as JSON lines (the exact bodies
that would be posted), a per-rule count to stderr. Nothing is sent and no state is touched.
A progress bar shows on stderr while the input is read, when stderr is a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from emitter.commands.progress import progress
from emitter.errors import EXIT_INVALID, EXIT_OK, InvalidError, UsageError
from emitter.rules.loader import load_rules
from emitter.rules.model import FileTrigger, WebhookTrigger
from emitter.ruletest.parse import parse_time
from emitter.ruletest.replay import (
    COUNTERS,
    ReplayOptions,
    ReplayResult,
    payload_files,
    replay_log,
    replay_webhooks,
)
from emitter.templates.compiler import CompiledRule, compile_rules


def _select(args: argparse.Namespace, kind: type) -> list[CompiledRule]:
    loaded = load_rules(args.paths)
    compiled, problems = compile_rules(loaded.rules)
    errors = [p for p in (*loaded.problems, *problems) if p.is_error]
    if errors:
        for problem in errors:
            print(problem.format_text(), file=sys.stderr)
        raise InvalidError(f"{len(errors)} error(s) in the rule files; fix them first", errors)
    by_id = {c.id: c for c in compiled}
    wanted = args.rule or [c.id for c in compiled if isinstance(c.rule.trigger, kind)]
    name = "file" if kind is FileTrigger else "webhook"
    chosen = []
    for rule_id in wanted:
        found = by_id.get(rule_id)
        if found is None:
            raise UsageError(f"unknown rule {rule_id!r}; rules: {', '.join(sorted(by_id))}")
        if not isinstance(found.rule.trigger, kind):
            raise UsageError(f"rule {rule_id!r} has a {found.rule.trigger.type} trigger, "
                             f"not {name}")
        chosen.append(found)
    if not chosen:
        raise UsageError(f"no {name} rules in {', '.join(args.paths)}")
    return chosen


def _time(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _options(args: argparse.Namespace) -> ReplayOptions:
    try:
        tz = zoneinfo.ZoneInfo(args.timezone)
    except (ValueError, KeyError, OSError):
        raise UsageError(f"--timezone: unknown time zone {args.timezone!r}") from None
    since = _time(args.since, "--since")
    year = args.year
    if year is None and since is not None:
        year = datetime.fromtimestamp(since, timezone.utc).year
    return ReplayOptions(since=since, until=_time(args.until, "--until"),
                         default_year=year, default_tz=tz, state_url=_state_url(args))


def _state_url(args: argparse.Namespace) -> str | None:
    from emitter.delivery.backend import choose_state_url, is_url

    url = choose_state_url(args.state_url, os.environ)
    if url and not is_url(url):
        raise UsageError(f"--state-url {url!r}: expected postgresql://...")
    return url


def summary_lines(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    width = max((len(r) for r in counts), default=4)
    lines = [f"{'rule':<{width}}  " + "  ".join(f"{c:>12}" for c in COUNTERS)]
    for rule_id, row in counts.items():
        lines.append(f"{rule_id:<{width}}  " + "  ".join(f"{row[c]:>12}" for c in COUNTERS))
    return lines


def _print(result: ReplayResult) -> None:
    out = sys.stdout
    for _, event in result.events:
        out.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
    out.flush()
    for problem in result.problems:
        print(problem.format_text(), file=sys.stderr)
    print("\n".join(summary_lines(result.counts)), file=sys.stderr)


def _replay(args: argparse.Namespace, options: ReplayOptions) -> ReplayResult:
    """Raises OSError."""
    if args.file is not None:
        rules = _select(args, FileTrigger)
        size = os.stat(args.file).st_size
        with progress("replay", size, unit="B", scale=True) as advance:
            return replay_log(rules, args.file, options, advance)
    rules = _select(args, WebhookTrigger)
    with progress("replay", len(payload_files(args.webhook_dir)), unit="payload") as advance:
        return replay_webhooks(rules, args.webhook_dir, options, advance)


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    try:
        result = _replay(args, options)
    except OSError as exc:
        where = args.file or args.webhook_dir
        raise UsageError(f"{where}: {exc.strerror or exc}") from None
    _print(result)
    invalid = any(row["invalid"] for row in result.counts.values())
    unreadable = any(p.is_error for p in result.problems)  # e.g. a payload that is not JSON
    return EXIT_INVALID if invalid or unreadable else EXIT_OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run file rules over a historical log (or webhook rules over saved payloads)",
        description="Print the events rules would have sent for a historical log (file rules) "
        "or a directory of saved JSON payloads (webhook rules), as JSON lines on stdout, and "
        "a per-rule count on stderr. Throttling runs on the log's own time when a rule's "
        "regex names a `ts` or `timestamp` group (ISO 8601, Apache `10/Oct/2025:13:55:36 "
        "-0700`, syslog `Oct 10 13:55:36`, or POSIX seconds). Nothing is sent. Exit 1 when "
        "some event would have been invalid.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rule files or directories")
    parser.add_argument("--rule", action="append", metavar="ID",
                        help="replay only this rule (repeatable; default: every rule of the "
                        "input's kind)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="LOG", help="a log file for file rules")
    source.add_argument("--webhook-dir", metavar="DIR",
                        help="a directory of saved webhook payloads (*.json, one per file, "
                        "replayed in name order at their modification times)")
    parser.add_argument("--since", metavar="ISO", help="skip lines before this time")
    parser.add_argument("--until", metavar="ISO", help="skip lines from this time on")
    parser.add_argument("--year", type=int, default=None,
                        help="year for syslog times, which have none (default: --since's "
                        "year, else the current year)")
    parser.add_argument("--state-url", metavar="URL",
                        help="run the throttle on the shared backend's engine (PostgreSQL, "
                        "as `emitter run --state-url` does) in a transaction of private "
                        "tables rolled back at the end: nothing is kept or seen by the "
                        "fleet (default: $EMITTER_STATE_URL; neither: in memory)")
    parser.add_argument("--timezone", default="UTC",
                        help="zone of log times written without one (default: UTC)")
    parser.set_defaults(run=run)
