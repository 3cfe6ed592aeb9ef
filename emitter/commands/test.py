"""`emitter test PATH...`: run rule test files (`*.test.yaml`) and report in a CI's format.

Exit codes: 0 every case passed; 1 a case failed or errored, or a test file (or a rule file
it names) is broken, reported with file:line:col like `validate` does; 2 usage error (a PATH
that does not exist, or no test file found).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from emitter.errors import EXIT_INVALID, EXIT_OK, UsageError
from emitter.ruletest.junit import to_junit_xml
from emitter.ruletest.model import RunResult
from emitter.ruletest.parse import find_test_files
from emitter.ruletest.report import format_github, format_json, format_text
from emitter.ruletest.runner import run_tests
from emitter.validate.report import default_format

FORMATS = ("text", "json", "github", "junit")


def render_report(run: RunResult, fmt: str, *, verbose: bool = False,
                  started: float | None = None) -> str:
    if fmt == "json":
        return format_json(run)
    if fmt == "github":
        return format_github(run)
    if fmt == "junit":
        return to_junit_xml(run, started)
    return format_text(run, verbose=verbose)


def execute(paths: list[str], fmt: str, junit_file: str | None = None,
            verbose: bool = False) -> tuple[int, str]:
    """Run the tests; return the exit code and the report. Raises UsageError."""
    files, missing = find_test_files(paths)
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")
    if not files:
        raise UsageError("no test files (*.test.yaml) found in " + ", ".join(paths))
    started = time.time()
    run = run_tests(files)
    if junit_file is not None:
        try:
            with open(junit_file, "w", encoding="utf-8") as handle:
                handle.write(to_junit_xml(run, started))
        except OSError as exc:
            raise UsageError(f"cannot write {junit_file}: {exc.strerror or exc}") from None
    report = render_report(run, fmt, verbose=verbose, started=started)
    return (EXIT_OK if run.ok else EXIT_INVALID), report


def run(args: argparse.Namespace) -> int:
    fmt = args.format or default_format(os.environ)
    code, report = execute(args.paths, fmt, args.junit, args.verbose)
    sys.stdout.write(report)
    return code


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run rule tests (*.test.yaml): trigger input in, exact events out",
        description="Run rule test files: each case feeds a trigger input (params, log lines, "
        "a webhook request, command results, scheduled times, stdin objects) to a rule and "
        "compares the events that would be posted with the expected ones. Nothing is sent "
        "and no state directory is touched. Exit 0 when every case passes, 1 when any fails "
        "or a test file is broken, 2 on a usage error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="test files, or directories searched for *.test.yaml")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="report format (default: github under GitHub Actions, else text)")
    parser.add_argument("--junit", metavar="FILE", default=None,
                        help="also write a JUnit XML report to FILE")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list passing cases too (text format)")
    parser.set_defaults(run=run)
