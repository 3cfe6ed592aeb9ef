"""`/healthz` reads the health of every long-lived daemon thread: a trigger runner whose thread
keeps crashing (caught by its top-level guard, reported, retried) makes it answer 503 with the
part and its error, on every port, while the rest of the daemon keeps running."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from emitter.daemon.lifecycle import Daemon, DaemonConfig
from emitter.triggers.base import Dispatch, OnError, RunnerBase, TriggerRunner

RULE = "version: 1\nrules:\n  - id: tick\n    trigger: {type: schedule, every: 1h}\n" \
       "    event: {title: t, text: x}\n"


class Crashing(RunnerBase):
    """A trigger whose loop raises until `healed` is set, as a bug in a runner would."""

    def __init__(self, on_error: OnError) -> None:
        super().__init__("crashy", on_error)
        self.healed = threading.Event()
        self.crashes = 0

    def start(self) -> None:
        self._start_thread(self._run)

    def _run(self) -> None:
        if not self.healed.is_set():
            self.crashes += 1
            raise RuntimeError("disk on fire")
        self._stop.wait()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, list[Crashing]]]:
    (tmp_path / "r.yaml").write_text(RULE)
    made: list[Crashing] = []

    def factory(kind: str, rules: Sequence[Any], dispatch: Dispatch,
                on_error: OnError) -> TriggerRunner:
        made.append(Crashing(on_error))
        return made[-1]

    config = DaemonConfig(paths=(str(tmp_path / "r.yaml"),), sink="stdout",
                          state_dir=str(tmp_path / "state"), listen="127.0.0.1:0",
                          metrics_addr="127.0.0.1:0", grace=1)
    d = Daemon(config, {"HOME": str(tmp_path)}, runner_factory=factory)
    d.start()
    yield d, made
    d.shutdown()


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_a_crashing_trigger_thread_makes_healthz_503_on_every_port(
        daemon: tuple[Daemon, list[Crashing]]) -> None:
    d, made = daemon
    (runner,) = made
    deadline = time.monotonic() + 10
    while runner.crashes == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    answers = [healthz(port) for _, port in d.ports.addresses]
    assert len(answers) == 2 and answers[0] == answers[1]
    status, body = answers[0]
    assert status == 503 and body["status"] == "failing"
    assert body["failing"] == [{"part": "trigger schedule/tick",
                                "error": "crashy crashed: RuntimeError: disk on fire"}]
    assert runner.crashes >= 1 and d.metrics.totals() is not None
    assert d.metrics.trigger_errors() == {}  # a crash is no rule's error: reported with none


def test_healthz_is_ok_when_every_thread_is_well(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULE)
    config = DaemonConfig(paths=(str(tmp_path / "r.yaml"),), sink="stdout",
                          state_dir=str(tmp_path / "state"), metrics_addr="127.0.0.1:0")
    d = Daemon(config, {"HOME": str(tmp_path)})
    d.start()
    try:
        ((_, port),) = d.ports.addresses
        status, body = healthz(port)
    finally:
        d.shutdown()
    assert (status, body["status"], body["failing"]) == (200, "ok", [])


class SlowToStart(RunnerBase):
    """A trigger whose start() waits until the test lets it go (a slow file open, say)."""

    def __init__(self, on_error: OnError, gate: threading.Event) -> None:
        super().__init__("slow", on_error)
        self.gate = gate

    def start(self) -> None:
        assert self.gate.wait(30)
        self._start_thread(self._stop.wait)


def test_healthz_says_starting_until_every_trigger_has_started(tmp_path: Path) -> None:
    """The ports answer before the triggers start; a probe must not route traffic yet."""
    (tmp_path / "r.yaml").write_text(RULE)
    gate = threading.Event()

    def factory(kind: str, rules: Sequence[Any], dispatch: Dispatch,
                on_error: OnError) -> TriggerRunner:
        return SlowToStart(on_error, gate)

    config = DaemonConfig(paths=(str(tmp_path / "r.yaml"),), sink="stdout",
                          state_dir=str(tmp_path / "state"), metrics_addr="127.0.0.1:0")
    d = Daemon(config, {"HOME": str(tmp_path)}, runner_factory=factory)
    starter = threading.Thread(target=d.start)
    starter.start()
    try:
        deadline = time.monotonic() + 20
        while not d.ports.addresses and time.monotonic() < deadline:
            time.sleep(0.01)
        ((_, port),) = d.ports.addresses
        status, body = healthz(port)
        assert (status, body["status"]) == (503, "starting")
        gate.set()
        starter.join(20)
        status, body = healthz(port)
        assert (status, body["status"]) == (200, "ok")
    finally:
        gate.set()
        starter.join(20)
        d.shutdown()
