"""Hostile values outside templates (issue 9, item 6), through the real `emitter` command:
bad `!!int`/`!!float`/`!!bool` values, integers over 4,300 digits, a FIFO as a rule file and
deep or huge JSON in `render --var`, `--vars-file` and `replay --webhook-dir` are each a user
error with its place (file:line:col, or the variable's name), never an internal error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3
DEEP = "[" * 20000 + "]" * 20000
LONG = "1" * 5000
RULES = """\
version: 1
rules:
  - id: hook
    trigger: {type: webhook, path: /hooks/x}
    event: {title: t, text: "{{ payload | length }}"}
  - id: p
    trigger: {type: manual}
    params:
      data: {type: object, example: {a: 1}}
    event: {title: t, text: "{{ data }}"}
"""


def emitter(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emitter", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def one_rule(date: str) -> str:
    return ("version: 1\nrules:\n  - id: r\n    trigger: {type: manual}\n"
            f"    event: {{title: t, text: x, date_happened: {date}}}\n")


@pytest.mark.parametrize(("value", "words"), [
    ("!!int abc", "!!int 'abc' is not an integer"),
    ("!!float foo", "!!float 'foo' is not a number"),
    ("!!bool maybe", "!!bool 'maybe' is not true or false"),
    (LONG, "a number with 5000 digits is too long"),
])
def test_bad_scalars_in_a_rule_file_are_placed(tmp_path: Path, value: str, words: str) -> None:
    (tmp_path / "r.yaml").write_text(one_rule(value), encoding="utf-8")
    result = emitter("validate", "r.yaml", cwd=tmp_path)
    assert result.returncode == EXIT_INVALID, result.stderr
    assert f"r.yaml:5:47: error: {words}" in result.stdout + result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_given_as_a_rule_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "r.yaml")
    result = emitter("validate", "r.yaml", cwd=tmp_path)
    assert result.returncode == EXIT_INVALID, result.stderr
    assert "r.yaml:1:1: error: not a regular file" in result.stdout + result.stderr


@pytest.mark.parametrize(("var", "words"), [
    (f"data={DEEP}", "data: nested more than 100 levels deep"),
    (f'data={{"n": {LONG}}}', "data: a number has more than 4300 digits"),
])
def test_render_var_json_problems_name_the_variable(tmp_path: Path, var: str, words: str) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    result = emitter("render", "r.yaml", "--rule", "p", "--var", var, cwd=tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert words in result.stderr


def test_render_var_of_a_trigger_variable(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    result = emitter("render", "r.yaml", "--rule", "hook", "--var", f"payload={DEEP}",
                     cwd=tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "--var payload:" in result.stderr and "nested more than 100" in result.stderr


def test_a_deep_vars_file(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "v.json").write_text(DEEP, encoding="utf-8")
    result = emitter("render", "r.yaml", "--rule", "p", "--vars-file", "v.json", cwd=tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "--vars-file v.json: not JSON (nested more than 100" in result.stderr


@pytest.mark.parametrize("payload", [DEEP, f"[{LONG}]"])
def test_replay_of_a_hostile_saved_payload(tmp_path: Path, payload: str) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "a.json").write_text(payload, encoding="utf-8")
    result = emitter("replay", "r.yaml", "--webhook-dir", "hooks", cwd=tmp_path)
    assert result.returncode == EXIT_INVALID, result.stderr
    assert "a.json:1:1: error: not a JSON payload, skipped:" in result.stdout + result.stderr
    assert "internal error" not in result.stderr
