"""The rule files a run uses: checked and compiled exactly as `emitter validate` does, watched
for changes (modification times, for `--watch`), and the verdict of a reload logged."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from emitter.daemon import logs
from emitter.daemon.front import webhook_secrets
from emitter.delivery.pipeline import RuleSet
from emitter.problems import Problem
from emitter.rules.loader import find_rule_files
from emitter.validate.pipeline import validate_paths

log = logging.getLogger(logs.LIFECYCLE)

Checked = tuple[RuleSet | None, list[Problem], int]  # (rules or None, problems, files checked)


def check_rules(paths: Sequence[str], environ: Mapping[str, str]) -> Checked:
    """Validate and compile the rule files: (rules or None when any error, problems,
    files checked). The same checks as `emitter validate`."""
    now = datetime.now(timezone.utc)
    report = validate_paths(list(paths), now=now, environ=environ, keep_compiled=True)
    problems = list(report.problems)
    files = len(report.files)
    if any(p.is_error for p in problems) or report.compiled is None:
        return None, problems, files
    compiled = list(report.compiled)  # compiled once, by the check itself
    logs.add_secrets(webhook_secrets(compiled, environ))
    return RuleSet.of(compiled), problems, files


def recheck(paths: Sequence[str], environ: Mapping[str, str]) -> RuleSet | None:
    """A reload's check: the new rules, or None (logged, with every error) when the old
    rules must keep running."""
    try:
        ruleset, problems, _ = check_rules(paths, environ)
    except Exception as exc:  # noqa: BLE001 - e.g. a rule directory removed: keep going
        log.error("reload failed, keeping the old rules: %s", exc)
        return None
    if ruleset is None:
        for problem in problems:
            if problem.is_error:
                log.error("reload: %s", problem.format_text())
        log.error("reload refused: the rule files have errors; the old rules keep running",
                  extra={"errors": sum(p.is_error for p in problems)})
    return ruleset


class RuleWatch:
    """Modification times of the rule files as last loaded; `changed()` polls them."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = paths
        self._mtimes: dict[str, float] = {}

    def remember(self) -> None:
        self._mtimes = mtimes(self._paths)

    def changed(self) -> bool:
        return mtimes(self._paths) != self._mtimes


def mtimes(paths: Sequence[str]) -> dict[str, float]:
    try:
        files = find_rule_files(list(paths))
    except Exception:  # noqa: BLE001 - a path that vanished counts as a change
        return {}
    found: dict[str, float] = {}
    for path in files:
        try:
            found[path] = os.stat(path).st_mtime
        except OSError:
            found[path] = -1.0
    return found
