"""The file trigger's wake-ups (emitter.triggers.watch): inotify reads a line as it is
written, rotation included, with a poll interval too long to have found it; without inotify
the poll still does."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from emitter.state.store import StateStore
from emitter.triggers.base import Firing
from emitter.triggers.filetail import FileTailRunner
from emitter.triggers.watch import FileWatch
from tests.test_trigger_file import rule

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify: Linux")


class Tail:
    """A started FileTailRunner whose dispatch signals each firing."""

    def __init__(self, tmp: Path, log: Path, poll: float) -> None:
        self.fired: list[Firing] = []
        self.cond = threading.Condition()
        self.store = StateStore(tmp / "state.sqlite3")
        self.runner = FileTailRunner([rule("r", log)], self.dispatch, lambda r, m: None,
                                     self.store, poll_interval=poll)
        self.runner.start()

    def dispatch(self, firings: list[Firing]) -> None:
        with self.cond:
            self.fired.extend(firings)
            self.cond.notify_all()

    def wait_lines(self, n: int) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.fired) >= n, 30), self.fired
            return [f.variables["line"] for f in self.fired]

    def close(self) -> None:
        self.runner.stop(5)
        self.store.close()


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


@linux_only
def test_an_appended_line_is_read_on_its_notification_not_the_poll(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("old line\n")
    tail = Tail(tmp_path, log, poll=3600)  # a poll would not come within the test
    try:
        _append(log, "ERROR E1 now\n")
        assert tail.wait_lines(1) == ["ERROR E1 now"]
        log.rename(tmp_path / "app.log.1")  # rotation: the new file is seen by its create
        _append(tmp_path / "app.log.1", "ERROR E2 late in the old file\n")
        log.write_text("ERROR E3 in the new file\n")
        assert tail.wait_lines(3) == ["ERROR E1 now", "ERROR E2 late in the old file",
                                      "ERROR E3 in the new file"]
    finally:
        tail.close()


@linux_only
def test_a_file_created_after_start_is_read_on_its_notification(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    tail = Tail(tmp_path, log, poll=3600)
    try:
        log.write_text("ERROR E1 first\n")
        assert tail.wait_lines(1) == ["ERROR E1 first"]
    finally:
        tail.close()


def test_without_inotify_the_poll_reads_the_line(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Stands for a platform without inotify: the watch then only times out.
    monkeypatch.setattr("emitter.triggers.watch._libc", lambda: None)
    log = tmp_path / "app.log"
    log.write_text("")
    tail = Tail(tmp_path, log, poll=0.05)
    try:
        assert tail.runner._watch is not None and not tail.runner._watch.notified
        _append(log, "ERROR E1 polled\n")
        assert tail.wait_lines(1) == ["ERROR E1 polled"]
    finally:
        tail.close()


@linux_only
def test_watch_wakes_on_a_write_in_the_directory_and_times_out_when_quiet(
        tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("")
    watch = FileWatch([str(log)])
    try:
        assert watch.notified
        assert watch.wait(0.01) is False  # nothing happened
        _append(log, "x\n")
        assert watch.wait(30) is True
        assert watch.wait(0.01) is False  # the notification was consumed
        watch.wake()
        assert watch.wait(30) is True  # stop() ends a wait at once
    finally:
        watch.close()


@linux_only
def test_watch_follows_a_symlink_to_another_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "real" / "app.log"
    target.write_text("")
    link = tmp_path / "links" / "app.log"
    link.symlink_to(target)
    watch = FileWatch([str(link)])
    try:
        _append(target, "x\n")
        assert watch.wait(30) is True
    finally:
        watch.close()
