"""Metrics exposition (prometheus_client's text format), the one address parser, and log
redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from emitter.counters import COUNTERS, Metrics
from emitter.daemon import logs
from emitter.daemon.metrics import CONTENT_TYPE, Exposition
from emitter.errors import UsageError
from emitter.httpmsg import parse_addr

# One sample line of the text format: name{labels} value
_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="([^"\\\n]|\\.)*",?)*\})? \S+$')


def _render(m: Metrics, gauges: Any = None) -> str:
    return Exposition(m, gauges).render().decode()


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
    samples = _parse(_render(m))
    assert samples['emitter_events_fired_total{rule="deploy"}'] == 3
    assert samples['emitter_events_invalid_total{rule="logs"}'] == 1
    assert 'emitter_events_throttled_total{rule="logs"}' not in samples
    text = _render(m)
    assert text.endswith("\n")
    for name in ("fired", "rendered", "invalid", "throttled", "sent", "failed", "dead"):
        assert f"# TYPE emitter_events_{name}_total counter" in text


def test_unknown_counter_is_a_bug() -> None:
    with pytest.raises(ValueError):
        Metrics().inc("r", "bogus")
    assert {"fired", "sent", "dead"} <= set(COUNTERS)


def test_label_escaping() -> None:
    m = Metrics()
    m.inc('we"ird\nid', "sent")
    assert 'emitter_events_sent_total{rule="we\\"ird\\nid"} 1.0' in _render(m)


def test_gauges_and_broken_gauge_source() -> None:
    m = Metrics()
    samples = _parse(_render(m, lambda: {"pending": 4, "oldest_age_seconds": 1.5}))
    assert samples["emitter_outbox_pending"] == 4
    assert samples["emitter_outbox_oldest_age_seconds"] == 1.5

    def broken() -> dict[str, float]:
        raise RuntimeError("db closed")

    text = _render(m, broken)
    assert "emitter_outbox_pending" not in text and "emitter_events_sent_total" in text


def test_infinite_and_nan_gauges_are_written_not_raised() -> None:
    # The hand-written writer called int(inf) and /metrics answered nothing (defect 6).
    text = _render(Metrics(), lambda: {"pending": float("inf"), "bytes": float("-inf"),
                                       "oldest_age_seconds": float("nan")})
    assert "emitter_outbox_pending +Inf" in text and "emitter_outbox_bytes -Inf" in text
    assert "emitter_outbox_oldest_age_seconds NaN" in text


def test_content_type_is_prometheus_text() -> None:
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        (":80", ("127.0.0.1", 80)),  # loopback, for --listen and --metrics-addr alike
        ("8080", ("127.0.0.1", 8080)),
        ("[::1]:9", ("::1", 9)),
        ("0.0.0.0:8787", ("0.0.0.0", 8787)),
        ("[::]:8787", ("::", 8787)),
    ],
)
def test_parse_addr(text: str, expected: tuple[str, int]) -> None:
    assert parse_addr(text) == expected


@pytest.mark.parametrize("text", ["host:port", ":²", ":99999", "::1:80", "[::1:80", ""])
def test_parse_addr_rejects_garbage(text: str) -> None:
    with pytest.raises(UsageError, match="not an ADDR:PORT"):
        parse_addr(text)


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
    assert obj["line_number"] == 7 and obj["level"] == "debug"  # routine: debug


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


def test_counts_added_in_one_batch_equal_one_by_one() -> None:
    from emitter.counters import Metrics

    one, batch = Metrics(), Metrics()
    for rule_id, name in [("a", "fired"), ("a", "fired"), ("b", "queued"), ("a", "rendered")]:
        one.inc(rule_id, name)
    batch.add({("fired", "a"): 2, ("queued", "b"): 1, ("rendered", "a"): 1, ("sent", "c"): 0})
    assert batch.snapshot() == one.snapshot()
    with pytest.raises(ValueError, match="unknown counter"):
        batch.add({("nonsense", "a"): 1})
