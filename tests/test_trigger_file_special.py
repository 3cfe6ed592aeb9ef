"""A file trigger's path naming a FIFO or /dev/zero (issue 9 item 3): `emitter run` hung in
the open of the FIFO (only SIGKILL stopped it) or spun reading zeros. Now such a path is
refused with a clear error for its rule, retried with back-off, and the daemon keeps
running its other triggers and stops promptly on SIGTERM."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.problems import Location
from emitter.rules.model import FileTrigger, Rule
from emitter.state.store import StateStore
from emitter.triggers.filetail import FileTailRunner, NotRegularFile, open_regular
from tests.intake import FakeIntake, intake_fixture  # noqa: F401
from tests.test_daemon import FILE_RULE, Daemon, append, rules_file, start

pytestmark = pytest.mark.slow


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop(20 if d.proc.poll() is None else 1)

SPECIAL_RULES = """\
  - id: from-fifo
    trigger: {{type: file, path: {fifo}, match: 'x'}}
    event: {{title: fifo, text: x}}
  - id: from-zero
    trigger: {{type: file, path: /dev/zero, match: 'x'}}
    event: {{title: zero, text: x}}
"""


def wait_raw(d: Daemon, *words: str, timeout: float = 30) -> str:
    def found() -> str | None:
        return next((r for r in d.raw if all(w in r for w in words)), None)

    with d._cv:
        d._cv.wait_for(lambda: found() is not None or d.proc.poll() is not None, timeout)
        line = found()
    assert line is not None, f"no log line with {words}:\n" + "\n".join(d.raw)
    return line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_fifo_and_dev_zero_are_refused_and_the_daemon_keeps_going(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon]) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    log = tmp_path / "app.log"
    log.write_text("")
    rules_file(tmp_path, SPECIAL_RULES.format(fifo=fifo) + FILE_RULE.format(path=log))
    d = start(daemons, tmp_path, intake)  # it used to hang here, in the FIFO's open
    assert "a FIFO, not a regular file" in wait_raw(d, "from-fifo", str(fifo))
    assert "a character device, not a regular file" in wait_raw(d, "from-zero", "/dev/zero")
    append(log, "ERROR db: the other file still works\n")
    intake.wait_for_events(1, timeout=30)
    assert [e["title"] for e in intake.events] == ["db: the other file still works"]
    assert d.stop(timeout=30) == 0  # SIGTERM stops it (a hung daemon is killed: code -9)


def test_the_runner_reports_and_backs_off_then_follows_the_file_once_regular(
        tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    os.mkfifo(path)
    errors: list[tuple[str | None, str]] = []
    fired: list[object] = []
    now = [1000.0]
    rule = Rule(id="r", location=Location("r.yaml", 1, 1), event={},
                trigger=FileTrigger(path=str(path), match=re.compile("ERROR")))
    with StateStore(":memory:") as store:
        runner = FileTailRunner([rule], fired.extend, lambda r, m: errors.append((r, m)),
                                store, clock=lambda: now[0])
        try:
            runner.open_all()
            assert errors == [("r", f"cannot read {path}: a FIFO, not a regular file: a file "
                                    "trigger follows regular files only")]
            runner.poll_once()
            assert len(errors) == 1  # backing off: not tried again yet
            path.unlink()
            path.write_text("ERROR one\n")
            now[0] += 60
            runner.poll_once()
            assert len(fired) == 1  # the file that replaced it is new: read whole
        finally:
            runner.stop(1)


def test_open_regular_opens_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _try(str(fifo), outcome), daemon=True)
    worker.start()
    worker.join(30)  # a blocking open would wait for a writer forever
    assert not worker.is_alive() and isinstance(outcome[0], NotRegularFile)


def _try(path: str, outcome: list[BaseException]) -> None:
    try:
        open_regular(path)
    except OSError as exc:
        outcome.append(exc)
