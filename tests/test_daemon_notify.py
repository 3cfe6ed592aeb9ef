"""`emitter run` under systemd's notify protocol (Type=notify), with a real Unix datagram
socket standing in for systemd: READY=1 with a STATUS= once the triggers run, RELOADING=1 then
READY=1 around every reload (accepted or refused), WATCHDOG=1 while the main loop runs,
STOPPING=1 on SIGTERM; a command trigger's child does not inherit NOTIFY_SOCKET/WATCHDOG_*."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PRINT_ENV = [sys.executable, "-c", "import os; print(' '.join(sorted(os.environ)))"]
RULES = f"""version: 1
rules:
  - id: envdump
    trigger: {{type: command, command: {PRINT_ENV!r}, every: 1h}}
    event: {{title: env, text: "{{{{ stdout }}}}"}}
  - id: tick
    trigger: {{type: schedule, every: 1h}}
    event: {{title: t, text: x}}
"""


class Systemd:
    """The receiving end of NOTIFY_SOCKET: every datagram, as its list of fields."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages: list[list[str]] = []
        self._cv = threading.Condition()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            with self._cv:
                self.messages.append(data.decode().split("\n"))
                self._cv.notify_all()

    def wait_for(self, field: str, after: int = 0, timeout: float = 30) -> int:
        """Index of the first message after `after` holding `field`."""
        def found() -> int | None:
            return next((i for i, m in enumerate(self.messages) if i >= after and field in m),
                        None)

        with self._cv:
            if not self._cv.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no {field} after #{after}; got {self.messages}")
            index = found()
            assert index is not None
            return index

    def count(self, field: str, after: int = 0) -> int:
        with self._cv:
            return sum(field in m for m in self.messages[after:])

    def wait_until(self, check: Callable[[], bool], timeout: float = 30) -> None:
        with self._cv:
            assert self._cv.wait_for(check, timeout), self.messages

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def systemd() -> Iterator[Systemd]:
    short = tempfile.mkdtemp(prefix="emn-")  # a socket path must fit in 108 bytes
    receiver = Systemd(os.path.join(short, "notify"))
    yield receiver
    receiver.close()
    shutil.rmtree(short, ignore_errors=True)


def test_emitter_run_speaks_the_notify_protocol(tmp_path: Path, systemd: Systemd) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {**os.environ, "HOME": str(tmp_path), "NOTIFY_SOCKET": systemd.path,
           "WATCHDOG_USEC": "400000"}  # pet every 0.2 s; WATCHDOG_PID unset: it is ours
    env.pop("WATCHDOG_PID", None)
    log = (tmp_path / "stderr.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "emitter", "run", str(rules), "--dry-run",
                             "--listen", "127.0.0.1:0", "--grace", "5"],
                            stdout=subprocess.PIPE, stderr=log, env=env, cwd=str(tmp_path))
    try:
        ready = systemd.wait_for("READY=1")
        status = next(f for f in systemd.messages[ready] if f.startswith("STATUS="))
        assert status.startswith("STATUS=2 rule(s), 2 trigger(s), listening on 127.0.0.1:")
        systemd.wait_until(lambda: systemd.count("WATCHDOG=1", ready) >= 3)

        proc.send_signal(signal.SIGHUP)  # an accepted reload
        reloading = systemd.wait_for("RELOADING=1", ready + 1)
        assert any(f.startswith("MONOTONIC_USEC=") for f in systemd.messages[reloading])
        again = systemd.wait_for("READY=1", reloading + 1)

        rules.write_text("version: 1\nrules: [{id: broken}]\n")  # a refused one
        proc.send_signal(signal.SIGHUP)
        refused = systemd.wait_for("RELOADING=1", again + 1)
        after = systemd.wait_for("READY=1", refused + 1)
        systemd.wait_until(lambda: systemd.count("WATCHDOG=1", after) >= 2)  # still petting

        proc.send_signal(signal.SIGTERM)
        systemd.wait_for("STOPPING=1", after + 1)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    stderr = (tmp_path / "stderr.log").read_text()
    assert proc.returncode == 0, stderr
    assert "reload refused" in stderr
    dumps = [line for line in out.decode().splitlines() if "PATH" in line]
    assert dumps, out.decode() + stderr
    assert "HOME" in dumps[0] and "NOTIFY_SOCKET" not in dumps[0]
    assert "WATCHDOG_USEC" not in dumps[0]


def test_without_a_watchdog_nothing_pets(tmp_path: Path, systemd: Systemd) -> None:
    """WATCHDOG_USEC unset: READY and STOPPING only (systemd enables the watchdog, not us)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {**os.environ, "HOME": str(tmp_path), "NOTIFY_SOCKET": systemd.path}
    env.pop("WATCHDOG_USEC", None)
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(rules), "--dry-run",
                           "--exit-after", "1.5"],
                          capture_output=True, env=env, cwd=str(tmp_path), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    systemd.wait_for("STOPPING=1")
    assert systemd.count("READY=1") == 1 and systemd.count("WATCHDOG=1") == 0
    status = [f for m in systemd.messages for f in m if f.startswith("STATUS=")]
    assert status == ["STATUS=2 rule(s), 2 trigger(s), no port open"]
