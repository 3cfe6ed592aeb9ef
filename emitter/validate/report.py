"""Output formats for problems: `text` (path:line:col lines and a summary), `json`, and
`github` (workflow commands that annotate the pull request)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from emitter.problems import Problem, Severity

Format = Literal["text", "json", "github"]
FORMATS: tuple[Format, ...] = ("text", "json", "github")


def default_format(environ: Mapping[str, str]) -> Format:
    """`github` under GitHub Actions (GITHUB_ACTIONS=true), `text` everywhere else."""
    return "github" if environ.get("GITHUB_ACTIONS") == "true" else "text"


def format_problems(problems: Sequence[Problem], fmt: Format, *, files_checked: int) -> str:
    """The whole report, without a trailing newline. Problems keep the order given."""
    if fmt == "json":
        return _json(problems, files_checked)
    lines = [_github(p) if fmt == "github" else p.format_text() for p in problems]
    lines.append(summary(problems, files_checked))
    return "\n".join(lines)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary(problems: Sequence[Problem], files_checked: int) -> str:
    """`ok: no problems in 3 files`, or `2 errors, 1 warning in 3 files`."""
    errors = sum(1 for p in problems if p.is_error)
    warnings = len(problems) - errors
    files = _plural(files_checked, "file")
    if not problems:
        return f"ok: no problems in {files}"
    counted = _plural(errors, "error") if errors else "no errors"
    if warnings:
        counted += f", {_plural(warnings, 'warning')}"
    return f"{counted} in {files}"


def _json(problems: Sequence[Problem], files_checked: int) -> str:
    errors = sum(1 for p in problems if p.is_error)
    document: dict[str, Any] = {
        "problems": [_as_dict(p) for p in problems],
        "summary": {
            "ok": errors == 0,
            "errors": errors,
            "warnings": len(problems) - errors,
            "files": files_checked,
            "text": summary(problems, files_checked),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _as_dict(problem: Problem) -> dict[str, Any]:
    where = problem.location
    return {
        "path": where.path if where else None,
        "line": where.line if where else None,
        "col": where.col if where else None,
        "severity": problem.severity.value,
        "check": problem.check,
        "rule_id": problem.rule_id,
        "json_path": problem.json_path,
        "message": problem.message,
    }


def _escape_data(text: str) -> str:
    # GitHub's workflow-command escaping: message text.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # Property values additionally escape the separators of the property list.
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(problem: Problem) -> str:
    command = "error" if problem.severity is Severity.ERROR else "warning"
    props: list[tuple[str, str]] = []
    if problem.location is not None:
        where = problem.location
        props += [("file", where.path), ("line", str(where.line)), ("col", str(where.col))]
    props.append(("title", f"emitter [{problem.check}]"))
    message = problem.message
    if problem.json_path:
        message += f" at {problem.json_path}"
    if problem.rule_id:
        message += f" [{problem.rule_id}]"
    joined = ",".join(f"{key}={_escape_property(value)}" for key, value in props)
    return f"::{command} {joined}::{_escape_data(message)}"
