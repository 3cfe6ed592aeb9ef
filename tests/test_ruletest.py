"""`emitter test`: fixtures of every trigger kind pass and fail as they should, reports carry
file:line, JUnit counts are right, exit codes are 0/1/2, nothing is sent or written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emitter.cli import main
from emitter.ruletest.model import Status
from emitter.ruletest.parse import find_test_files, parse_time, read_test_file
from emitter.ruletest.runner import run_tests

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "ruletests"
KINDS = ("manual", "file", "webhook", "command", "schedule", "stdin")


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # fixture paths in reports stay short and stable


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["test", *args])
    return code, capsys.readouterr().out


def test_passing_fixtures_of_every_kind_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "tests/ruletests/passing", "-v")
    assert code == 0, out
    assert out.count("PASS ") == 14
    assert "FAIL" not in out and "ERROR" not in out
    rules_seen = {line.rsplit("[", 1)[1].rstrip("]") for line in out.splitlines()
                  if line.startswith("PASS")}
    assert rules_seen == {"manual-deploy", "nginx-upstream-errors", "nginx-summary",
                          "am-alerts", "disk-check", "nightly-report", "stdin-builds"}


def test_the_projects_own_rules_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "rules")
    assert code == 0, out
    assert " 0 failed" in out


@pytest.mark.parametrize("kind", KINDS)
def test_failing_fixture_of_each_kind_fails(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, f"tests/ruletests/failing/{kind}.test.yaml")
    assert code == 1
    line = 8 if kind == "manual" else 4
    assert f"FAIL tests/ruletests/failing/{kind}.test.yaml:{line}: " in out


def test_failure_details() -> None:
    files, _ = find_test_files(["tests/ruletests/failing"])
    run = run_tests(files)
    by_name = {c.name: c for c in run.cases}
    assert by_name["manual passes"].status is Status.PASSED
    wrong = by_name["manual wrong title"]
    assert wrong.status is Status.FAILED
    assert wrong.message == "event 1: title differs"
    assert wrong.location.line == 8
    assert '-    "title": "Deploy of web: success"' in wrong.diff
    assert '+    "title": "Deploy of web: failure"' in wrong.diff
    assert wrong.diff.startswith("--- expected\n+++ rendered\n")
    unmatched = by_name["file expects an event but the line does not match"]
    assert unmatched.message == "expected 1 event(s), got 0 (1 line(s) did not match)"
    assert by_name["command expects an event for an unchanged result"].message == \
        "expected 2 event(s), got 1"
    assert by_name["webhook expects one event, foreach gives two"].message == \
        "expected 1 event(s), got 2"
    assert by_name["stdin expects no event but the build fired"].message == \
        "expected no event, got 1"
    exact = by_name["schedule expects the wrong date"]
    assert "date_happened" in exact.message and "title" in exact.message
    kind = by_name["stdin input given to a manual rule"]
    assert kind.status is Status.ERROR
    assert "give `params:`, not `stdin:`" in kind.message
    unknown = by_name["unknown rule"]
    assert unknown.status is Status.ERROR and "no-such-rule" in unknown.message
    assert (run.count(Status.PASSED), run.count(Status.FAILED), run.count(Status.ERROR)) == \
        (1, 7, 2)


def test_broken_test_files_exit_1_with_file_line_col(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "tests/ruletests/broken")
    assert code == 1
    lines = out.splitlines()
    assert ("tests/ruletests/broken/typo.test.yaml:6:5: error: unknown key 'parms'; "
            "did you mean 'params'? at $.tests[0]") in lines
    assert any(line.startswith("tests/ruletests/broken/missing-rules.test.yaml:2:14: error: "
                               "rule file '../nope.yaml' not found") for line in lines)
    assert any(line.startswith("tests/ruletests/broken/missing-rules.test.yaml:3:6: error: "
                               "'yesterday' is not an ISO 8601 time") for line in lines)
    assert lines[-1] == "0 cases in 2 files: 0 passed, 0 failed, 2 broken test files"


def test_broken_rule_file_is_reported_at_its_place(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.yaml").write_text(
        "version: 1\nrules:\n  - id: r\n    trigger: {type: manual}\n"
        "    event: {title: '{{ x ', text: t}\n")
    (tmp_path / "r.test.yaml").write_text(
        "version: 1\nrule_files: [r.yaml]\ntests:\n"
        "  - {name: n, rule: r, params: {}, expect: {no_event: true}}\n")
    code, out = _run(capsys, str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'r.yaml'}:5:" in out
    assert "template syntax error" in out


def test_junit_file_parses_with_right_counts(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.xml"
    code, _ = _run(capsys, "tests/ruletests/failing", "tests/ruletests/broken",
                   "--junit", str(target))
    assert code == 1
    root = ET.parse(target).getroot()
    # 10 cases + one "load test file" case per broken file
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("12", "7", "4")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert len(suites) == 8
    stdin = suites["tests/ruletests/failing/stdin.test.yaml"]
    assert (stdin.get("tests"), stdin.get("failures"), stdin.get("errors")) == ("3", "1", "2")
    failure = stdin.find("testcase/failure")
    assert failure is not None and failure.text is not None
    assert "+    \"title\": \"Build 7 failed\"" in failure.text


def test_junit_format_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "tests/ruletests/passing", "--format", "junit")
    assert code == 0
    root = ET.fromstring(out)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("14", "0", "0")


def test_github_format_lines_carry_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "tests/ruletests/failing/manual.test.yaml", "--format", "github")
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("::error file=tests/ruletests/failing/manual.test.yaml,line=8,"
                            "col=5,title=emitter test%3A manual wrong title::")
    assert "%0A--- expected%0A+++ rendered" in first


def test_github_is_the_default_under_actions(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    _, out = _run(capsys, "tests/ruletests/failing/manual.test.yaml")
    assert out.startswith("::error file=")


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "tests/ruletests/failing/manual.test.yaml", "--format", "json")
    assert code == 1
    body = json.loads(out)
    assert body["ok"] is False
    assert body["summary"] == {"cases": 2, "passed": 1, "failed": 1, "errors": 0,
                               "broken_files": 0}
    case = body["files"][0]["cases"][1]
    assert (case["status"], case["line"], case["rule"]) == ("failed", 8, "manual-deploy")
    assert case["events"][0]["title"] == "Deploy of web: failure"


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["test", str(tmp_path)]) == 2
    assert "no test files" in capsys.readouterr().err


def test_nothing_is_written_outside(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home, state = Path(os.environ["HOME"]), Path(os.environ["XDG_STATE_HOME"])
    before = sorted(home.rglob("*")), sorted(state.rglob("*"))
    code, _ = _run(capsys, "tests/ruletests/passing")
    assert code == 0
    assert (sorted(home.rglob("*")), sorted(state.rglob("*"))) == before


def test_cases_start_from_fresh_state(tmp_path: Path) -> None:
    """The same throttled line in two cases fires in both: no state leaks between cases."""
    (tmp_path / "t.test.yaml").write_text(
        f"version: 1\nrule_files: [{FIXTURES / 'rules.yaml'}]\ntests:\n" + "".join(
            f"  - name: c{i}\n    rule: nginx-upstream-errors\n"
            "    lines: ['t [error] upstream a timed out']\n"
            "    expect: {events: [{title: Upstream a timed out}]}\n" for i in range(2)))
    run = run_tests([str(tmp_path / "t.test.yaml")])
    assert [c.status for c in run.cases] == [Status.PASSED, Status.PASSED]


def test_env_reaches_unified_tags_but_the_real_environment_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_ENV", "from-the-shell")
    (tmp_path / "t.test.yaml").write_text(
        f"version: 1\nrule_files: [{ROOT / 'rules' / 'deploy.yaml'}]\nenv: {{DD_ENV: ci}}\n"
        "tests:\n  - name: tags\n    rule: deploy-finished\n"
        "    params: {service: s, version: v, outcome: success}\n"
        "    expect: {events: [{tags: [team:platform, service:s, version:v, env:ci]}]}\n")
    run = run_tests([str(tmp_path / "t.test.yaml")])
    assert run.cases[0].status is Status.PASSED, run.cases[0].diff


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2026-01-01T00:00:00Z", 1767225600.0), ("2026-01-01T01:00:00+01:00", 1767225600.0),
     (1767225600, 1767225600.0)],
)
def test_parse_time(text: object, seconds: float) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00", "soon", True])
def test_parse_time_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_case_input_rules(tmp_path: Path) -> None:
    path = tmp_path / "t.test.yaml"
    path.write_text(
        "version: 1\nrule_files: [.]\ntests:\n"
        "  - {name: none, rule: r, expect: {no_event: true}}\n"
        "  - {name: two, rule: r, params: {}, lines: [x], expect: {no_event: true}}\n"
        "  - name: both\n    rule: r\n    params: {}\n    inputs: [{params: {}}]\n"
        "    expect: {no_event: true}\n")
    test_file, problems = read_test_file(str(path))
    assert test_file is None
    assert [(p.location.line if p.location else 0) for p in problems] == [4, 5, 6]
    assert "gives no input" in problems[0].message
    assert "several inputs (params, lines)" in problems[1].message
    assert "not both" in problems[2].message


def test_console_script_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "emitter", "test", "rules"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "0 failed" in proc.stdout


def test_pre_commit_hooks_file() -> None:
    import re

    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"emitter-validate", "emitter-test"}
    validate, test = hooks["emitter-validate"], hooks["emitter-test"]
    assert validate["entry"] == "emitter validate" and test["entry"] == "emitter test"
    files, exclude = re.compile(validate["files"]), re.compile(validate["exclude"])
    chosen = [p for p in ("rules/a.yaml", "rules/b.yml", "rules/a.test.yaml", "README.md")
              if files.search(p) and not exclude.search(p)]
    assert chosen == ["rules/a.yaml", "rules/b.yml"]
    assert test["pass_filenames"] is False
    assert main(["test", *test["args"]]) == 0  # the project's own rules pass their hook


def test_expected_errors_are_seen_whatever_logging_says(
        capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from emitter.daemon.logs import configure

    root = logging.getLogger("emitter")
    before = root.level, root.propagate
    handler = configure("error")  # a daemon-style handler that would hide warnings
    try:
        code, out = _run(capsys, "tests/ruletests/passing")
        assert code == 0, out
        assert capsys.readouterr().err == ""  # no daemon event lines leaked
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        root.propagate = before[1]
