"""The daemon's dispatch: render -> check -> throttle -> one outbox batch, with counters."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from emitter.counters import Metrics
from emitter.daemon import logs
from emitter.delivery.outbox import Outbox
from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
from emitter.delivery.throttle import Throttler
from emitter.errors import OutboxFullError
from emitter.firing import Firing
from emitter.rules.loader import load_rules
from emitter.state.store import StateStore
from emitter.templates.compiler import compile_rules

RULES = """\
version: 1
rules:
  - id: errors
    trigger: {type: file, path: /var/log/app.log, match: 'ERROR (?P<service>\\w+): (?P<msg>.*)'}
    event:
      title: "{{ service }} error"
      text: "{{ msg }}"
      tags: ["service:{{ service }}"]
  - id: alerts
    trigger: {type: webhook, path: /hooks/am}
    foreach: "payload.alerts"
    when: "payload.status != 'ignore'"
    event:
      title: "{{ item.name }}"
      text: "{{ item.summary }}"
  - id: long
    trigger: {type: stdin}
    event: {title: "{{ payload.title }}", text: x}
  - id: first
    trigger: {type: stdin}
    throttle: {key: "{{ payload.svc }}", window: 60s, mode: first}
    event: {title: "{{ payload.svc }} down {{ payload.n }}", text: x}
  - id: summ
    trigger: {type: stdin}
    throttle: {key: "{{ payload.svc }}", window: 60s, mode: summary}
    event:
      title: "{{ payload.svc }} down {{ payload.n }}"
      text: x
      aggregation_key: "{{ payload.svc }}"
      tags: ["svc:{{ payload.svc }}"]
"""

T0 = 1_700_000_000.0
_OPEN: list[StateStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


class ListOutbox:
    """Records what would be committed (the pipeline only needs `enqueue`)."""

    def __init__(self, full: bool = False) -> None:
        self.batches: list[list[tuple[str, bytes]]] = []
        self.full = full

    def enqueue(self, items: Sequence[tuple[str, bytes]]) -> list[int]:
        if self.full:
            raise OutboxFullError("outbox is full")
        self.batches.append(list(items))
        return list(range(len(items)))

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return [(rid, json.loads(body)) for batch in self.batches for rid, body in batch]


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    loaded = load_rules([str(path)])
    assert loaded.ok, [p.format_text() for p in loaded.problems]
    compiled, problems = compile_rules(loaded.rules)
    assert not problems
    return RuleSet.of(compiled)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    logger = logging.getLogger(logs.ROOT)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    stream = io.StringIO()
    logs.configure("debug", "json", stream=stream)
    yield stream
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def make(ruleset: RuleSet, tmp_path: Path, outbox: Any = None,
         throttle: bool = False) -> tuple[Pipeline, Any, Metrics, StateStore]:
    store = StateStore(tmp_path / "state.sqlite3")
    _OPEN.append(store)
    metrics = Metrics()
    box = outbox if outbox is not None else ListOutbox()
    pipe = Pipeline(ruleset, box, metrics=metrics, context=context_factory("h1", (), {}),
                    throttler=Throttler(store, clock=lambda: T0) if throttle else None,
                    store=store)
    return pipe, box, metrics, store


def test_file_firing_becomes_one_committed_event(ruleset: RuleSet, tmp_path: Path,
                                                 log_stream: io.StringIO) -> None:
    pipe, box, metrics, _ = make(ruleset, tmp_path)
    pipe.dispatch([Firing("errors", "file", {"service": "db", "msg": "disk full"}, T0)])
    assert box.events() == [("errors", {"title": "db error", "text": "disk full",
                                        "tags": ["service:db"]})]
    assert metrics.get("errors", "fired") == 1 and metrics.get("errors", "queued") == 1
    line = [entry for entry in _lines(log_stream) if entry["msg"] == "event"][0]
    assert (line["rule"], line["trigger"], line["outcome"]) == ("errors", "file", "queued")


def test_one_batch_for_many_firings_and_foreach(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, box, metrics, _ = make(ruleset, tmp_path)
    payload = {"status": "firing", "alerts": [{"name": "A", "summary": "a"},
                                              {"name": "B", "summary": "b"}]}
    pipe.dispatch([
        Firing("alerts", "webhook", {"payload": payload}, T0),
        Firing("errors", "file", {"service": "x", "msg": "y"}, T0),
    ])
    assert len(box.batches) == 1
    assert [e["title"] for _, e in box.events()] == ["A", "B", "x error"]
    assert metrics.get("alerts", "rendered") == 2


def test_when_false_and_empty_foreach_send_nothing(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, box, metrics, _ = make(ruleset, tmp_path)
    pipe.dispatch([Firing("alerts", "webhook", {"payload": {"status": "ignore", "alerts": []}},
                          T0)])
    pipe.dispatch([Firing("alerts", "webhook", {"payload": {"status": "x", "alerts": []}}, T0)])
    assert box.events() == []
    assert metrics.get("alerts", "skipped") == 2


def test_invalid_event_is_logged_with_json_path_and_never_sent(
        ruleset: RuleSet, tmp_path: Path, log_stream: io.StringIO) -> None:
    pipe, box, metrics, _ = make(ruleset, tmp_path)
    pipe.dispatch([Firing("long", "stdin", {"payload": {"title": "t" * 101}}, T0),
                   Firing("long", "stdin", {"payload": {"title": "ok"}}, T0)])
    assert [e["title"] for _, e in box.events()] == ["ok"]
    assert metrics.get("long", "invalid") == 1
    invalid = [e for e in _lines(log_stream) if e.get("outcome") == "invalid"]
    assert invalid and invalid[0]["rule"] == "long" and invalid[0]["path"] == "$.title"


def test_undefined_variable_is_invalid_not_a_crash(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, box, metrics, _ = make(ruleset, tmp_path)
    pipe.dispatch([Firing("errors", "file", {"service": "db"}, T0)])  # no `msg`
    assert box.events() == [] and metrics.get("errors", "invalid") == 1


def test_unknown_rule_is_dropped(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, box, _, _ = make(ruleset, tmp_path)
    pipe.dispatch([Firing("gone", "file", {}, T0)])
    assert box.events() == []


def test_outbox_full_propagates_and_counts_refused(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, _, metrics, _ = make(ruleset, tmp_path, outbox=ListOutbox(full=True))
    with pytest.raises(OutboxFullError):
        pipe.dispatch([Firing("errors", "file", {"service": "a", "msg": "b"}, T0)])
    assert metrics.get("errors", "refused") == 1 and metrics.get("errors", "queued") == 0


def _fire(pipe: Pipeline, rule: str, svc: str, n: int, at: float) -> None:
    pipe.dispatch([Firing(rule, "stdin", {"payload": {"svc": svc, "n": n}}, at)])


def test_throttle_first_sends_one_per_key_per_window(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, box, metrics, _ = make(ruleset, tmp_path, throttle=True)
    for n in range(5):
        _fire(pipe, "first", "db", n, T0 + n)
    _fire(pipe, "first", "web", 0, T0 + 1)
    _fire(pipe, "first", "db", 9, T0 + 61)  # the window has ended
    assert [e["title"] for _, e in box.events()] == ["db down 0", "web down 0", "db down 9"]
    assert metrics.get("first", "throttled") == 4
    assert pipe.flush_summaries(T0 + 200) == 0  # mode first: never a summary


def test_throttle_summary_sends_first_then_a_summary(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, box, metrics, store = make(ruleset, tmp_path, throttle=True)
    for n in range(4):
        _fire(pipe, "summ", "db", n, T0 + n)
    assert [e["title"] for _, e in box.events()] == ["db down 0"]
    assert pipe.flush_summaries(T0 + 30) == 0  # window not over yet
    assert pipe.flush_summaries(T0 + 61) == 1
    rid, summary = box.events()[-1]
    assert rid == "summ"
    assert summary["title"] == "3 more in 1m: db down 0"
    assert "db down 1" in summary["text"] and "db down 3" in summary["text"]
    assert summary["aggregation_key"] == "db"
    assert summary["tags"] == ["svc:db", "throttle:summary"]
    assert metrics.get("summ", "throttled") == 3
    assert pipe.flush_summaries(T0 + 120) == 0  # sent once, then forgotten


def test_summary_survives_a_restart(ruleset: RuleSet, tmp_path: Path) -> None:
    pipe, box, _, store = make(ruleset, tmp_path, throttle=True)
    for n in range(3):
        _fire(pipe, "summ", "db", n, T0 + n)
    _OPEN.remove(store)
    store.close()
    pipe2, box2, _, _ = make(ruleset, tmp_path, throttle=True)
    _fire(pipe2, "summ", "db", 7, T0 + 10)  # still throttled after the restart
    assert box2.events() == []
    assert pipe2.flush_summaries(T0 + 61) == 1
    assert box2.events()[0][1]["title"] == "3 more in 1m: db down 0"


def test_with_the_real_outbox(ruleset: RuleSet, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    try:
        pipe, _, _, _ = make(ruleset, tmp_path, outbox=outbox)
        pipe.dispatch([Firing("errors", "file", {"service": "é", "msg": "ü"}, T0)])
        rows = outbox.list_events()
        assert len(rows) == 1 and rows[0].rule_id == "errors"
        assert json.loads(rows[0].body)["title"] == "é error"
    finally:
        outbox.close()


def test_a_refused_event_opens_no_throttle_window(ruleset: RuleSet, tmp_path: Path) -> None:
    # Issue 8 defect 4: with the outbox full the window opened for the refused event and
    # the client's retry was then throttled, so nothing was ever committed.
    outbox = Outbox(tmp_path / "outbox.sqlite3", max_events=1)
    try:
        (blocker,) = outbox.enqueue([("other", b'{"title":"t","text":"x"}')])
        pipe, _, metrics, store = make(ruleset, tmp_path, outbox=outbox, throttle=True)
        with pytest.raises(OutboxFullError):
            _fire(pipe, "first", "db", 1, T0)
        assert metrics.get("first", "refused") == 1
        (row,) = outbox.claim(1)
        outbox.mark_delivered(row.id)  # room again
        _fire(pipe, "first", "db", 1, T0 + 1)  # the client's retry
        assert metrics.get("first", "throttled") == 0
        assert [json.loads(r.body)["title"] for r in outbox.list_events()] == ["db down 1"]
        _fire(pipe, "first", "db", 2, T0 + 2)  # and the window is open now
        assert metrics.get("first", "throttled") == 1
    finally:
        outbox.close()


def test_a_refused_batch_saves_no_window_across_a_restart(ruleset: RuleSet,
                                                          tmp_path: Path) -> None:
    pipe, _, _, store = make(ruleset, tmp_path, outbox=ListOutbox(full=True), throttle=True)
    with pytest.raises(OutboxFullError):
        _fire(pipe, "summ", "db", 1, T0)
    assert store.items("throttle") == {}
    assert store.items("throttle-first") == {}
