"""`emitter fire` end to end against the loopback intake (no mocks of requests)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emitter.cli import main
from emitter.sinks.datadog import user_agent
from tests.intake import FIRST_EVENT_ID, INTAKE_KEY, FakeIntake, Fault, intake_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = str(ROOT / "rules" / "deploy.yaml")
DEPLOY_VARS = ["--var", "service=payments", "--var", "version=1.4.2", "--var", "outcome=success"]
KEY = "DISTINCTIVE-kEy-9a8b7c6d5e4f30211203f4e5d6c7b8a9"

RULES = """\
version: 1
rules:
  - id: long-title
    trigger: {type: manual}
    params:
      n: {type: integer, example: 3}
    event:
      title: "{{ 'x' * n }}"
      text: "body"
  - id: only-success
    trigger: {type: manual}
    params:
      outcome: {type: string, example: success}
    when: "outcome == 'success'"
    event:
      title: "it worked"
      text: "{{ outcome }}"
  - id: dated
    trigger: {type: manual}
    params:
      at: {type: integer, example: 1700000000}
    event:
      title: "dated"
      text: "at {{ at }}"
      date_happened: "{{ at }}"
  - id: per-region
    trigger: {type: manual}
    params:
      regions: {type: list, example: ["eu"]}
    foreach: "regions"
    event:
      title: "deployed in {{ item }}"
      text: "region {{ item }}"
"""


@pytest.fixture
def rules(tmp_path: Path) -> str:
    path = tmp_path / "more.yaml"
    path.write_text(RULES)
    return str(path)


@pytest.fixture
def env(intake: FakeIntake, monkeypatch: pytest.MonkeyPatch) -> FakeIntake:
    monkeypatch.setenv("DD_API_KEY", INTAKE_KEY)
    monkeypatch.setenv("DATADOG_HOST", intake.url)
    return intake


def fire(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["fire", *args])
    out, err = capsys.readouterr()
    return code, out, err


def deploy(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return fire(capsys, DEPLOY, "--rule", "deploy-finished", *DEPLOY_VARS, *extra)


def test_delivered_prints_exact_id_and_url(env: FakeIntake, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_ENV", "prod")
    code, out, err = deploy(capsys)
    assert code == 0, err
    assert out == f"{FIRST_EVENT_ID} https://app.datadoghq.com/event/event?id={FIRST_EVENT_ID}\n"
    (event,) = env.events
    assert event["title"] == "Deployed payments 1.4.2"
    assert event["alert_type"] == "success"
    assert "env:prod" in event["tags"] and "service:payments" in event["tags"]
    assert len(env.requests) == 1


def test_bad_key_exit_4_forbidden(env: FakeIntake, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", "wrong-key-0000")
    code, out, err = deploy(capsys)
    assert code == 4
    assert "403" in err and "Forbidden" in err
    assert out == "" and len(env.requests) == 1  # a 403 is never retried


def test_text_plain_400_shown(rules: str, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeIntake(INTAKE_KEY, past_window=60) as intake:
        monkeypatch.setenv("DD_API_KEY", INTAKE_KEY)
        monkeypatch.setenv("DATADOG_HOST", intake.url)
        at = str(int(time.time()) - 3600)
        code, _, err = fire(capsys, rules, "--rule", "dated", "--var", f"at={at}")
        assert len(intake.requests) == 1
        assert intake.requests[0].json["date_happened"] == int(at)  # an integer, not "..."
    assert code == 4
    assert "HTTP 400" in err and "Event too far in the past" in err
    assert '{"errors"' not in err  # the list is parsed, not dumped


def test_429_waits_for_reset(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    env.enqueue(Fault.rate_limited(reset=1, retry_after=30))
    code, out, err = deploy(capsys)
    assert code == 0, err
    first, second = env.requests
    assert first.status == 429 and second.status == 202
    assert second.time - first.time >= 1.0  # X-RateLimit-Reset wins over Retry-After
    assert second.time - first.time < 5
    assert "HTTP 429" in err and "retrying in" in err


def test_5xx_then_202(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    env.enqueue(Fault.error(503), Fault.error(502, "Bad Gateway"))
    code, out, _ = deploy(capsys)
    assert code == 0
    assert [r.status for r in env.requests] == [503, 502, 202]
    assert out.startswith(str(FIRST_EVENT_ID))


def test_slow_answer_times_out_and_is_retried(env: FakeIntake,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    env.enqueue(Fault.slow(4))
    started = time.monotonic()
    code, _, err = deploy(capsys, "--timeout", "0.3")
    assert code == 0
    assert time.monotonic() - started < 3  # did not sit out the 4 s answer
    assert "no answer within 0.3s" in err
    assert len(env.requests) == 2


def test_dropped_connection_is_retried(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    env.enqueue(Fault.dropped())
    code, _, err = deploy(capsys)
    assert code == 0
    assert [r.status for r in env.requests] == [None, 202]
    assert "closed connection" in err


def test_retries_bounded_by_count(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    env.set_mode(Fault.error(500, "Internal Server Error"))
    code, out, err = deploy(capsys, "--max-attempts", "3")
    assert code == 5
    assert len(env.requests) == 3
    assert "gave up after 3 attempts" in err and "Internal Server Error" in err
    assert out == ""


def test_retries_bounded_by_deadline(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    env.set_mode(Fault.rate_limited(reset=5))
    started = time.monotonic()
    code, _, err = deploy(capsys, "--deadline", "2", "--max-attempts", "50")
    assert code == 5
    assert time.monotonic() - started < 2
    assert len(env.requests) == 1  # waiting 5 s would pass the 2 s deadline: give up now
    assert "deadline" in err


def test_unreachable_exit_5(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    env.down()
    code, _, err = deploy(capsys, "--max-attempts", "2")
    assert code == 5 and "Connection refused" in err


def test_down_then_up_delivers(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    env.down_for(0.4)
    code, out, _ = deploy(capsys, "--max-attempts", "8")
    assert code == 0 and len(env.events) == 1


def test_no_api_key_exit_6(env: FakeIntake, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DD_API_KEY")
    code, out, err = deploy(capsys)
    assert code == 6
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "DD_API_KEY" in err and "--dry-run" in err
    assert env.requests == []


@pytest.mark.parametrize("flag", [["--dry-run"], ["--sink", "stdout"]])
def test_dry_run_prints_body_and_sends_nothing(env: FakeIntake, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch,
                                               flag: list[str]) -> None:
    code, out, _ = deploy(capsys, *flag)
    assert code == 0
    assert env.requests == []
    assert json.loads(out)["title"] == "Deployed payments 1.4.2"
    monkeypatch.delenv("DD_API_KEY")  # no key needed to print
    code, out2, _ = deploy(capsys, *flag)
    assert code == 0 and out2 == out
    assert out.count("\n") == 1 and ", " not in out  # the compact body, one line


def test_dry_run_body_is_what_gets_posted(env: FakeIntake,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _, printed, _ = deploy(capsys, "--dry-run")
    deploy(capsys)
    assert env.requests[0].body == printed.rstrip("\n").encode()


def test_when_false_no_event(env: FakeIntake, rules: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fire(capsys, rules, "--rule", "only-success", "--var", "outcome=failure")
    assert code == 0
    assert "rule only-success: when is false, no event" in err
    assert env.requests == [] and out == ""


def test_foreach_sends_each_event(env: FakeIntake, rules: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    env.enqueue(Fault(), Fault.error(503))  # Fault(): answer the first one normally
    code, out, _ = fire(capsys, rules, "--rule", "per-region", "--var", 'regions=["eu", "us"]')
    assert code == 0
    assert [e["title"] for e in env.events] == ["deployed in eu", "deployed in us"]
    assert len(out.splitlines()) == 2  # one id and url per event
    assert len(env.requests) == 3  # the second event was retried once


def test_invalid_event_exit_1_with_place(env: FakeIntake, rules: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fire(capsys, rules, "--rule", "long-title", "--var", "n=101")
    assert code == 1
    assert re.search(r"more\.yaml:\d+:\d+: error: .*\[long-title\]", err), err
    assert env.requests == [] and out == ""
    code, _, _ = fire(capsys, rules, "--rule", "long-title", "--var", "n=100")
    assert code == 0 and len(env.events) == 1


def test_invalid_rule_file_exit_1(env: FakeIntake, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    trigger: {type: manual}\n"
                   "    event: {title: '{{ oops', text: t}\n")
    code, _, err = fire(capsys, str(bad), "--rule", "x")
    assert code == 1 and "bad.yaml:5:" in err and env.requests == []


def test_unknown_rule_exit_2(env: FakeIntake, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = fire(capsys, DEPLOY, "--rule", "deploy-finish")
    assert code == 2 and "did you mean 'deploy-finished'" in err


def test_vars_file(env: FakeIntake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps({"service": "billing", "version": "2.0", "outcome": "failure"}))
    code, _, _ = fire(capsys, DEPLOY, "--rule", "deploy-finished", "--vars-file", str(vars_file),
                      "--var", "service=ledger")
    assert code == 0
    assert env.events[0]["title"] == "Deployed ledger 2.0"
    assert env.events[0]["alert_type"] == "error"
    vars_file.write_text("[1]")
    code, _, err = fire(capsys, DEPLOY, "--rule", "deploy-finished", "--vars-file", str(vars_file))
    assert code == 2 and "JSON object" in err


@pytest.mark.parametrize("option", [["--timeout", "0"], ["--max-attempts", "-1"], ["--sink", "x"]])
def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str], option: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fire", DEPLOY, "--rule", "deploy-finished", *option])
    assert info.value.code == 2


def test_key_never_printed_or_logged(rules: str, capsys: pytest.CaptureFixture[str],
                                     caplog: pytest.LogCaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with FakeIntake(KEY) as intake:
        monkeypatch.setenv("DD_API_KEY", KEY)
        monkeypatch.setenv("DATADOG_HOST", intake.url)
        intake.enqueue(Fault.error(503, f"echo {KEY}"), Fault.dropped())
        seen.extend(deploy(capsys)[1:])  # retries, with the key echoed by the server
        intake.enqueue(Fault.reject(400, f"bad {KEY}", content_type="text/plain"))
        seen.extend(deploy(capsys)[1:])
        seen.extend(fire(capsys, rules, "--rule", "long-title", "--var", "n=200")[1:])
        seen.extend(deploy(capsys, "--dry-run")[1:])
        intake.down()
        seen.extend(deploy(capsys, "--max-attempts", "2")[1:])
        assert intake.requests[0].header("DD-API-KEY") == KEY  # it was really used
    monkeypatch.setenv("DATADOG_HOST", "not a url")
    seen.extend(deploy(capsys)[1:])
    seen.append(caplog.text)
    seen.extend(repr(r.__dict__) for r in caplog.records)
    everything = "\n".join(seen)
    assert "HTTP 400" in everything and "Connection refused" in everything  # output happened
    assert KEY not in everything
    assert KEY[-8:] not in everything


def test_subprocess_end_to_end(intake: FakeIntake) -> None:
    env = {**os.environ, "DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url}
    done = subprocess.run(
        [sys.executable, "-m", "emitter", "fire", DEPLOY, "--rule", "deploy-finished",
         *DEPLOY_VARS],
        capture_output=True, text=True, env=env, timeout=60, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(FIRST_EVENT_ID)
    assert INTAKE_KEY not in done.stdout + done.stderr
    assert intake.requests[0].header("User-Agent") == user_agent()  # emitter/<v> (python ...)
