"""Output formats for `emitter test` results: text, json and github (junit: ruletest.junit)."""

from __future__ import annotations

import json
from typing import Any

from emitter.problems import Problem
from emitter.ruletest.model import CaseResult, FileResult, RunResult, Status


def summary_line(run: RunResult) -> str:
    broken = sum(1 for f in run.files if f.broken)
    parts = [f"{run.count(Status.PASSED)} passed", f"{run.count(Status.FAILED)} failed"]
    if run.count(Status.ERROR):
        parts.append(f"{run.count(Status.ERROR)} errors")
    if broken:
        parts.append(f"{broken} broken test file{'s' if broken != 1 else ''}")
    files = len(run.files)
    return (f"{len(run.cases)} case{'s' if len(run.cases) != 1 else ''} in {files} "
            f"file{'s' if files != 1 else ''}: " + ", ".join(parts))


def _indent(text: str) -> list[str]:
    return ["    " + line for line in text.splitlines()]


def _case_text(case: CaseResult) -> list[str]:
    label = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.ERROR: "ERROR"}[case.status]
    lines = [f"{label} {case.location.path}:{case.location.line}: {case.name} [{case.rule_id}]"]
    if case.status is not Status.PASSED:
        lines.append(f"    {case.message}")
        if case.diff:
            lines.extend(_indent(case.diff))
    return lines


def format_text(run: RunResult, *, verbose: bool = False) -> str:
    """Failures (and passes when verbose) with their file:line, broken files' problems, totals."""
    lines: list[str] = []
    for result in run.files:
        lines.extend(p.format_text() for p in result.problems)
        for case in result.cases:
            if verbose or not case.passed:
                lines.extend(_case_text(case))
    lines.append(summary_line(run))
    return "\n".join(lines) + "\n"


def _problem_json(problem: Problem) -> dict[str, Any]:
    where = problem.location
    return {"message": problem.message, "severity": problem.severity.value,
            "path": where.path if where else None, "line": where.line if where else None,
            "col": where.col if where else None, "json_path": problem.json_path,
            "check": problem.check}


def _case_json(case: CaseResult) -> dict[str, Any]:
    return {"name": case.name, "rule": case.rule_id, "path": case.location.path,
            "line": case.location.line, "status": case.status.value, "message": case.message,
            "diff": case.diff, "events": [dict(e) for e in case.events],
            "duration": round(case.duration, 6)}


def _file_json(result: FileResult) -> dict[str, Any]:
    return {"path": result.path, "problems": [_problem_json(p) for p in result.problems],
            "cases": [_case_json(c) for c in result.cases]}


def format_json(run: RunResult) -> str:
    body = {
        "ok": run.ok,
        "summary": {"cases": len(run.cases), "passed": run.count(Status.PASSED),
                    "failed": run.count(Status.FAILED), "errors": run.count(Status.ERROR),
                    "broken_files": sum(1 for f in run.files if f.broken)},
        "files": [_file_json(f) for f in run.files],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def _gh_line(level: str, path: str, line: int, col: int | None, title: str, body: str) -> str:
    place = f"file={_gh_prop(path)},line={line}" + (f",col={col}" if col else "")
    return f"::{level} {place},title={_gh_prop(title)}::{_gh_data(body)}"


def format_github(run: RunResult) -> str:
    """GitHub Actions workflow commands: one annotation per failed case or file problem."""
    lines: list[str] = []
    for result in run.files:
        for p in result.problems:
            where = p.location
            level = "error" if p.is_error else "warning"
            lines.append(_gh_line(level, where.path if where else result.path,
                                  where.line if where else 1, where.col if where else None,
                                  "emitter test: broken test file", p.message))
        for case in result.cases:
            if case.passed:
                continue
            body = f"{case.name} [{case.rule_id}]: {case.message}"
            if case.diff:
                body += "\n" + case.diff
            lines.append(_gh_line("error", case.location.path, case.location.line,
                                  case.location.col, f"emitter test: {case.name}", body))
    lines.append(summary_line(run))
    return "\n".join(lines) + "\n"
