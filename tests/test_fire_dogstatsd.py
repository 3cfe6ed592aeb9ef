"""`emitter fire --sink dogstatsd` and `emitter exec --sink dogstatsd`: the local Agent path,
no API key. Each run is a real subprocess whose datagram is caught on a real socket bound here
(UDP, or a Unix datagram socket), addressed the three ways datadogpy reads the environment;
the datagram must be byte-identical to what datadogpy's DogStatsd().event() sends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.cli import main
from tests.test_dogstatsd import datadogpy_datagram

RULES = """\
version: 1
rules:
  - id: deployed
    trigger: {type: manual}
    params:
      service: {type: string, example: payments}
      at: {type: integer, example: 1700000000}
    event:
      title: "Deployed {{ service }} ✓"
      text: "line one\\nline two — é"
      date_happened: "{{ at }}"
      host: web-1
      aggregation_key: "deploy-{{ service }}"
      priority: low
      source_type_name: my_apps
      alert_type: success
      tags: ["service:{{ service }}", "team:plat|form"]
  - id: job
    trigger: {type: manual}
    params:
      job: {type: string, example: backup}
      exit_code: {type: integer, example: 0}
    event:
      title: "{{ job }} ended with {{ exit_code }}"
      text: "ran `{{ command }}`"
      alert_type: "{{ 'success' if exit_code == 0 else 'error' }}"
      tags: ["job:{{ job }}"]
"""
AT = int(time.time()) - 3600  # fixed for the test run: the dry run renders the same event
ARGS = {
    "fire": ["--rule", "deployed", "--var", "service=payments", "--var", f"at={AT}"],
    "exec": ["--rule", "job", "--var", "job=backup"],
}
JOB = ["--", "true"]  # what `exec` runs (after its options)


@pytest.fixture
def rules(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return str(path)


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(30)
    return sock


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket's path is limited to ~104 bytes."""
    with tempfile.TemporaryDirectory(prefix="dsd") as name:
        yield Path(name)


def _environ(**extra: str) -> dict[str, str]:
    drop = ("DD_API_KEY", "DATADOG_HOST", "DD_AGENT_HOST", "DD_DOGSTATSD_PORT",
            "DD_DOGSTATSD_URL", "EMITTER_STATE_DIR")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _emitter(command: str, rules: str, extra: list[str],
             env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "emitter", command, rules, *ARGS[command], *extra]
    if command == "exec":
        argv += JOB
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)


def _rendered(command: str, rules: str) -> dict[str, object]:
    """The event as the command renders it (--dry-run prints its JSON body)."""
    done = _emitter(command, rules, ["--dry-run"], _environ())
    assert done.returncode == 0, done.stderr
    event = json.loads(done.stdout)
    assert isinstance(event, dict)
    return event


@pytest.mark.parametrize("command", ["fire", "exec"])
@pytest.mark.parametrize("form", ["agent-host-port", "udp-url", "unix-url"])
def test_the_datagram_is_datadogpys(command: str, form: str, rules: str,
                                    short_dir: Path) -> None:
    reference, agent, other = _udp(), None, _udp()
    try:
        if form == "unix-url":
            agent = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            agent.bind(str(short_dir / "dsd.sock"))
            agent.settimeout(30)
            env = _environ(DD_DOGSTATSD_URL=f"unix://{short_dir / 'dsd.sock'}",
                           DD_AGENT_HOST="127.0.0.1",
                           DD_DOGSTATSD_PORT=str(other.getsockname()[1]))
        else:
            agent = _udp()
            port = str(agent.getsockname()[1])
            env = (_environ(DD_AGENT_HOST="127.0.0.1", DD_DOGSTATSD_PORT=port)
                   if form == "agent-host-port" else
                   _environ(DD_DOGSTATSD_URL=f"udp://127.0.0.1:{port}",
                            DD_AGENT_HOST="127.0.0.1",
                            DD_DOGSTATSD_PORT=str(other.getsockname()[1])))
        done = _emitter(command, rules, ["--sink", "dogstatsd"], env)
        assert done.returncode == 0, done.stderr
        assert "DD_API_KEY" not in done.stderr  # none is needed, none was asked for
        ours = agent.recv(65536)
        expected = datadogpy_datagram(reference, _rendered(command, rules))
        assert ours == expected
        assert f"dogstatsd: {len(ours)} bytes to " in done.stderr
        other.setblocking(False)
        with pytest.raises(BlockingIOError):  # DD_DOGSTATSD_URL won over the host and port
            other.recv(65536)
    finally:
        for sock in (reference, agent, other):
            if sock is not None:
                sock.close()


def test_a_bad_dogstatsd_url_is_named_before_anything_is_rendered(
        rules: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_DOGSTATSD_URL", "tcp://127.0.0.1:8125")
    code = main(["fire", rules, *ARGS["fire"], "--sink", "dogstatsd"])
    err = capsys.readouterr().err
    assert code == 6
    assert "DD_DOGSTATSD_URL 'tcp://127.0.0.1:8125' is not host:port" in err
    assert "Traceback" not in err


def test_statsd_address_option_wins_over_the_environment(
        rules: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    agent, other = _udp(), _udp()
    try:
        monkeypatch.setenv("DD_DOGSTATSD_URL", f"udp://127.0.0.1:{other.getsockname()[1]}")
        code = main(["fire", rules, *ARGS["fire"], "--sink", "dogstatsd", "--quiet",
                     "--statsd-address", f"127.0.0.1:{agent.getsockname()[1]}"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert out == "" and err == ""  # no id to print; --quiet says nothing more
        assert agent.recv(65536).startswith(b"_e{")
    finally:
        agent.close()
        other.close()


def test_without_a_key_the_message_points_at_the_agent(
        rules: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fire", rules, *ARGS["fire"]])
    err = capsys.readouterr().err
    assert code == 6 and "DD_API_KEY is not set" in err and "--sink dogstatsd" in err


def test_fire_exec_run_and_drain_offer_the_same_sinks() -> None:
    """One list of sinks (the registry's), one spelling of their options, in every command."""
    import argparse

    from emitter.cli import build_parser
    from emitter.sinks.registry import SINK_NAMES

    def sink_options(*path: str) -> dict[str, object]:
        parser: argparse.ArgumentParser = build_parser()
        for name in path:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[name]
        return {a.dest: a.choices for a in parser._actions
                if a.dest in ("sink", "sink_path", "statsd_address")}

    seen = [sink_options("fire"), sink_options("exec"), sink_options("run"),
            sink_options("outbox", "drain")]
    assert all(s == seen[0] for s in seen), seen
    assert tuple(seen[0]["sink"]) == SINK_NAMES  # type: ignore[arg-type]
