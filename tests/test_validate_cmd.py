"""`emitter validate` and `emitter render` end to end through cli.main (and once as a real
subprocess): output formats, exit codes, and the events printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emitter.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = str(ROOT / "rules" / "deploy.yaml")
EXAMPLES = ROOT / "tests" / "examples"

GOOD = """version: 1
rules:
  - id: greet
    trigger: {type: manual}
    params:
      who: {type: string, example: world}
      n: {type: integer, default: 2}
      loud: {type: boolean, default: false}
    event:
      title: "hello {{ who }}{{ '!' * n if loud else '' }}"
      text: "n={{ n }}"
      tags: ["who:{{ who }}"]
  - id: fan-out
    trigger: {type: manual}
    params: {names: {type: list, example: [a, b, c]}}
    foreach: names
    when: "names | length > 0"
    event: {title: "{{ item }}", text: "one of {{ names | length }}"}
  - id: hooked
    trigger: {type: webhook, path: /h, token_env: HOOK_TOKEN}
    event: {title: "{{ payload.get('name', 'none') }}", text: "{{ headers | length }}"}
"""

BAD = """version: 1
rules:
  - id: broken
    trigger: {type: manual}
    event:
      title: "{{ missing }}"
      text: x
"""

WARNING_ONLY = """version: 1
rules:
  - id: old
    trigger: {type: manual}
    event: {title: t, text: x, date_happened: "{{ (now | timestamp) - 86400 }}"}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- validate -----------------------------------------------------------------------------


def test_validate_ok(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", write(tmp_path, "good.yaml", GOOD), DEPLOY)
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "ok: no problems in 2 files"


def test_validate_errors_are_placed_and_exit_1(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BAD)
    code, out, _ = run(capsys, "validate", path)
    assert code == 1
    assert f"{path}:6:14: error: undefined variable 'missing' in title [broken]" in out
    assert out.strip().endswith("1 error in 1 file")


def test_warnings_pass_unless_strict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "old.yaml", WARNING_ONLY)
    code, out, _ = run(capsys, "validate", path)
    assert code == 0 and "warning: date_happened is 24 hours in the past" in out
    code, out, _ = run(capsys, "validate", "--strict", path)
    assert code == 1 and "error: date_happened is 24 hours in the past" in out


def test_json_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", "--format", "json", write(tmp_path, "b.yaml", BAD))
    document = json.loads(out)
    assert code == 1 and document["summary"]["errors"] == 1
    assert document["problems"][0]["line"] == 6


def test_github_format_is_chosen_under_actions(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, _ = run(capsys, "validate", write(tmp_path, "b.yaml", BAD))
    assert code == 1 and out.startswith("::error file=")
    code, out, _ = run(capsys, "validate", "--format", "text", write(tmp_path, "c.yaml", BAD))
    assert not out.startswith("::")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "validate", str(tmp_path / "nope.yaml"))[0] == 2
    assert run(capsys, "validate", "--disable", "tag-fromat", DEPLOY)[0] == 2
    with pytest.raises(SystemExit) as info:
        main(["validate", "--format", "xml", DEPLOY])
    assert info.value.code == 2


def test_validate_reports_every_file_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(EXAMPLES / "invalid"))
    files = {line.split(":", 1)[0] for line in out.splitlines() if ": error: " in line}
    assert code == 1 and len(files) >= 10


def test_unified_tags_from_the_environment_are_checked(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_ENV", "Prod")
    code, out, _ = run(capsys, "validate", DEPLOY)
    assert code == 0 and "'env:Prod' (rendered from the examples) has capitals" in out


# ---- render -------------------------------------------------------------------------------


def test_render_prints_the_event(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", DEPLOY, "--rule", "deploy-finished",
                         "--var", "service=pay", "--var", "version=2.0",
                         "--var", "outcome=failure", "--now", "2025-01-01T00:00:00")
    assert code == 0, err
    (line,) = out.splitlines()
    event = json.loads(line)
    assert event["title"] == "Deployed pay 2.0" and event["alert_type"] == "error"
    assert event["tags"] == ["team:platform", "service:pay", "version:2.0"]


def test_render_types_vars_and_reads_a_vars_file(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    varsfile = write(tmp_path, "vars.json", json.dumps({"who": "file", "n": 3}))
    code, out, err = run(capsys, "render", path, "--rule", "greet", "--vars-file", varsfile,
                         "--var", "loud=yes")
    assert code == 0, err
    assert json.loads(out)["title"] == "hello file!!!"


def test_render_foreach_prints_json_lines(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    code, out, _ = run(capsys, "render", path, "--rule", "fan-out", "--var", 'names=["x","y"]')
    assert code == 0
    assert [json.loads(line)["title"] for line in out.splitlines()] == ["x", "y"]
    code, out, err = run(capsys, "render", path, "--rule", "fan-out", "--var", "names=[]")
    assert code == 0 and out == "" and "when is false" in err


def test_render_trigger_variables(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    code, out, _ = run(capsys, "render", path, "--rule", "hooked")
    assert code == 0 and json.loads(out)["title"] == "none"
    code, out, _ = run(capsys, "render", path, "--rule", "hooked",
                       "--var", 'payload={"name": "ci"}')
    assert code == 0 and json.loads(out)["title"] == "ci"


def test_render_invalid_event_exits_1_with_the_json_path(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    code, out, err = run(capsys, "render", DEPLOY, "--rule", "deploy-finished",
                         "--var", "service=" + "s" * 100, "--var", "version=1",
                         "--var", "outcome=success")
    assert code == 1 and out == ""
    first, second = err.splitlines()[:2]
    assert first.endswith("deploy.yaml:15:14: error: title is 111 characters; the limit is 100 "
                          "at $.title [deploy-finished]")
    assert "deploy.yaml:19:24: error: aggregation_key is 107 characters" in second


def test_render_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", DEPLOY, "--rule", "deploy-finish")
    assert code == 2 and "did you mean 'deploy-finished'?" in err
    code, _, err = run(capsys, "render", DEPLOY, "--rule", "deploy-finished",
                       "--var", "service=a", "--var", "version=1", "--var", "outcome=maybe")
    assert code == 2 and "outcome: 'maybe' is not one of" in err
    with pytest.raises(SystemExit):
        main(["render", DEPLOY, "--rule", "deploy-finished", "--now", "tuesday"])


def test_validate_as_a_real_process() -> None:
    done = subprocess.run([sys.executable, "-m", "emitter", "validate", DEPLOY],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "ok: no problems in 1 file" in done.stdout
