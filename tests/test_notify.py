"""systemd notify protocol on a real Unix datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from emitter.daemon.notify import Notifier


@pytest.fixture
def systemd(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield str(path), sock
    sock.close()


def _recv(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_reloading_stopping_reach_the_socket(systemd) -> None:
    path, sock = systemd
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.ready("3 triggers running")
    assert _recv(sock) == ["READY=1", "STATUS=3 triggers running"]
    n.reloading()
    fields = _recv(sock)
    assert fields[0] == "RELOADING=1" and fields[1].startswith("MONOTONIC_USEC=")
    assert int(fields[1].split("=")[1]) > 0
    n.stopping()
    assert _recv(sock) == ["STOPPING=1"]
    n.close()


def test_watchdog_is_petted_at_half_the_timeout(systemd) -> None:
    path, sock = systemd
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
                  "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_interval == pytest.approx(0.1)
    n.ready()  # READY=1, then the first pet at once
    assert _drain(sock) == [["READY=1"], ["WATCHDOG=1"]]
    t0 = time.monotonic() + 1.0  # later than the first pet's due time
    n.tick(t0)
    assert _drain(sock) == [["WATCHDOG=1"]]
    n.tick(t0 + 0.05)  # within half the timeout: nothing
    assert _drain(sock) == []
    n.tick(t0 + 0.11)  # past it: a pet
    assert _drain(sock) == [["WATCHDOG=1"]]
    n.close()


def _drain(sock: socket.socket) -> list[list[str]]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode().split("\n"))
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
        sock.settimeout(10)
    return out


def test_watchdog_for_another_pid_is_ignored() -> None:
    n = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000",
                  "WATCHDOG_PID": "1"})
    assert n.watchdog_interval is None


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.send("READY=1") is False
    n.ready()
    n.close()


def test_a_dead_socket_is_logged_once_and_never_raises(tmp_path: Path, caplog) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.send("READY=1") is False
    assert n.send("STATUS=x") is False
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1
    n.close()


def test_abstract_socket_name(tmp_path: Path) -> None:
    name = f"emitter-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(10)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        n.ready()
        assert _recv(sock) == ["READY=1"]
        n.close()
    finally:
        sock.close()
