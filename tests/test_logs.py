"""The log contract: routine per-event lines (queued, sent, throttled) at debug, problems at
warning or above, and a per-rule traffic summary at info; secrets masked in all of them."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.counters import Metrics
from emitter.daemon import logs
from tests.intake import INTAKE_KEY, FakeIntake, intake_fixture  # noqa: F401

SECRET = "abcdef0123456789abcdef0123456789"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    logger = logging.getLogger(logs.ROOT)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_routine_event_lines_are_debug_problems_stay_visible_at_info() -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream=stream)
    logs.log_event("deploy", "file", "queued")
    logs.log_event("deploy", "sender", "sent", level=logging.DEBUG)
    logs.log_event("deploy", "webhook", "invalid", level=logging.WARNING, fields={"path": "$.t"})
    assert [(o["outcome"], o["level"]) for o in _json_lines(stream)] == [("invalid", "warning")]
    logs.configure("debug", "json", stream=stream)
    logs.log_event("deploy", "file", "queued")
    assert _json_lines(stream)[-1]["level"] == "debug"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_summary_says_each_rules_counts_since_the_last_one() -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream=stream)
    metrics, clock = Metrics(), _Clock()
    metrics.inc("old", "sent", 5)  # before the summary started: not reported
    summary = logs.TrafficSummary(metrics.snapshot, every=10, clock=clock)
    metrics.inc("b", "fired", 3)
    metrics.inc("b", "queued", 3)
    metrics.inc("a", "queued", 2)
    metrics.inc("a", "sent", 2)
    clock.now += 9.9
    summary.tick()
    assert stream.getvalue() == ""  # the period has not passed
    clock.now += 0.1
    summary.tick()
    lines = _json_lines(stream)
    assert [(o["msg"], o["rule"], o["level"]) for o in lines] == [
        ("summary", "a", "info"), ("summary", "b", "info")]
    assert {k: lines[0][k] for k in ("queued", "sent", "seconds")} == {
        "queued": 2, "sent": 2, "seconds": 10.0}
    assert "fired" not in lines[0] and lines[1]["fired"] == 3 and "sent" not in lines[1]
    metrics.inc("b", "sent", 3)
    clock.now += 4
    summary.flush()  # at stop: whatever moved since, however short the period
    last = _json_lines(stream)[2:]
    assert [(o["rule"], o["sent"], o["seconds"]) for o in last] == [("b", 3, 4.0)]
    clock.now += 10
    summary.tick()
    assert len(_json_lines(stream)) == 3  # nothing moved: no line


def test_summary_is_redacted_like_every_line() -> None:
    stream = io.StringIO()
    logs.configure("info", "text", secrets=[SECRET], stream=stream)
    metrics, clock = Metrics(), _Clock()
    summary = logs.TrafficSummary(metrics.snapshot, every=1, clock=clock)
    metrics.inc(f"rule-{SECRET}", "queued")
    clock.now += 1
    summary.tick()
    out = stream.getvalue()
    assert "summary rule=rule-***" in out and SECRET not in out


def test_emitter_run_at_info_logs_a_summary_not_a_line_per_event(
        tmp_path: Path, intake: FakeIntake) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("""version: 1
rules:
  - id: echo
    trigger: {type: stdin}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "e {{ payload.n }}", text: x}
""")
    env = {**os.environ, "DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY,
           "HOME": str(tmp_path)}
    lines = b"".join(b'{"n": %d}\n' % i for i in range(3))
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(rules), "--stdin",
                           "--state-dir", str(tmp_path / "s"), "--log-format", "json"],
                          input=lines, capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(intake.events) == 3
    records = [json.loads(line) for line in proc.stderr.decode().splitlines()
               if line.startswith("{")]  # the last line is the run's plain-text total
    assert [r for r in records if r["msg"] == "event"] == []
    summaries = [r for r in records if r["msg"] == "summary"]
    assert sum(int(str(r.get("queued", 0))) for r in summaries) == 3
    assert sum(int(str(r.get("sent", 0))) for r in summaries) == 3
    assert {r["rule"] for r in summaries} == {"echo"}
