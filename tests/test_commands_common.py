"""Helpers shared by the commands that render one rule (render, fire)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emitter.commands._common import (
    MAX_VARS_FILE,
    compile_named_rule,
    parse_vars,
    read_vars_file,
    report_invalid,
    unknown_rule,
)
from emitter.errors import UsageError

RULES = """version: 1
rules:
  - id: deploy
    trigger: {type: manual}
    event: {title: "Deployed {{ service }}", text: "done"}
  - id: broken
    trigger: {type: manual}
    event: {title: "{{ oops", text: "x"}
"""


def test_parse_vars_keeps_everything_after_the_first_equals() -> None:
    assert parse_vars(["a=1", " b =x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in ("novalue", "=1", " =1"):
        with pytest.raises(UsageError, match="expected NAME=VALUE"):
            parse_vars([bad])


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"[1, 2]", "expected a JSON object"), (b"{nope", "not JSON"),
     (b" " * (MAX_VARS_FILE + 1), "larger than")],
)
def test_read_vars_file_refuses_what_is_not_a_small_json_object(
        tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "vars.json"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        read_vars_file(str(path))


def test_read_vars_file_reads_an_object_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"service": "payments", "n": 3}')
    assert read_vars_file(str(path)) == {"service": "payments", "n": 3}
    assert read_vars_file(None) is None
    with pytest.raises(UsageError, match="vars-file"):
        read_vars_file(str(tmp_path / "missing.json"))


def test_unknown_rule_suggests_the_closest_id() -> None:
    assert "did you mean 'deploy'" in unknown_rule("deplyo", ["deploy", "rollback"])
    assert unknown_rule("x", []) == "unknown rule 'x' (rules: none)"


def test_compile_named_rule(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES.replace("{{ oops", "ok"))
    compiled, problems = compile_named_rule([str(path)], "deploy")
    assert compiled is not None and compiled.id == "deploy" and problems == ()
    with pytest.raises(UsageError, match="did you mean 'deploy'"):
        compile_named_rule([str(path)], "deplo")


def test_compile_named_rule_gives_the_problems_of_a_rule_that_does_not_compile(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    compiled, problems = compile_named_rule([str(path)], "broken")
    assert compiled is None
    assert [(p.location.line, p.check) for p in problems if p.location] == [(8, "template")]
    assert compile_named_rule([str(path)], "deploy")[0] is not None  # the other rule is fine
    report_invalid(problems, "; nothing was sent")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}:8:") and err[-1] == "emitter: 1 error; nothing was sent"
