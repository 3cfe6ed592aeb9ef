"""Metrics exposition (Prometheus text format), the metrics HTTP server, and log redaction."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.request
from collections.abc import Iterator

import pytest

from emitter.daemon import logs
from emitter.daemon.metrics import COUNTERS, Metrics, MetricsServer, escape_label, parse_addr

# One sample line of the text format: name{labels} value
_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="([^"\\\n]|\\.)*",?)*\})? \S+$')


def _parse(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        assert _SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_counters_per_rule_in_text_format() -> None:
    m = Metrics()
    m.inc("deploy", "fired")
    m.inc("deploy", "fired", 2)
    m.inc("logs", "invalid")
    m.inc("logs", "throttled", 0)
    samples = _parse(m.render())
    assert samples['emitter_events_fired_total{rule="deploy"}'] == 3
    assert samples['emitter_events_invalid_total{rule="logs"}'] == 1
    assert 'emitter_events_throttled_total{rule="logs"}' not in samples
    text = m.render()
    assert text.endswith("\n")
    for name in ("fired", "rendered", "invalid", "throttled", "sent", "failed", "dead"):
        assert f"# TYPE emitter_events_{name}_total counter" in text


def test_unknown_counter_is_a_bug() -> None:
    with pytest.raises(ValueError):
        Metrics().inc("r", "bogus")
    assert {"fired", "sent", "dead"} <= set(COUNTERS)


def test_label_escaping() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    m = Metrics()
    m.inc('we"ird\nid', "sent")
    assert 'emitter_events_sent_total{rule="we\\"ird\\nid"} 1' in m.render()


def test_gauges_and_broken_gauge_source() -> None:
    m = Metrics()
    m.set_gauge_source(lambda: {"pending": 4, "oldest_age_seconds": 1.5})
    samples = _parse(m.render())
    assert samples["emitter_outbox_pending"] == 4
    assert samples["emitter_outbox_oldest_age_seconds"] == 1.5

    def broken() -> dict[str, float]:
        raise RuntimeError("db closed")

    m.set_gauge_source(broken)
    assert "emitter_outbox_pending" not in m.render()


def test_metrics_server_serves_metrics_and_health() -> None:
    m = Metrics()
    m.inc("r1", "sent", 5)
    server = MetricsServer(m, "127.0.0.1", 0)
    server.start()
    try:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert 'emitter_events_sent_total{rule="r1"} 5' in resp.read().decode()
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        (":80", ("127.0.0.1", 80)),
        ("8080", ("127.0.0.1", 8080)),
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_parse_addr(text: str, expected: tuple[str, int]) -> None:
    assert parse_addr(text) == expected


def test_parse_addr_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_addr("host:port")


# ---- logs --------------------------------------------------------------------------------

SECRET = "abcdef0123456789abcdef0123456789"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    logger = logging.getLogger(logs.ROOT)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _capture(fmt: logs.LogFormat) -> io.StringIO:
    stream = io.StringIO()
    logs.configure("debug", fmt, secrets=[SECRET], stream=stream)
    return stream


def test_event_line_json_has_rule_trigger_outcome() -> None:
    stream = _capture("json")
    logs.log_event("deploy", "file", "queued", fields={"line_number": 7})
    obj = json.loads(stream.getvalue().strip())
    assert obj["rule"] == "deploy" and obj["trigger"] == "file" and obj["outcome"] == "queued"
    assert obj["line_number"] == 7 and obj["level"] == "info"


def test_event_line_text() -> None:
    stream = _capture("text")
    logs.log_event("deploy", "webhook", "invalid", fields={"path": "$.title", "why": "too long"})
    line = stream.getvalue().strip()
    assert "event rule=deploy trigger=webhook outcome=invalid path=$.title" in line
    assert 'why="too long"' in line


def test_api_key_is_redacted_everywhere() -> None:
    stream = _capture("json")
    log = logging.getLogger("emitter.sinks.somewhere")
    log.warning("sending with key %s", SECRET, extra={"header": f"DD-API-KEY: {SECRET}"})
    try:
        raise RuntimeError(f"bad key {SECRET}")
    except RuntimeError:
        log.exception("failed")
    logs.log_event("r", "manual", "failed", fields={"detail": SECRET})
    out = stream.getvalue()
    assert SECRET not in out
    assert out.count(logs.MASK) >= 4


def test_level_filters_lower_records() -> None:
    stream = io.StringIO()
    logs.configure("warning", "text", stream=stream)
    logging.getLogger("emitter.x").info("quiet")
    logging.getLogger("emitter.x").warning("loud")
    assert "quiet" not in stream.getvalue() and "loud" in stream.getvalue()
