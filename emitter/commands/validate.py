"""`emitter validate PATH...`: check rule files without sending anything.

Exit codes: 0 no errors (warnings allowed), 1 any error (or any warning with --strict),
2 usage error (a missing path, a bad option).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from emitter.errors import EXIT_INVALID, EXIT_OK, UsageError
from emitter.validate.report import FORMATS, default_format, format_problems


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check rule files: schema, templates, and every event their examples render",
        description="Load every rule file under PATH, check it against the rule schema, "
        "compile every template, render every rule with its params' examples (and every "
        "combination of enum values, at most 64 per rule) and check each event against the "
        "event schema and the date window. Trigger-provided variables get sample values "
        "(a webhook payload is {}, a file line is 'example'). Nothing is sent.",
        epilog="exit status: 0 no errors (warnings allowed), 1 errors (or warnings with "
        "--strict), 2 usage error",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="rule file or directory")
    parser.add_argument("--list-checks", action="store_true",
                        help="list the lint checks (id, severity, options) and exit")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="output format (default: github under GitHub Actions, else text)")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--require-tests", action="store_true",
                        help="warn about rules no *.test.yaml case covers")
    parser.add_argument("--disable", action="append", default=[], metavar="CHECK",
                        help="skip a lint check by id, e.g. tag-format (repeatable)")
    parser.add_argument("--jobs", "-j", type=_jobs, default=None, metavar="N",
                        help="processes that check rules (default: one per CPU, at most 4, "
                        "for 100 rules or more each); the report is the same whatever N")
    parser.set_defaults(run=run)


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _tested(args: argparse.Namespace) -> set[str] | None:
    if not args.require_tests:
        return None
    from emitter.ruletest.parse import covered_rule_ids, find_tests_near

    return covered_rule_ids(find_tests_near(list(args.paths)))


def _disabled(names: list[str]) -> tuple[str, ...]:
    from emitter.problems import closest
    from emitter.validate.checks import CHECKS

    for name in names:
        if name not in CHECKS:
            close = closest(name, CHECKS)
            hint = f"; did you mean {close!r}?" if close else ""
            raise UsageError(f"--disable {name!r}: no such check{hint} "
                             f"(checks: {', '.join(CHECKS)})")
    return tuple(names)


@contextlib.contextmanager
def young_collections_only() -> Iterator[None]:
    """No full (oldest-generation) garbage collections inside: a one-shot check builds
    records that live to the end and frees almost no cycles, and each full pass walks the
    whole grown heap (16 passes, 2.9 s of 17 at 10,000 rules; 3, 0.09 s, at 1,000).
    Young cycles are still collected."""
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], 1 << 30)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def run(args: argparse.Namespace) -> int:
    if args.list_checks:
        from emitter.validate.checks import describe_checks

        print(describe_checks())
        return EXIT_OK
    if not args.paths:
        raise UsageError("validate: give at least one PATH (a rule file or directory)")
    from emitter.validate.pipeline import validate_paths

    fmt = args.format or default_format(os.environ)
    with young_collections_only():
        report = validate_paths(
            args.paths,
            now=datetime.now(timezone.utc),
            environ=os.environ,
            strict=args.strict,
            tested=_tested(args),
            disabled_checks=_disabled(args.disable),
            jobs=args.jobs,
        )
    print(format_problems(report.problems, fmt, files_checked=report.files_checked))
    return EXIT_OK if report.ok else EXIT_INVALID
