"""The lint-check registry: one module per check, each registered once, and every consumer
(`--disable`, `--list-checks`, the checks' own problems, option overrides) reads it."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

import emitter.validate.checks as checks_package
from emitter.cli import main
from emitter.problems import Severity
from emitter.rules.loader import load_rules
from emitter.templates.compiler import compile_rules
from emitter.validate.checks import CHECKS
from emitter.validate.checks.base import LintCheck
from emitter.validate.lint import lint_rules
from emitter.validate.pipeline import validate_paths

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _check_modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(checks_package.__path__) if m.name != "base"]


def test_every_check_module_is_registered_once_under_its_declared_id() -> None:
    declared = []
    for name in _check_modules():
        module = importlib.import_module(f"emitter.validate.checks.{name}")
        check = module.CHECK
        assert isinstance(check, LintCheck)
        assert check.id == name.replace("_", "-"), "the module is named after its check id"
        assert (check.run is None) != (check.run_ruleset is None), check.id
        declared.append(check.id)
    assert sorted(declared) == sorted(CHECKS)
    assert all(CHECKS[i].description for i in CHECKS)


def test_list_checks_prints_every_registered_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--list-checks"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in out] == list(CHECKS)
    assert any("max-length=200" in line for line in out)


def test_validate_without_a_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert "PATH" in capsys.readouterr().err


@pytest.mark.parametrize("check_id", list(CHECKS))
def test_disable_accepts_every_registered_check(check_id: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nrules:\n  - id: r\n    trigger: {type: manual}\n"
                    "    event: {title: t, text: x}\n", encoding="utf-8")
    assert main(["validate", "--disable", check_id, str(path)]) == 0


RULE = """version: 1
rules:
  - id: r1
    trigger: {type: manual}
    params: {unused: {type: string, example: x}}
    event: {title: t, text: x, tags: ["team:abcdefghij"]}
"""


def _lint(tmp_path: Path, overrides: dict[str, dict[str, object]] | None = None) -> list[str]:
    path = tmp_path / "r.yaml"
    path.write_text(RULE, encoding="utf-8")
    loaded = load_rules([str(path)])
    compiled, _ = compile_rules(loaded.rules)
    problems = lint_rules(loaded.rules, compiled, {}, overrides=overrides or {})
    return [p.message for p in problems if p.check == "tag-format"]


def test_options_override_a_checks_declared_default(tmp_path: Path) -> None:
    assert _lint(tmp_path) == []
    messages = _lint(tmp_path, overrides={"tag-format": {"max-length": 10}})
    assert messages and "Datadog keeps at most 10" in messages[0]


def test_problems_carry_the_declared_severity_and_strict_raises_them(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULE, encoding="utf-8")
    report = validate_paths([str(path)], now=NOW, environ={})
    unused = [p for p in report.problems if p.check == "unused-param"]
    assert unused and unused[0].severity is CHECKS["unused-param"].severity is Severity.WARNING
    strict = validate_paths([str(path)], now=NOW, environ={}, strict=True)
    assert {p.severity for p in strict.problems} == {Severity.ERROR}
