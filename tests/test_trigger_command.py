"""The command trigger with real subprocesses: variables, bounded output, timeout killing the
process group, on: always/failure/change, change detection across a restart, not found."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from emitter.errors import OutboxFullError
from emitter.problems import Location
from emitter.rules.model import CommandTrigger, Rule
from emitter.state.store import StateStore
from emitter.triggers.base import Firing
from emitter.triggers.command import CommandRunner, run_command

PY = sys.executable


def rule(rule_id: str, command: Sequence[str], **kw: object) -> Rule:
    trig = CommandTrigger(command=tuple(command), **kw)  # type: ignore[arg-type]
    return Rule(id=rule_id, location=Location("r.yaml", 1, 1), trigger=trig, event={})


class Harness:
    def __init__(self, store: StateStore, rules: list[Rule]) -> None:
        self.fired: list[Firing] = []
        self.errors: list[tuple[str | None, str]] = []
        self.fail = False
        self.runner = CommandRunner(rules, self.dispatch,
                                    lambda r, m: self.errors.append((r, m)), store)

    def dispatch(self, firings: Sequence[Firing]) -> None:
        if self.fail:
            raise OutboxFullError("full")
        self.fired.extend(firings)


def test_variables_and_bounded_output(tmp_path: Path) -> None:
    code = ("import sys; sys.stdout.write('x' * 10000 + 'END'); "
            "sys.stderr.write('oops'); sys.exit(3)")
    with StateStore(tmp_path / "s.db") as store:
        h = Harness(store, [r := rule("chk", [PY, "-c", code], on="always")])
        h.runner.run_once(r)
    v = h.fired[0].variables
    assert v["exit_code"] == 3 and v["state"] == "failed" and v["timed_out"] is False
    assert len(v["stdout"]) == 4096 and v["stdout"].endswith("xEND")
    assert v["stderr"] == "oops"
    assert 0 < v["duration"] < 10
    assert v["command"].startswith(PY)


def test_timeout_kills_the_process_group() -> None:
    # The child starts a grandchild that would outlive it; both must be gone after the kill.
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
            "print('started', flush=True); time.sleep(30)")
    started = time.monotonic()
    result = run_command([PY, "-c", code], timeout=1.0)
    assert result.timed_out and result.exit_code == -9 and result.state == "timed_out"
    assert "started" in result.stdout
    assert time.monotonic() - started < 5  # the grandchild did not keep the pipes open


def test_on_failure_fires_only_for_failures(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        ok, bad = rule("ok", ["true"], on="failure"), rule("bad", ["false"], on="failure")
        h = Harness(store, [ok, bad])
        h.runner.run_once(ok)
        h.runner.run_once(bad)
    assert [f.rule_id for f in h.fired] == ["bad"]


def test_change_detection_survives_restart(tmp_path: Path) -> None:
    flag = tmp_path / "red"
    code = f"import os, sys; sys.exit(1 if os.path.exists({str(flag)!r}) else 0)"
    chk = rule("chk", [PY, "-c", code], on="change")

    def run() -> list[str]:
        with StateStore(tmp_path / "s.db") as store:
            h = Harness(store, [chk])
            h.runner.run_once(chk)
            return [f"{f.variables['previous_state']}->{f.variables['state']}" for f in h.fired]

    assert run() == []  # green at first: nothing to say
    flag.write_text("")
    assert run() == ["ok->failed"]  # went red
    assert run() == []  # still red, also after a restart (a new store and runner each time)
    flag.unlink()
    assert run() == ["failed->ok"]  # green again
    assert run() == []


def test_change_not_saved_when_dispatch_fails(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        h = Harness(store, [chk := rule("chk", ["false"], on="change")])
        h.fail = True
        h.runner.run_once(chk)
        assert h.fired == [] and "not accepted" in h.errors[0][1]
        h.fail = False
        h.runner.run_once(chk)
        assert [f.variables["state"] for f in h.fired] == ["failed"]


def test_command_not_found_is_reported_and_retried(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        missing = rule("gone", [str(tmp_path / "no-such-command")], every=0.1)
        h = Harness(store, [missing])
        h.runner.start()
        deadline = time.monotonic() + 5
        while len(h.errors) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        h.runner.stop(2)
    assert len(h.errors) >= 2 and h.errors[0][0] == "gone"
    assert "cannot run" in h.errors[0][1] and h.fired == []
