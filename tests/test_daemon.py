"""`emitter run` as a real subprocess against the loopback intake: schedule, file tail (with
rotation and truncation), webhook auth and limits, throttle, reload, restart, SIGTERM."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emitter.delivery.outbox import Outbox
from tests.intake import (
    INTAKE_KEY,
    FakeIntake,
    Fault,
    intake_fixture,  # noqa: F401
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


class Daemon:
    """`python -m emitter run ...` with JSON logs collected from stderr."""

    def __init__(self, args: list[str], intake: FakeIntake | None, tmp: Path,
                 env: dict[str, str] | None = None, stdin: bool = False) -> None:
        full_env = dict(os.environ)
        full_env.update({"HOME": str(tmp), "PYTHONUNBUFFERED": "1"})
        if intake is not None:
            full_env.update({"DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY})
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emitter", "run", *args, "--log-format", "json",
             "--log-level", "debug"],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=str(tmp),
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                self.raw.append(text)
                with contextlib.suppress(ValueError):
                    self.lines.append(json.loads(text))
                self._cv.notify_all()

    def wait_log(self, timeout: float = 15, **fields: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for line in self.lines:
                if all(line.get(k) == v for k, v in fields.items()):
                    return line
            return None

        with self._cv:
            if not self._cv.wait_for(lambda: found() is not None or self.proc.poll() is not None,
                                     timeout):
                raise AssertionError(f"no log line with {fields}; got:\n" + "\n".join(self.raw))
            line = found()
            if line is None:
                raise AssertionError(f"daemon exited ({self.proc.poll()}):\n" + "\n".join(self.raw))
            return line

    def count_log(self, **fields: Any) -> int:
        with self._cv:
            return sum(all(line.get(k) == v for k, v in fields.items()) for line in self.lines)

    def started(self) -> Daemon:
        self.wait_log(msg="started")
        return self

    def send_stdin(self, *objs: Any) -> None:
        assert self.proc.stdin is not None
        for obj in objs:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
        return code


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.stop()
        else:
            d.stop(1)


def rules_file(tmp: Path, body: str, name: str = "rules.yaml") -> Path:
    folder = tmp / "rules"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("version: 1\nrules:\n" + body)
    return path


def start(daemons: list[Daemon], tmp: Path, intake: FakeIntake | None, *extra: str,
          env: dict[str, str] | None = None, stdin: bool = False) -> Daemon:
    d = Daemon([str(tmp / "rules"), "--state-dir", str(tmp / "state"), "--grace", "3", *extra],
               intake, tmp, env=env, stdin=stdin)
    daemons.append(d)
    return d.started()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def titles(intake: FakeIntake) -> list[str]:
    return [e["title"] for e in intake.events]


# ---- schedule ------------------------------------------------------------------------------

def test_schedule_fires_on_time(tmp_path: Path, intake: FakeIntake,
                                daemons: list[Daemon]) -> None:
    rules_file(tmp_path, """\
  - id: tick
    trigger: {type: schedule, every: 1s}
    event:
      title: "tick {{ scheduled_timestamp | int }}"
      text: "at {{ scheduled_time }}"
""")
    start(daemons, tmp_path, intake)
    received = intake.wait_for_events(3, timeout=15)
    offset = time.time() - time.monotonic()  # Received.time is monotonic
    slots = []
    for rec in received[:3]:
        slot = int(rec.json["title"].split()[1])
        slots.append(slot)
        lateness = rec.time + offset - slot
        assert -0.5 < lateness < 2.5, (slot, lateness)
    assert slots == sorted(slots) and len(set(slots)) == 3
    assert all(b - a >= 1 for a, b in zip(slots, slots[1:]))
    assert daemons[0].stop() == 0


# ---- file tail -----------------------------------------------------------------------------

FILE_RULE = """\
  - id: errors
    trigger:
      type: file
      path: {path}
      match: 'ERROR (?P<service>\\w+): (?P<msg>.*)'
    event:
      title: "{{{{ service }}}}: {{{{ msg }}}}"
      text: "line {{{{ line_number }}}} of {{{{ path }}}}"
      tags: ["service:{{{{ service }}}}"]
"""


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_log_lines_across_rotation_and_truncation(tmp_path: Path, intake: FakeIntake,
                                                  daemons: list[Daemon]) -> None:
    log = tmp_path / "app.log"
    log.write_text("ERROR old: before the start is not sent\n")
    rules_file(tmp_path, FILE_RULE.format(path=log))
    d = start(daemons, tmp_path, intake)
    # No pause: "started" means the end of the file was taken as the start position, so
    # lines written right after it are read however late the trigger's thread first polls.
    append(log, "INFO fine\nERROR db: disk full\nERROR api: timeout\n")
    intake.wait_for_events(2, timeout=20)
    first = next(e for e in intake.events if e["title"] == "db: disk full")
    assert first["tags"] == ["service:db"]
    assert first["text"] == f"line 3 of {log}"

    append(log, "ERROR db: written just before the rename\n")
    log.rename(tmp_path / "app.log.1")  # rename rotation
    new_first = "ERROR web: first line of the new file\n"
    log.write_text(new_first)
    intake.wait_for_events(4, timeout=20)

    # Truncation (copytruncate), then a line shorter than what was read before it: the size
    # is below the position whether or not a poll saw the empty file in between, so this
    # needs no pause (a longer line before any poll is the case no tailer can tell).
    after = "ERROR cache: after truncation\n"
    assert len(after) < len(new_first)
    log.write_text("")
    append(log, after)
    intake.wait_for_events(5, timeout=20)
    assert d.stop() == 0  # the log is read to its end: "queued" lines may trail delivery
    assert sorted(titles(intake)) == sorted([
        "db: disk full", "api: timeout", "db: written just before the rename",
        "web: first line of the new file", "cache: after truncation",
    ])
    assert d.count_log(msg="event", rule="errors", trigger="file", outcome="queued") == 5


def test_restart_does_not_refire_old_lines(tmp_path: Path, intake: FakeIntake,
                                           daemons: list[Daemon]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    rules_file(tmp_path, FILE_RULE.format(path=log))
    d = start(daemons, tmp_path, intake)
    append(log, "ERROR a: one\nERROR b: two\n")
    intake.wait_for_events(2, timeout=20)
    assert d.stop() == 0
    append(log, "ERROR c: written while stopped\n")
    again = start(daemons, tmp_path, intake)
    intake.wait_for_events(3, timeout=20)
    # Re-fired lines would be queued by the same first read as "c": after a stop (which
    # reads the log to its end) they show as queued, delivered or still in the outbox.
    assert again.stop() == 0
    assert again.count_log(msg="event", rule="errors", trigger="file", outcome="queued") == 1
    # four sender workers: arrival order is not firing order
    assert sorted(titles(intake)) == ["a: one", "b: two", "c: written while stopped"]
    with Outbox.in_dir(tmp_path / "state") as outbox:
        assert outbox.status().pending + outbox.status().inflight == 0


# ---- webhook -------------------------------------------------------------------------------

def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except (ConnectionResetError, BrokenPipeError, urllib.error.URLError) as exc:
        # a server may answer 413 and close before the client finished sending
        raise AssertionError(f"connection failed: {exc}") from exc


def _status_of_oversized_post(port: int, path: str, length: int) -> int:
    """Announce a big body, send only its start: the server must answer 413 from the
    headers alone (a client sending it all would hit a closed connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode() + b'{"alerts": [')
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_webhook_signature_and_size(tmp_path: Path, intake: FakeIntake,
                                    daemons: list[Daemon]) -> None:
    rules_file(tmp_path, """\
  - id: am
    trigger: {type: webhook, path: /hooks/am, hmac_secret_env: HOOK_SECRET}
    params:
      payload: {type: object, example: {status: firing, alerts: [{name: A}]}}
    foreach: payload.alerts
    event:
      title: "{{ item.name }}"
      text: "{{ payload.status }}"
""")
    port = free_port()
    secret = "s3cr3t-hmac-key-for-tests"
    start(daemons, tmp_path, intake, "--listen", f"127.0.0.1:{port}",
          env={"HOOK_SECRET": secret})
    url = f"http://127.0.0.1:{port}/hooks/am"
    body = json.dumps({"status": "firing", "alerts": [{"name": "A"}, {"name": "B"}]}).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    ctype = {"Content-Type": "application/json"}
    assert _post(url, body, {**ctype, "X-Hub-Signature-256": sig}) == 202
    intake.wait_for_events(2, timeout=10)
    assert sorted(titles(intake)) == ["A", "B"]

    bad = "sha256=" + "0" * 64
    assert _post(url, body, {**ctype, "X-Hub-Signature-256": bad}) == 401
    assert _post(url, body, ctype) == 401
    assert _status_of_oversized_post(port, "/hooks/am", 2 << 20) == 413
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    assert 'emitter_events_queued_total{rule="am"} 2.0' in metrics
    sent = daemons[0].wait_log(msg="event", rule="am", trigger="sender", outcome="sent")
    assert sent["event_id"].isdigit() and sent["status"] == 202
    time.sleep(1.0)
    assert len(intake.events) == 2  # the refused requests made no event
    assert daemons[0].stop() == 0


# ---- throttle ------------------------------------------------------------------------------

def test_throttle_first_and_summary(tmp_path: Path, intake: FakeIntake,
                                    daemons: list[Daemon]) -> None:
    rules_file(tmp_path, """\
  - id: first
    trigger: {type: stdin}
    params: {payload: {type: object, example: {svc: a, n: 1}}}
    throttle: {key: "{{ payload.svc }}", window: 60s, mode: first}
    event: {title: "first {{ payload.svc }} {{ payload.n }}", text: x}
  - id: summ
    trigger: {type: stdin}
    params: {payload: {type: object, example: {svc: a, n: 1}}}
    throttle: {key: "{{ payload.svc }}", window: 2s, mode: summary}
    event:
      title: "summ {{ payload.svc }} {{ payload.n }}"
      text: x
      tags: ["svc:{{ payload.svc }}"]
""")
    d = start(daemons, tmp_path, intake, "--stdin", stdin=True)
    d.send_stdin(*({"svc": "db", "n": n} for n in range(5)), {"svc": "web", "n": 0})
    intake.wait_for_events(4, timeout=10)  # first db, first web, summ db, summ web
    intake.wait_for_events(5, timeout=10)  # + the db summary when its 2 s window ends
    time.sleep(1.0)
    got = titles(intake)
    assert sorted(t for t in got if t.startswith("first")) == ["first db 0", "first web 0"]
    assert sorted(t for t in got if t.startswith("summ")) == ["summ db 0", "summ web 0"]
    summaries = [e for e in intake.events if "throttle:summary" in e.get("tags", [])]
    assert len(summaries) == 1
    assert summaries[0]["title"] == "4 more in 2s: summ db 0"
    assert "summ db 4" in summaries[0]["text"]
    assert d.stop() == 0  # its log is then read to the end
    assert d.count_log(msg="event", rule="first", outcome="throttled") == 4


# ---- reload --------------------------------------------------------------------------------

PAYLOAD_N = "    params: {payload: {type: object, example: {n: 1}}}\n"


def test_sighup_with_a_broken_file_keeps_the_old_rules(tmp_path: Path, intake: FakeIntake,
                                                       daemons: list[Daemon]) -> None:
    path = rules_file(tmp_path, """\
  - id: echo
    trigger: {type: stdin}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "v1 {{ payload.n }}", text: x}
""")
    d = start(daemons, tmp_path, intake, "--stdin", stdin=True)
    path.write_text("version: 1\nrules:\n  - id: echo\n    trigger: {type: stdin}\n" + PAYLOAD_N
                    + "    event: {title: '{{ payload.n ', text: x}\n")  # template syntax error
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(msg="reload refused: the rule files have errors; the old rules keep running")
    d.send_stdin({"n": 1})
    intake.wait_for_events(1, timeout=10)
    assert titles(intake) == ["v1 1"]

    path.write_text("version: 1\nrules:\n  - id: echo\n    trigger: {type: stdin}\n" + PAYLOAD_N
                    + "    event: {title: 'v2 {{ payload.n }}', text: x}\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(msg="reloaded")
    d.send_stdin({"n": 2})
    intake.wait_for_events(2, timeout=10)
    assert sorted(titles(intake)) == ["v1 1", "v2 2"]
    assert d.stop() == 0


def test_reload_keeps_unchanged_units_running(tmp_path: Path, intake: FakeIntake,
                                              daemons: list[Daemon]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    rules_file(tmp_path, FILE_RULE.format(path=log))
    path = rules_file(tmp_path, "  - id: tick\n    trigger: {type: schedule, every: 1h}\n"
                      "    event: {title: t, text: x}\n", name="more.yaml")
    d = start(daemons, tmp_path, intake, "--watch", "--watch-interval", "0.3")
    path.write_text("version: 1\nrules:\n  - id: tick\n    trigger: {type: schedule, every: 2h}\n"
                    "    event: {title: t, text: x}\n")
    d.wait_log(msg="reloaded")
    assert d.count_log(msg="trigger started", unit="file/" + str(log)) == 1
    assert d.count_log(msg="trigger started", unit="schedule/tick") == 2
    assert d.stop() == 0


# ---- startup and shutdown ------------------------------------------------------------------

def test_invalid_rules_refuse_to_start_listing_every_error(tmp_path: Path) -> None:
    rules_file(tmp_path, """\
  - id: a
    trigger: {type: schedule, every: 1s}
    event: {title: "{{ nope }}", text: x}
  - id: b
    trigger: {type: bogus}
    event: {title: t, text: x}
""")
    env = {**os.environ, "DD_API_KEY": "k", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(tmp_path / "rules"),
                           "--state-dir", str(tmp_path / "s")], capture_output=True, env=env,
                          timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "rules.yaml:5" in err and "nope" in err
    assert "not starting" in err


def test_no_api_key_exits_6_with_one_line(tmp_path: Path) -> None:
    rules_file(tmp_path, "  - id: a\n    trigger: {type: manual}\n    event: {title: t, text: x}\n")
    env = {k: v for k, v in os.environ.items() if k != "DD_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(tmp_path / "rules")],
                          capture_output=True, env=env, timeout=30)
    assert proc.returncode == 6
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "DD_API_KEY" in lines[0] and "--dry-run" in lines[0]


def test_sigterm_exits_0_in_grace_keeping_pending_events(tmp_path: Path, intake: FakeIntake,
                                                         daemons: list[Daemon]) -> None:
    rules_file(tmp_path, """\
  - id: echo
    trigger: {type: stdin}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "e {{ payload.n }}", text: x}
""")
    intake.set_mode(Fault.slow(30))  # every request hangs: nothing gets delivered
    d = start(daemons, tmp_path, intake, "--stdin", stdin=True)
    d.send_stdin(*({"n": n} for n in range(20)))
    for n in range(20):
        d.wait_log(msg="event", rule="echo", outcome="queued", title=f"e {n}")
    began = time.monotonic()
    assert d.stop(timeout=15) == 0
    took = time.monotonic() - began
    assert took < 3 + 3, took  # --grace 3, plus process teardown
    outbox = Outbox.in_dir(tmp_path / "state")
    try:
        status = outbox.status()
        assert status.pending + status.inflight == 20
    finally:
        outbox.close()


def test_dry_run_prints_events_and_leaves_no_state(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("ERROR db: disk full\n")
    rules_file(tmp_path, FILE_RULE.format(path=log).replace(
        "match:", "from_beginning: true\n      match:"))
    env = {k: v for k, v in os.environ.items() if k != "DD_API_KEY"}
    env["HOME"] = str(tmp_path)
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(tmp_path / "rules"),
                           "--dry-run", "--exit-after", "2"], capture_output=True, env=env,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert out == [{"title": "db: disk full", "text": f"line 1 of {log}",
                    "tags": ["service:db"]}]
    assert not (tmp_path / "xdg" / "emitter").exists()


def test_readme_demo_fires_within_its_time(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DD_API_KEY"}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", "rules/", "--dry-run",
                           "--exit-after", "3", "--listen", f"127.0.0.1:{free_port()}"],
                          capture_output=True, env=env, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    events = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(events) >= 3
    assert any(e["title"].startswith("payments:") for e in events)


def test_stdin_pipeline_exits_when_input_ends(tmp_path: Path, intake: FakeIntake) -> None:
    rules_file(tmp_path, """\
  - id: echo
    trigger: {type: stdin}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "e {{ payload.n }}", text: x}
""")
    env = {**os.environ, "DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY,
           "HOME": str(tmp_path)}
    lines = "".join(json.dumps({"n": n}) + "\n" for n in range(3)) + "not json\n"
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(tmp_path / "rules"),
                           "--stdin", "--state-dir", str(tmp_path / "s")],
                          input=lines.encode(), capture_output=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()
    # delivered before exiting, and the bad line was reported, not fatal
    assert sorted(titles(intake)) == ["e 0", "e 1", "e 2"]
    assert "stdin line 4: not JSON" in proc.stderr.decode()
