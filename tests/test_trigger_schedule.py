"""The schedule trigger with an injected clock (slots, no drift, coalescing, cron in a time
zone) and once with the real clock and thread."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from emitter.errors import OutboxFullError
from emitter.problems import Location
from emitter.rules.model import Rule, ScheduleTrigger
from emitter.triggers.base import Firing
from emitter.triggers.schedule import ScheduleRunner


def rule(rule_id: str, **kw: object) -> Rule:
    return Rule(id=rule_id, location=Location("r.yaml", 1, 1),
                trigger=ScheduleTrigger(**kw), event={})  # type: ignore[arg-type]


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def runner(rules: list[Rule], clock: Clock) -> tuple[ScheduleRunner, list[Firing]]:
    fired: list[Firing] = []

    def dispatch(firings: Sequence[Firing]) -> None:
        fired.extend(firings)

    return ScheduleRunner(rules, dispatch, lambda r, m: None, clock=clock), fired


def test_every_fires_on_slots_without_drift() -> None:
    clock = Clock(1000.5)
    r, fired = runner([rule("tick", every=60.0)], clock)
    assert r.next_due() == 1020.0
    assert r.run_due(1019.99) == 1020.0 and fired == []
    clock.t = 1020.7  # woke up late
    assert r.run_due(clock.t) == 1080.0  # the next slot is not 1080.7: no drift
    assert [f.variables["scheduled_timestamp"] for f in fired] == [1020.0]
    assert fired[0].variables["scheduled_time"] == "1970-01-01T00:17:00+00:00"
    assert fired[0].rule_id == "tick" and fired[0].trigger == "schedule"
    assert fired[0].at == 1020.7


def test_missed_slots_are_coalesced_into_one_firing() -> None:
    clock = Clock(1000.0)
    r, fired = runner([rule("tick", every=60.0)], clock)
    assert r.run_due(1300.0) == 1320.0
    assert [f.variables["scheduled_timestamp"] for f in fired] == [1260.0]


def test_cron_in_a_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    friday_10h = datetime(2026, 1, 2, 10, 0, tzinfo=paris).timestamp()
    clock = Clock(friday_10h)
    r, fired = runner([rule("standup", cron="0 9 * * 1-5", timezone="Europe/Paris")], clock)
    monday_9h = datetime(2026, 1, 5, 9, 0, tzinfo=paris).timestamp()
    assert r.next_due() == monday_9h
    nxt = r.run_due(monday_9h)
    assert fired[0].variables["scheduled_time"] == "2026-01-05T09:00:00+01:00"
    assert fired[0].variables["timezone"] == "Europe/Paris"
    assert nxt == datetime(2026, 1, 6, 9, 0, tzinfo=paris).timestamp()


def test_several_rules_share_one_heap_in_time_order() -> None:
    clock = Clock(0.0)
    r, fired = runner([rule("slow", every=30.0), rule("fast", every=10.0)], clock)
    r.run_due(10.0)
    r.run_due(20.0)
    r.run_due(30.0)
    # Equal slots fire in rule order.
    assert [(f.rule_id, f.variables["scheduled_timestamp"]) for f in fired] == [
        ("fast", 10.0), ("fast", 20.0), ("slow", 30.0), ("fast", 30.0)
    ]


def test_dispatch_error_is_reported_and_next_slot_still_planned() -> None:
    errors: list[tuple[str | None, str]] = []

    def dispatch(firings: Sequence[Firing]) -> None:
        raise OutboxFullError("full")

    r = ScheduleRunner([rule("tick", every=5.0)], dispatch, lambda i, m: errors.append((i, m)),
                       clock=Clock(0.0))
    assert r.run_due(5.0) == 10.0
    assert errors and errors[0][0] == "tick" and "full" in errors[0][1]
    assert r.health().errors == 1


def test_real_thread_fires_on_time() -> None:
    every = 0.5
    fired: list[Firing] = []
    r = ScheduleRunner([rule("tick", every=every)], fired.extend, lambda i, m: None)
    r.start()
    try:
        deadline = time.monotonic() + 10
        while len(fired) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        r.stop(2)
    slots = [f.variables["scheduled_timestamp"] for f in fired[:2]]
    # Consecutive slots: a thread that slept a whole interval too long would coalesce and
    # skip one. Never early, and well within half an interval late (a loaded machine may
    # wake a thread some tens of ms late; 0.15 s of a 0.2 s interval was too tight).
    assert len(slots) == 2 and abs(slots[1] - slots[0] - every) < 1e-6
    for f in fired[:2]:
        assert 0 <= f.at - f.variables["scheduled_timestamp"] < every / 2
    assert not r.health().running
