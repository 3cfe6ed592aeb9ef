"""In-process daemon checks (fast): unit grouping, reload keeping unchanged units, a broken
reload keeping the old set, stdin lines that stop on demand."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from emitter.daemon import logs
from emitter.daemon.lifecycle import Daemon, DaemonConfig
from emitter.errors import InvalidError
from emitter.rules.loader import load_rules
from emitter.triggers.base import Dispatch, OnError, TriggerHealth
from emitter.triggers.stdinlines import StdinLines
from emitter.triggers.units import group_units

RULES = """\
version: 1
rules:
  - id: s1
    trigger: {type: schedule, every: 1h}
    event: {title: a, text: x}
  - id: s2
    trigger: {type: schedule, every: 2h}
    event: {title: b, text: x}
  - id: f1
    trigger: {type: file, path: /tmp/x.log, match: 'E'}
    event: {title: c, text: x}
  - id: f2
    trigger: {type: file, path: /tmp/x.log, match: 'W'}
    event: {title: d, text: x}
  - id: m
    trigger: {type: manual}
    event: {title: e, text: x}
  - id: in
    trigger: {type: stdin}
    event: {title: f, text: x}
"""


def _write(tmp: Path, text: str) -> Path:
    (tmp / "rules").mkdir(exist_ok=True)
    path = tmp / "rules" / "r.yaml"
    path.write_text(text)
    return path


def test_grouping(tmp_path: Path) -> None:
    _write(tmp_path, RULES)
    rules = load_rules([str(tmp_path / "rules")]).rules
    units = group_units(rules, stdin=False)
    assert sorted(units) == [("file", "/tmp/x.log"), ("schedule", "s1"), ("schedule", "s2")]
    assert [r.id for r in units[("file", "/tmp/x.log")]] == ["f1", "f2"]
    assert ("stdin", "") in group_units(rules, stdin=True)


class FakeRunner:
    def __init__(self, kind: str, rules: Sequence[Any], log: list[str]) -> None:
        self.name = kind
        self.ids = ",".join(r.id for r in rules)
        self._log = log

    def start(self) -> None:
        self._log.append(f"start {self.ids}")

    def stop(self, timeout: float) -> None:
        self._log.append(f"stop {self.ids}")

    def health(self) -> TriggerHealth:
        return TriggerHealth(self.name, True, 0, 0)


@pytest.fixture
def quiet_logs() -> Iterator[io.StringIO]:
    logger = logging.getLogger(logs.ROOT)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    stream = io.StringIO()
    logs.configure("info", "text", stream=stream)
    yield stream
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _daemon(tmp: Path, events: list[str]) -> Daemon:
    def factory(kind: str, rules: Sequence[Any], dispatch: Dispatch, on_error: OnError) -> Any:
        return FakeRunner(kind, rules, events)

    config = DaemonConfig(paths=(str(tmp / "rules"),), sink="stdout",
                          state_dir=str(tmp / "state"), grace=1)
    return Daemon(config, dict(os.environ), runner_factory=factory)


def test_reload_restarts_only_changed_units(tmp_path: Path, quiet_logs: io.StringIO) -> None:
    path = _write(tmp_path, RULES)
    events: list[str] = []
    daemon = _daemon(tmp_path, events)
    daemon.start()
    try:
        assert sorted(events) == ["start f1,f2", "start s1", "start s2"]
        events.clear()
        path.write_text(RULES.replace("every: 2h", "every: 3h"))
        assert daemon.reload() is True
        assert events == ["stop s2", "start s2"]
        events.clear()
        path.write_text(RULES.replace("title: a", "title: '{{ a '"))  # syntax error
        assert daemon.reload() is False
        assert events == []
        assert "reload refused" in quiet_logs.getvalue()
        assert daemon.pipeline is not None and "s1" in daemon.pipeline.ruleset.rules
    finally:
        daemon.shutdown()
    assert sorted(events) == ["stop f1,f2", "stop s1", "stop s2"]


def test_dry_run_prints_what_is_queued_before_the_stop(
    tmp_path: Path, quiet_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run's outbox is temporary (deleted at exit): events queued just before a stop
    (--exit-after, Ctrl-C) are printed within the grace, not dropped with it."""
    _write(tmp_path, RULES)
    config = DaemonConfig(paths=(str(tmp_path / "rules"),), sink="stdout", dry_run=True,
                          grace=20)
    daemon = Daemon(config, dict(os.environ), runner_factory=lambda *a: FakeRunner(
        a[0], a[1], []))
    daemon.start()
    try:
        assert daemon.outbox is not None
        daemon.outbox.enqueue([("m", b'{"title": "e%d", "text": "x"}' % i) for i in range(300)])
    finally:
        daemon.shutdown()
    printed = capsys.readouterr().out.splitlines()
    # the outbox keeps the exact bytes that are sent: printed as queued, not re-encoded
    assert sorted(printed) == sorted(f'{{"title": "e{i}", "text": "x"}}' for i in range(300))


def test_start_refuses_invalid_rules_with_every_problem(tmp_path: Path) -> None:
    _write(tmp_path, RULES.replace("title: a", "title: '{{ a '").replace("every: 2h", "every: x"))
    daemon = _daemon(tmp_path, [])
    with pytest.raises(InvalidError) as caught:
        daemon.start()
    daemon.shutdown()
    assert len([p for p in caught.value.problems if p.is_error]) >= 2


def test_stdin_lines_stop_promptly_and_keep_unread_bytes() -> None:
    read_fd, write_fd = os.pipe()
    try:
        source = StdinLines(read_fd)
        first = source.handle()
        os.write(write_fd, b'{"a": 1}\n{"b": 2}\n{"c"')
        assert first.readline() == b'{"a": 1}\n'
        got: list[bytes] = []
        took_one = threading.Event()

        def read_two() -> None:
            got.append(first.readline())
            took_one.set()
            got.append(first.readline())  # nothing more to read: waits until stopped

        waiter = threading.Thread(target=read_two)
        waiter.start()
        # Stop only once the buffered line was taken (a stop before it would rightly end
        # the first readline too); the pause lets the second one block in its wait.
        assert took_one.wait(10)
        time.sleep(0.2)
        first.stop()
        waiter.join(2)
        assert not waiter.is_alive()
        assert got == [b'{"b": 2}\n', b""]  # stopped while waiting: b"" (no hang)
        second = source.handle()
        os.write(write_fd, b': 3}\n')
        assert second.readline() == b'{"c": 3}\n'  # the partial line was kept
        os.close(write_fd)
        write_fd = -1
        assert second.readline() == b""  # end of input
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
