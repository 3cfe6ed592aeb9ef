"""Throttle modes `first` and `summary`, windows per key, summaries due at window end and
kept until confirmed, and all of it across a restart (a new Throttler on the same store); on
both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

from emitter.delivery.throttle import MAX_DISTINCT
from emitter.problems import Location
from emitter.rules.model import ManualTrigger, Rule, Throttle, Tmpl
from tests.backends import Place

LOC = Location("r.yaml", 1, 1)


def rule(rule_id: str, mode: str, window: float = 60.0) -> Rule:
    return Rule(id=rule_id, location=LOC, trigger=ManualTrigger(), event={},
                throttle=Throttle(key=Tmpl("{{ service }}", LOC), window=window,
                                  mode=mode))  # type: ignore[arg-type]


def test_first_sends_first_drops_and_counts_rest_per_key(place: Place) -> None:
    r = rule("r", "first")
    with place.throttling() as (store, t):
        d = t.decide(r, "db", 100.0)
        assert d.send and d.count == 1 and (d.window_start, d.window_end) == (100.0, 160.0)
        assert [t.decide(r, "db", 110.0 + i).send for i in range(3)] == [False] * 3
        assert t.decide(r, "db", 120.0).count == 5
        assert t.decide(r, "web", 120.0).send  # another key, its own window
        assert t.decide(r, "db", 160.0).send  # the window ended
        assert t.due_summaries(500.0) == []  # `first` never summarises


def test_rule_without_throttle_always_sends(place: Place) -> None:
    plain = Rule(id="p", location=LOC, trigger=ManualTrigger(), event={})
    with place.throttling() as (store, t):
        assert all(t.decide(plain, "k", 1.0).send for _ in range(3))


def test_summary_reports_dropped_count_and_distinct_details(place: Place) -> None:
    r = rule("r", "summary")
    with place.throttling() as (store, t):
        assert t.decide(r, "db", 100.0, detail="disk full").send
        for detail in ["disk full", "timeout", "disk full", "timeout", "oom"]:
            assert not t.decide(r, "db", 120.0, detail=detail).send
        assert t.due_summaries(159.0) == []  # not yet over
        (s,) = t.due_summaries(160.0)
        assert (s.rule_id, s.key, s.count) == ("r", "db", 5)
        assert s.distinct_keys == ("disk full", "timeout", "oom")
        assert (s.window_start, s.window_end) == (100.0, 160.0)
        assert t.due_summaries(161.0) == [s]  # due until confirmed
        t.summary_sent(s)
        assert t.due_summaries(162.0) == []


def test_summary_window_with_nothing_dropped_gives_no_summary(place: Place) -> None:
    with place.throttling() as (store, t):
        t.decide(rule("r", "summary"), "db", 100.0)
        assert t.due_summaries(1000.0) == []


def test_summary_closed_by_next_event_and_distinct_bounded(place: Place) -> None:
    r = rule("r", "summary", window=10.0)
    with place.throttling() as (store, t):
        t.decide(r, "k", 0.0)
        for i in range(MAX_DISTINCT + 5):
            t.decide(r, "k", 1.0, detail=f"d{i}")
        assert t.decide(r, "k", 20.0).send  # opens a new window, closes the old one
        (s,) = t.due_summaries(20.0)
        assert s.count == MAX_DISTINCT + 5
        assert len(s.distinct_keys) == MAX_DISTINCT and s.more_distinct == 5


def test_both_modes_survive_restart(place: Place) -> None:
    first, summ = rule("f", "first"), rule("s", "summary")
    with place.throttling() as (store, t):
        assert t.decide(first, "k", 100.0).send
        assert t.decide(summ, "k", 100.0).send
        assert not t.decide(summ, "k", 101.0, detail="x").send
    with place.throttling() as (store, t):  # "restart"
        assert not t.decide(first, "k", 130.0).send  # still inside the window
        assert t.decide(first, "k", 130.0).count == 3
        assert not t.decide(summ, "k", 102.0, detail="y").send
        (s,) = t.due_summaries(200.0)
        assert (s.count, s.distinct_keys) == (2, ("x", "y"))
    with place.throttling() as (store, t):  # crash before the summary was sent
        (again,) = t.due_summaries(201.0)
        assert again == s
        t.summary_sent(again)
    with place.throttling() as (store, t):
        assert t.due_summaries(300.0) == []
