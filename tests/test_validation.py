"""The validate pipeline checked by several processes gives the report one process gives."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from emitter.rules.model import Rule
from emitter.validate import pipeline as validation
from emitter.validate.pipeline import _check_in_parallel, _Checked, usable_jobs, validate_paths

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HEAD = 'version: 1\ndefaults:\n  event: {tags: ["Team:platform"]}\nrules:\n'
RULE = """  - id: r{n}
    trigger: {{type: manual}}
    params:
      service: {{type: string, example: payments}}
      spare: {{type: string, example: x}}
    event:
      title: "{title}"
      text: "done {{{{ service | upper }}}}"
      tags: ["service:{{{{ service }}}}", "n:{n}"]
"""
TITLES = ["Deployed {{ service }}", "{{ nope }}", "{{ service", "x" * 120,
          "{{ service if service else 'none' }} {{ 1 // 0 }}", "{{ ('a').k ~ 'b' }}"]


def _rules(tmp_path: Path, files: int = 6, per_file: int = 5) -> Path:
    """Every kind of problem, spread over files: lint warnings (a default tag every rule
    shares, an unused param), undefined names, syntax errors, events the schema refuses,
    runtime and compile-time template errors, and a duplicate id in another file."""
    for f in range(files):
        body = "".join(RULE.format(n=f * per_file + i, title=TITLES[(f + i) % len(TITLES)])
                       for i in range(per_file))
        (tmp_path / f"r{f}.yaml").write_text(HEAD + body, encoding="utf-8")
    (tmp_path / "zz.yaml").write_text(HEAD + RULE.format(n=3, title="again"), encoding="utf-8")
    return tmp_path


def test_several_processes_give_the_report_one_process_gives(tmp_path: Path) -> None:
    folder = str(_rules(tmp_path))
    argv = [sys.executable, "-m", "emitter", "validate", "--format", "json", "--strict",
            "--require-tests", folder]
    one = subprocess.run([*argv, "-j", "1"], capture_output=True, text=True, timeout=60)
    three = subprocess.run([*argv, "-j", "3"], capture_output=True, text=True, timeout=60)
    assert one.returncode == three.returncode == 1
    assert one.stdout == three.stdout and one.stderr == three.stderr == ""
    for check in ("tag-format", "unused-param", "untested-rule", "duplicate-id", "undefined",
                  "template", "event"):
        assert f'"{check}"' in one.stdout, check


def test_a_child_that_fails_has_its_rules_checked_again_here(tmp_path: Path) -> None:
    if usable_jobs(30, 3) != 3:
        pytest.skip("this process cannot fork safely (threads are running)")
    parent = os.getpid()
    seen: list[int] = []

    def check(run: tuple[Rule, ...]) -> _Checked:
        if os.getpid() != parent:
            os._exit(3)  # the child dies before sending anything
        seen.append(len(run))
        return _Checked((), (), (), len(run))

    rules = tuple(validation.load_rules([str(_rules(tmp_path))]).rules)
    results = _check_in_parallel(rules, 3, check)
    assert [r.events for r in results] == seen and sum(seen) == len(rules)


def test_the_report_says_how_many_processes_checked(tmp_path: Path) -> None:
    report = validate_paths([str(_rules(tmp_path))], now=NOW, environ={})
    assert report.jobs == 1 and report.rules_checked == 30  # not the duplicate


def test_usable_jobs() -> None:
    assert usable_jobs(5, 1) == 1
    if usable_jobs(10, 8) == 1:
        pytest.skip("this process cannot fork safely (threads are running)")
    assert usable_jobs(10, 8) == 8 and usable_jobs(3, 8) == 3
    assert usable_jobs(50, None) == 1  # too few rules to be worth a fork
    assert 1 <= usable_jobs(10_000, None) <= validation.MAX_JOBS
