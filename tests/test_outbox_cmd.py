"""`emitter outbox status|list|retry|purge|drain` through cli.main, as a user runs them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.cli import main
from emitter.delivery.outbox import Outbox
from emitter.delivery.sender import Sender
from emitter.settings import Settings
from emitter.sinks.registry import sink_factory
from tests.intake import INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture


@pytest.fixture(autouse=True)
def _no_nagle(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import intake

    monkeypatch.setattr(intake._Handler, "disable_nagle_algorithm", True, raising=False)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def filled(state: Path) -> Iterator[list[int]]:
    """Three pending events and two dead letters; yields [pending..., dead...] ids."""
    state.mkdir()
    with Outbox.in_dir(state) as box:
        ids = box.enqueue([(f"rule-{i}", json.dumps({"title": f"Événement {i}", "text": "x"})
                            .encode()) for i in range(5)])
        box.claim(5)
        box.release_inflight()
        box.claim(5, now=time.time())  # all inflight again, then settle two as dead
        box.mark_dead(ids[3], 400, "Event too far in the past")
        box.mark_dead(ids[4], 403, "Forbidden")
        box.release_inflight()
    yield ids


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["outbox", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_text_and_json(capsys: pytest.CaptureFixture[str], state: Path,
                              filled: list[int]) -> None:
    code, out, _ = run(capsys, "status", "--state-dir", str(state))
    assert code == 0
    assert "pending     3" in out and "dead        2" in out
    assert "last error" in out and "HTTP 403: Forbidden" in out
    code, out, _ = run(capsys, "status", "--state-dir", str(state), "--format", "json")
    data = json.loads(out)
    assert (data["pending"], data["inflight"], data["dead"]) == (3, 0, 2)
    assert data["counters"]["accepted"] == 5 and data["oldest_age_seconds"] >= 0


def test_list_and_list_dead(capsys: pytest.CaptureFixture[str], state: Path,
                            filled: list[int]) -> None:
    code, out, _ = run(capsys, "list", "--state-dir", str(state))
    assert code == 0 and len(out.splitlines()) == 3 and '"Événement 0"' in out
    code, out, _ = run(capsys, "list", "--dead", "--state-dir", str(state), "--format", "json")
    rows = json.loads(out)
    assert [(r["id"], r["last_status"], r["last_error"]) for r in rows] == [
        (filled[3], 400, "Event too far in the past"), (filled[4], 403, "Forbidden")]
    assert rows[0]["event"]["title"] == "Événement 3" and rows[0]["state"] == "dead"
    code, out, _ = run(capsys, "list", "--dead", "--limit", "1", "--state-dir", str(state))
    assert len(out.splitlines()) == 1 and "[HTTP 400: Event too far in the past]" in out


def test_retry_by_id_and_all_dead(capsys: pytest.CaptureFixture[str], state: Path,
                                  filled: list[int]) -> None:
    code, out, _ = run(capsys, "retry", str(filled[3]), "--state-dir", str(state))
    assert code == 0 and f"queued 1 event(s) for delivery again: {filled[3]}" in out
    code, out, err = run(capsys, "retry", "424242", "--state-dir", str(state))
    assert code == 2 and "no such event (or in flight right now): 424242" in err
    code, out, _ = run(capsys, "retry", "--all-dead", "--state-dir", str(state))
    assert code == 0 and "queued 1 event(s)" in out
    with Outbox.in_dir(state) as box:
        assert box.status().dead == 0 and box.status().pending == 5
    code, _, err = run(capsys, "retry", "--state-dir", str(state))
    assert code == 2 and "give event ids to retry, or --all-dead" in err


def test_purge_needs_dead_and_respects_age(capsys: pytest.CaptureFixture[str], state: Path,
                                           filled: list[int]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["outbox", "purge", "--state-dir", str(state)])
    assert exc.value.code == 2
    capsys.readouterr()
    code, out, _ = run(capsys, "purge", "--dead", "--older-than", "7d", "--state-dir", str(state))
    assert code == 0 and "purged 0 dead letter(s)" in out
    code, out, _ = run(capsys, "purge", "--dead", "--state-dir", str(state))
    assert code == 0 and "purged 2 dead letter(s)" in out
    with pytest.raises(SystemExit):
        main(["outbox", "purge", "--dead", "--older-than", "soon", "--state-dir", str(state)])


def test_drain_until_empty_to_the_intake(capsys: pytest.CaptureFixture[str], state: Path,
                                         filled: list[int], intake: FakeIntake,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", INTAKE_KEY)
    monkeypatch.setenv("DATADOG_HOST", intake.url)
    code, _, err = run(capsys, "drain", "--until-empty", "--timeout", "20",
                       "--state-dir", str(state))
    assert code == 0, err
    assert "sent 3, retried 0, dead 0; 0 left in the outbox" in err
    assert sorted(e["title"] for e in intake.events) == [f"Événement {i}" for i in range(3)]


def test_drain_reports_new_dead_letters(capsys: pytest.CaptureFixture[str], state: Path,
                                        filled: list[int], intake: FakeIntake,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", INTAKE_KEY)
    monkeypatch.setenv("DATADOG_HOST", intake.url)
    intake.enqueue(Fault.reject(400, "Invalid JSON structure"))
    code, _, err = run(capsys, "drain", "--until-empty", "--workers", "1",
                       "--state-dir", str(state))
    assert code == 4 and "dead 1" in err


def test_drain_to_a_file_and_timeout(capsys: pytest.CaptureFixture[str], state: Path,
                                     filled: list[int], tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    code, _, _ = run(capsys, "drain", "--sink", "file", "--sink-path", str(audit),
                     "--until-empty", "--state-dir", str(state))
    assert code == 0 and len(audit.read_text().splitlines()) == 3
    with Outbox.in_dir(state) as box:
        box.enqueue([("r", b'{"title": "t", "text": "x"}')])
    # Nothing listens on the dogstatsd Unix socket: the event stays, the drain times out.
    code, _, err = run(capsys, "drain", "--sink", "dogstatsd", "--statsd-address",
                       f"unix://{tmp_path / 'none.sock'}", "--until-empty", "--timeout", "0.5",
                       "--state-dir", str(state))
    assert code == 5 and "1 left in the outbox" in err


def test_commands_work_while_a_sender_runs(capsys: pytest.CaptureFixture[str], state: Path,
                                           filled: list[int], intake: FakeIntake) -> None:
    intake.set_mode(Fault.slow(0.2))
    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})
    with Outbox.in_dir(state) as box:
        sender = Sender(box, sink_factory("datadog", settings), workers=2)
        sender.start()
        try:
            intake.wait_for(1, timeout=10)
            code, out, _ = run(capsys, "status", "--state-dir", str(state))
            assert code == 0 and "in flight" in out
            code, out, _ = run(capsys, "retry", "--all-dead", "--state-dir", str(state))
            assert code == 0 and "queued 2 event(s)" in out
            code, _, err = run(capsys, "drain", "--sink", "stdout", "--until-empty",
                               "--state-dir", str(state))
            assert code == 6 and "already being sent by another process" in err
            assert sender.drain(timeout=20)  # the retried dead letters were picked up too
        finally:
            sender.stop(5)
    assert len(intake.events) == 5


@pytest.mark.parametrize("action", [["status"], ["list"], ["purge", "--dead"],
                                    ["drain", "--until-empty"]])
def test_a_missing_state_dir_is_an_error_and_is_not_created(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, action: list[str]) -> None:
    missing = tmp_path / "no" / "such" / "state"
    code, out, err = run(capsys, *action, "--state-dir", str(missing))
    assert code == 6 and out == ""
    assert f"state directory {missing} does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_a_state_dir_without_an_outbox_is_an_error(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    code, _, err = run(capsys, "status", "--state-dir", str(tmp_path))
    assert code == 6 and "holds no outbox" in err
    assert list(tmp_path.iterdir()) == []
