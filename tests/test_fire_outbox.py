"""`emitter fire` through the durable outbox when a state directory is configured (issue 3):
delivered → removed, refused → dead letter, retries exhausted → left pending for a sender.
Against the loopback intake; no mocks."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from emitter.cli import main
from emitter.delivery.outbox import OUTBOX_FILE, Outbox, OutboxStatus
from emitter.sinks.datadog import user_agent
from tests.intake import FIRST_EVENT_ID, INTAKE_KEY, FakeIntake
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = [str(ROOT / "rules" / "deploy.yaml"), "--rule", "deploy-finished", "--var",
          "service=payments", "--var", "version=1.4.2", "--var", "outcome=success"]


@pytest.fixture
def env(intake: FakeIntake, monkeypatch: pytest.MonkeyPatch) -> FakeIntake:
    monkeypatch.setenv("DD_API_KEY", INTAKE_KEY)
    monkeypatch.setenv("DATADOG_HOST", intake.url)
    return intake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fire(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return run(capsys, "fire", *DEPLOY, *extra)


def status(state: Path) -> OutboxStatus:
    with Outbox.in_dir(state) as outbox:
        return outbox.status()


def test_delivered_through_the_outbox_leaves_it_empty(env: FakeIntake, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fire(capsys, "--state-dir", str(tmp_path))
    assert code == 0, err
    assert out.split()[0] == str(FIRST_EVENT_ID)
    assert [e["title"] for e in env.events] == ["Deployed payments 1.4.2"]
    now = status(tmp_path)
    assert (now.pending, now.inflight, now.dead, now.events) == (0, 0, 0, 0)
    assert now.counters["accepted"] == 1 and now.counters["delivered"] == 1  # it went through


def test_state_dir_from_the_environment(env: FakeIntake, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMITTER_STATE_DIR", str(tmp_path / "state"))
    code, _, err = fire(capsys)
    assert code == 0, err
    assert status(tmp_path / "state").counters["delivered"] == 1


def test_the_state_variable_is_the_one_emitter_state_reads() -> None:
    from emitter.commands import oneshot
    from emitter.state.dirs import STATE_ENV

    assert oneshot.STATE_ENV == STATE_ENV


def test_without_a_state_dir_no_outbox_is_made(env: FakeIntake,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = fire(capsys)
    assert code == 0 and len(env.events) == 1
    default = Path(os.environ["XDG_STATE_HOME"]) / "emitter"
    assert not default.exists()  # sent directly: the per-user default is never used


def test_dry_run_ignores_the_state_dir(env: FakeIntake, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fire(capsys, "--dry-run", "--state-dir", str(tmp_path / "s"))
    assert code == 0 and json.loads(out)["title"] == "Deployed payments 1.4.2"
    assert env.requests == [] and not (tmp_path / "s").exists()


def test_a_403_becomes_a_dead_letter(env: FakeIntake, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", "wrong-key-0000")
    code, out, err = fire(capsys, "--state-dir", str(tmp_path))
    assert code == 4 and out == ""
    assert "HTTP 403" in err and "Forbidden" in err and "dead letter 1" in err
    assert f"emitter outbox list --dead --state-dir {tmp_path}" in err
    assert "wrong-key-0000" not in err
    assert len(env.requests) == 1  # never retried
    now = status(tmp_path)
    assert (now.pending, now.inflight, now.dead) == (0, 0, 1)
    code, out, _ = run(capsys, "outbox", "list", "--dead", "--state-dir", str(tmp_path),
                       "--format", "json")
    (row,) = json.loads(out)
    assert code == 0 and row["id"] == 1 and row["rule_id"] == "deploy-finished"
    assert row["last_status"] == 403 and "Forbidden" in row["last_error"]


@pytest.mark.slow  # the retry waits for its back-off (up to 2 s) before drain sends it
def test_intake_down_leaves_it_pending_then_drain_delivers(env: FakeIntake, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    env.down()
    code, out, err = fire(capsys, "--state-dir", str(tmp_path), "--max-attempts", "2")
    assert code == 5 and out == ""
    assert "gave up after 2 attempts" in err and "Connection refused" in err
    assert "left in the outbox as id 1" in err
    assert f"`emitter run` or `emitter outbox drain --state-dir {tmp_path}`" in err
    now = status(tmp_path)
    assert (now.pending, now.inflight, now.dead) == (1, 0, 0)
    assert env.events == []
    env.up()
    code, _, err = run(capsys, "outbox", "drain", "--state-dir", str(tmp_path),
                       "--until-empty", "--timeout", "30")
    assert code == 0, err
    assert [e["title"] for e in env.events] == ["Deployed payments 1.4.2"]
    assert status(tmp_path).events == 0
    agents = {r.header("User-Agent") for r in env.requests}  # the sender's (drain runs it)
    assert agents == {user_agent()}


def test_a_full_outbox_refuses_the_event(env: FakeIntake, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    status(tmp_path)  # create it
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as db:  # as if a million events waited
        db.execute("UPDATE totals SET events = 1000000")
    code, out, err = fire(capsys, "--state-dir", str(tmp_path))
    assert code == 7 and out == ""
    assert "is full" in err and "nothing already accepted was dropped" in err
    assert env.requests == []  # refused before anything was sent


def test_an_unusable_state_dir_is_exit_6_before_sending(env: FakeIntake, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    code, out, err = fire(capsys, "--state-dir", str(not_a_dir))
    assert code == 6 and out == ""
    assert "not usable" in err and "not a directory" in err and env.requests == []
