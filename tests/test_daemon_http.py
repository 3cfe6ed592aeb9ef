"""`emitter run`'s HTTP front as a real subprocess: the same answers on every port, the one
address syntax, DogStatsD settings read once, and the end of --stdin input (issue 8 defect 6,
issue 9 item 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.intake import INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture
from tests.test_daemon import Daemon, free_port, rules_file, start
from tests.test_daemon import daemons as daemons  # noqa: F401 - the `daemons` fixture

pytestmark = pytest.mark.slow

STDIN_RULE = """\
  - id: echo
    trigger: {type: stdin}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "e {{ payload.n }}", text: x}
"""
HOOK_RULE = """\
  - id: hook
    trigger: {type: webhook, path: /hooks/x, token_env: HOOK_TOKEN}
    event: {title: t, text: x}
"""


def get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read()


def test_every_port_gives_the_same_answers(tmp_path: Path, intake: FakeIntake,
                                           daemons: list[Daemon]) -> None:
    rules_file(tmp_path, HOOK_RULE)
    hooks, metrics = free_port(), free_port()
    d = start(daemons, tmp_path, intake, "--listen", f":{hooks}", "--metrics-addr",
              f":{metrics}", env={"HOOK_TOKEN": "tok-tok-tok"})
    # ':PORT' is loopback for both options (it was all interfaces for --listen).
    assert d.wait_log(msg="listening", option="--listen")["addr"] == f"127.0.0.1:{hooks}"
    assert d.wait_log(msg="listening", option="--metrics-addr")["addr"] == f"127.0.0.1:{metrics}"
    health = [get(port, "/healthz") for port in (hooks, metrics)]
    assert health[0][:2] == health[1][:2] == (200, "application/json")
    assert json.loads(health[0][2])["status"] == json.loads(health[1][2])["status"] == "ok"
    for port in (hooks, metrics):
        status, ctype, text = get(port, "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        assert b"# TYPE emitter_events_sent_total counter" in text
        assert get(port, "/nope")[0] == 404
    assert d.stop() == 0


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(20)
    return sock


def _run_stdin(tmp_path: Path, extra: list[str], env: dict[str, str],
               lines: str) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "HOME": str(tmp_path), **env}
    for name in ("DD_DOGSTATSD_URL", "DD_AGENT_HOST", "DD_DOGSTATSD_PORT"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run([sys.executable, "-m", "emitter", "run", str(tmp_path / "rules"),
                           "--stdin", "--state-dir", str(tmp_path / "s"), *extra],
                          input=lines.encode(), capture_output=True, env=full, timeout=120)


@pytest.mark.parametrize("how", ["env", "option", "old-option"])
def test_run_reads_dogstatsd_settings_like_drain(tmp_path: Path, how: str) -> None:
    rules_file(tmp_path, STDIN_RULE)
    with _udp_socket() as agent:
        address = f"127.0.0.1:{agent.getsockname()[1]}"
        extra, env = {"env": ([], {"DD_DOGSTATSD_URL": f"udp://{address}"}),
                      "option": (["--statsd-address", address], {}),
                      "old-option": (["--statsd-addr", address], {})}[how]
        done = _run_stdin(tmp_path, ["--sink", "dogstatsd", *extra], env, '{"n": 7}\n')
        assert done.returncode == 0, done.stderr.decode()
        datagram = agent.recv(9000)
    assert datagram.startswith(b"_e{") and b":e 7|x" in datagram


def test_statsd_addr_is_hidden_from_help() -> None:
    done = subprocess.run([sys.executable, "-m", "emitter", "run", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert "--statsd-address" in done.stdout and "--statsd-addr " not in done.stdout


def test_end_of_stdin_delivers_then_exits_5_saying_what_is_left(
        tmp_path: Path, intake: FakeIntake) -> None:
    rules_file(tmp_path, STDIN_RULE)
    intake.set_mode(Fault.slow(3.0))
    env = {"DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY}
    lines = "".join(json.dumps({"n": n}) + "\n" for n in range(40))
    done = _run_stdin(tmp_path, ["--grace", "1", "--workers", "1", "--log-format", "json"],
                      env, lines)
    err = done.stderr.decode()
    assert done.returncode == 5, err
    found: list[dict[str, Any]] = [json.loads(line) for line in err.splitlines()
                                   if line.startswith("{") and "undelivered" in line]
    assert found, err
    left = found[0]["undelivered"]
    assert 0 < left <= 40 and found[0]["state_dir"] == str((tmp_path / "s").resolve())
    assert f"{left} event(s) not delivered" in err
    intake.set_mode(None)
    # They were kept: the next drain sends them.
    from emitter.delivery.outbox import Outbox

    with Outbox.in_dir(tmp_path / "s") as box:
        status = box.status()
    assert status.pending + status.inflight == left


def test_end_of_stdin_with_everything_delivered_exits_0(tmp_path: Path,
                                                        intake: FakeIntake) -> None:
    rules_file(tmp_path, STDIN_RULE)
    env = {"DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY}
    lines = "".join(json.dumps({"n": n}) + "\n" for n in range(20))
    done = _run_stdin(tmp_path, [], env, lines)
    assert done.returncode == 0, done.stderr.decode()
    assert len(intake.events) == 20
