"""The `schedule` trigger's declaration: `every` or `cron` slots, and the slot's variables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from emitter.firing import Dispatch, Firing, OnError
from emitter.rules.model import Rule, ScheduleTrigger, Trigger
from emitter.triggers.spec import FeedState, RunnerOptions, TriggerType, Variable


def slot_variables(slot: float, tz_name: str) -> dict[str, Any]:
    """What a schedule firing gives templates for the slot at Unix time `slot`."""
    from zoneinfo import ZoneInfo

    when = datetime.fromtimestamp(slot, ZoneInfo(tz_name))
    return {"scheduled_time": when.isoformat(), "scheduled_timestamp": slot,
            "timezone": tz_name}


def _zone(trigger: Trigger) -> str:
    assert isinstance(trigger, ScheduleTrigger)
    return trigger.timezone or "UTC"


def _sample(name: str) -> Any:
    def sample(trigger: Trigger, now: datetime) -> Any:
        from zoneinfo import ZoneInfoNotFoundError

        try:
            return slot_variables(now.timestamp(), _zone(trigger))[name]
        except (ZoneInfoNotFoundError, ValueError):  # the loader reports a bad zone
            return slot_variables(now.timestamp(), "UTC")[name]
    return sample


def _runner(rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: Any,
            options: RunnerOptions) -> Any:
    from emitter.triggers.schedule import ScheduleRunner

    return ScheduleRunner(rules, dispatch, on_error)


def _feed(rule: Rule, times: Sequence[float], at: float, state: FeedState) -> list[Firing]:
    zone = _zone(rule.trigger)
    return [Firing(rule.id, "schedule", slot_variables(t, zone), t) for t in times]


SCHEDULE = TriggerType(
    name="schedule",
    fired_by="Fired on a schedule: `every` interval or `cron` expression (exactly one).",
    options='`every: 30s` or `cron: "0 9 * * 1-5"`, `timezone` (croniter)',
    variables=(
        Variable("scheduled_time", "string",
                 "the slot, ISO 8601 with the zone's offset", _sample("scheduled_time")),
        Variable("scheduled_timestamp", "number", "the slot, Unix seconds",
                 _sample("scheduled_timestamp")),
        Variable("timezone", "string", "the rule's time zone", _sample("timezone")),
    ),
    test_input="scheduled_times",
    runner=_runner,
    unit=lambda rule: rule.id,
    feed=_feed,
)
