"""Command line: parse arguments, hand them to a command module, map errors to exit codes.

Each command lives in emitter/commands/<name>.py and exposes `register(subparsers)`, which
adds its parser and sets `run=<callable(args) -> int>` as a default. The core never prints
or exits; commands turn results into output; this module is the one place that turns
exceptions into exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from emitter import __version__
from emitter.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, EmitterError

# Order is the order `emitter --help` lists them in.
COMMANDS: tuple[str, ...] = (
    # each helper adds its command here once emitter/commands/<name>.py exists
    "validate",
    "render",
    "fire",
    "outbox",
    "test",
    "replay",
    "schema",
    "run",
    "exec",
    "migrate",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_safe(message)}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that command's module is imported (start-up time:
    `emitter fire` must not pay for importing the test runner or the daemon)."""
    parser = _Parser(
        prog="emitter",
        description="Configuration-driven Datadog events: YAML rules, sandboxed templates, "
        "events checked against the API's argument spec before they are sent.",
    )
    parser.add_argument("--version", action="version", version=f"emitter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in (only,) if only in COMMANDS else COMMANDS:
        module = importlib.import_module(f"emitter.commands.{name}")
        module.register(sub)
    return parser


def _safe(message: str) -> str:
    """`message` with credential values and long quotes masked (emitter.redaction)."""
    from emitter.redaction import Redactor

    return Redactor.of(os.environ).text(message)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except EmitterError as exc:
        print(f"emitter: error: {_safe(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("emitter: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `emitter render ... | head`: the reader went away; not an error worth a trace.
        return 0
    except Exception as err:  # noqa: BLE001 - the one catch-all, so no user sees a bare traceback
        if os.environ.get("EMITTER_DEBUG"):
            import traceback  # the one place it is needed; not on every start

            traceback.print_exc()
        else:
            print(
                f"emitter: internal error: {type(err).__name__}: {_safe(str(err))}\n"
                "This is a bug in emitter; run again with EMITTER_DEBUG=1 for the traceback.",
                file=sys.stderr,
            )
        return EXIT_INTERNAL
