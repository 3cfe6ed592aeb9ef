"""`emitter fire` and `emitter exec` through the shared backend's outbox (`--state-url`,
EMITTER_STATE_URL) as through a state directory's: delivered → removed, intake down → left
pending for any replica's sender, and `outbox drain --state-url` delivers it. Against the
throwaway cluster and the loopback intake."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from emitter.delivery.backend import opened
from tests.intake import FakeIntake
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture
from tests.test_fire_outbox import env as env  # noqa: F401 - the `env` fixture
from tests.test_fire_outbox import fire, run


def counts(url: str) -> tuple[int, int, int, dict[str, int]]:
    with opened(url) as backend:
        now = backend.outbox.status()
    return now.pending, now.inflight, now.dead, dict(now.counters)


def test_fire_with_a_state_url_goes_through_the_shared_outbox(
        env: FakeIntake, pg_cluster: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_cluster.new_database()
    code, out, err = fire(capsys, "--state-url", url)
    assert code == 0, err
    assert [e["title"] for e in env.events] == ["Deployed payments 1.4.2"]
    pending, inflight, dead, counters = counts(url)
    assert (pending, inflight, dead) == (0, 0, 0)
    assert counters["accepted"] == 1 and counters["delivered"] == 1  # it went through


def test_intake_down_leaves_it_in_the_shared_outbox_for_a_sender(
        env: FakeIntake, pg_cluster: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_cluster.new_database()
    monkeypatch.setenv("EMITTER_STATE_URL", url)
    env.down()
    code, out, err = fire(capsys, "--max-attempts", "2")
    assert code == 5 and out == "", err
    assert "left in the outbox as id 1" in err and "--state-url" not in err  # from the env
    assert counts(url)[:3] == (1, 0, 0) and env.events == []
    env.up()
    code, _, err = run(capsys, "outbox", "drain", "--until-empty", "--timeout", "30")
    assert code == 0, err
    assert [e["title"] for e in env.events] == ["Deployed payments 1.4.2"]
    assert counts(url)[:3] == (0, 0, 0)


def test_exec_with_a_state_url(env: FakeIntake, pg_cluster: Any, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_cluster.new_database()
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\nrules:\n  - id: job\n    trigger: {type: manual}\n"
                     "    event: {title: \"job {{ exit_code }}\", text: x}\n")
    code, _, err = run(capsys, "exec", str(rules), "--rule", "job", "--state-url", url, "--",
                       sys.executable, "-c", "raise SystemExit(3)")
    assert code == 3, err  # exec exits as its command did
    assert [e["title"] for e in env.events] == ["job 3"]
    assert counts(url)[3]["delivered"] == 1


def test_a_state_url_and_a_state_dir_together_are_refused(
        env: FakeIntake, pg_cluster: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_cluster.new_database()
    code, _, err = fire(capsys, "--state-url", url, "--state-dir", str(tmp_path))
    assert code == 2 and "not both" in err and "Traceback" not in err
    code, _, err = fire(capsys, "--state-url", "/tmp/x")
    assert code == 2 and "expected postgresql://" in err
    monkeypatch.setenv("EMITTER_STATE_URL", url)  # a --state-dir flag wins over the variable
    code, _, err = fire(capsys, "--state-dir", str(tmp_path))
    assert code == 0, err
    assert counts(url)[3].get("accepted", 0) == 0


def test_the_url_variable_is_the_one_the_backend_reads() -> None:
    from emitter.commands import oneshot
    from emitter.delivery.backend import STATE_URL_ENV

    assert oneshot.STATE_URL_ENV == STATE_URL_ENV
