"""What the commands that render one rule share (render, fire): `--var` and `--vars-file`
values, finding and compiling the rule asked for, and printing problems to stderr (through
emitter.redaction, so no environment value a rule reads is ever printed).

Imports stay light (the core is imported inside the functions): `emitter fire` start-up
time is measured.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from emitter.errors import UsageError
from emitter.problems import closest

if TYPE_CHECKING:
    from emitter.problems import Problem
    from emitter.templates.compiler import CompiledRule

MAX_VARS_FILE = 1024 * 1024
# Variables the rule files this process loaded read (env:, webhook secrets): their values are
# masked in every problem shown. A command loads one set of rule files, once.
_exposed: set[str] = set()


def add_rule_arguments(parser: Any, verb: str, var_help: str) -> None:
    """PATH..., --rule ID, --var NAME=VALUE and --vars-file: how a command names one rule and
    the values to render it with."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rule file or directory")
    parser.add_argument("--rule", required=True, metavar="ID", help=f"the rule to {verb}")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help=var_help)
    parser.add_argument("--vars-file", metavar="FILE.json",
                        help="a JSON object of param values (--var wins over it)")


def parse_vars(items: Sequence[str]) -> dict[str, str]:
    """`--var NAME=VALUE` strings as a mapping (the last one of a name wins)."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var {item!r}: expected NAME=VALUE")
        values[name.strip()] = value
    return values


def read_vars_file(path: str | None) -> Mapping[str, Any] | None:
    """The JSON object in `--vars-file` (None without the option); UsageError otherwise."""
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_VARS_FILE + 1)
    except OSError as exc:
        raise UsageError(f"--vars-file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_VARS_FILE:
        raise UsageError(f"--vars-file {path}: larger than {MAX_VARS_FILE} bytes")
    from emitter.rules.jsonvalue import parse_json

    try:
        parsed = parse_json(data)
    except ValueError as exc:
        raise UsageError(f"--vars-file {path}: not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"--vars-file {path}: expected a JSON object of NAME: value")
    return parsed


def unknown_rule(wanted: str, known: Sequence[str]) -> str:
    """The message for a `--rule` no file defines, with the closest id as a hint."""
    close = closest(wanted, known)
    hint = f"; did you mean {close!r}?" if close else ""
    listed = ", ".join(sorted(known)[:20]) or "none"
    return f"unknown rule {wanted!r}{hint} (rules: {listed})"


def show_problems(problems: Sequence[Problem], *, quiet: bool = False) -> None:
    """Each problem on its own stderr line (`file:line:col: ...`), unless `quiet`; the values
    of the variables the loaded rules read, and of credentials, are masked."""
    if quiet:
        return
    from emitter.redaction import Redactor

    redactor = Redactor.of(os.environ, _exposed)
    for problem in redactor.problems(problems):
        print(problem.format_text(), file=sys.stderr)


def report_invalid(problems: Sequence[Problem], outcome: str = "") -> None:
    """Every problem (warnings too: they may explain the errors), then `emitter: N errors`
    and `outcome` (e.g. "; nothing was sent")."""
    show_problems(problems)
    errors = sum(p.is_error for p in problems)
    print(f"emitter: {errors} error{'s' if errors != 1 else ''}{outcome}", file=sys.stderr)


def compile_named_rule(paths: Sequence[str],
                       rule_id: str) -> tuple[CompiledRule | None, tuple[Problem, ...]]:
    """Load every rule file under `paths` and compile rule `rule_id`: (the rule, the load's
    warnings), or (None, the problems) when any file loaded has an error (as `validate`
    would say) or the rule's templates do not compile. UsageError for an unknown id."""
    from emitter.redaction import exposed_by
    from emitter.rules.loader import load_rules
    from emitter.templates.compiler import compile_rule

    loaded = load_rules(paths)
    _exposed.update(exposed_by(loaded.rules))
    if not loaded.ok:
        return None, loaded.problems
    rule = loaded.rule(rule_id)
    if rule is None:
        raise UsageError(unknown_rule(rule_id, [r.id for r in loaded.rules]))
    compiled, problems = compile_rule(rule)
    if compiled is None:
        return None, tuple(problems)
    return compiled, loaded.problems
