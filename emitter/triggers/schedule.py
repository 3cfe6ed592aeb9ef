"""The `schedule` trigger: `every` N seconds or a `cron` expression in a time zone.

One thread serves every schedule rule from a heap of next-due times. Next times come from
the schedule itself, never from "now + interval", so firings do not drift: `every: 300`
fires at multiples of 300 s since the Unix epoch (00:00, 00:05, ... UTC), and `cron` uses
croniter in the rule's `timezone` (DST handled by croniter). After a stall (suspend, a
blocked dispatch) the missed slots are coalesced: one firing for the latest slot passed.

Variables: see emitter.triggers.kinds.schedule (e.g. `scheduled_time` is
"2026-01-05T09:00:00+01:00").
A dispatch error is reported and that slot is skipped (a schedule does not replay old slots).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from emitter.rules.model import Rule, ScheduleTrigger
from emitter.triggers.base import Dispatch, Firing, OnError, RunnerBase
from emitter.triggers.kinds.schedule import slot_variables

_MAX_WAIT = 30.0  # re-read the clock at least this often (clock jumps, suspend)


class _Schedule:
    def __init__(self, rule: Rule) -> None:
        trig = rule.trigger
        assert isinstance(trig, ScheduleTrigger)
        self.rule_id = rule.id
        self.every = trig.every
        self.cron = trig.cron
        self.tz_name = trig.timezone or "UTC"
        self.tz: tzinfo = ZoneInfo(self.tz_name)

    def next_after(self, t: float) -> float:
        """The first slot strictly after `t`."""
        if self.every:
            return (math.floor(t / self.every) + 1) * self.every
        start = datetime.fromtimestamp(t, self.tz)
        nxt = croniter(self.cron, start).get_next(datetime)
        return float(nxt.timestamp())

    def variables(self, slot: float) -> dict[str, Any]:
        return slot_variables(slot, self.tz_name)


class ScheduleRunner(RunnerBase):
    def __init__(
        self,
        rules: Sequence[Rule],
        dispatch: Dispatch,
        on_error: OnError,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("schedule", on_error)
        self._dispatch = dispatch
        self._clock = clock
        self.schedules = [_Schedule(r) for r in rules if isinstance(r.trigger, ScheduleTrigger)]
        self._heap: list[tuple[float, int]] = []
        self.reset(clock())

    def reset(self, now: float) -> None:
        """Plan every schedule's first slot after `now`."""
        self._heap = [(s.next_after(now), i) for i, s in enumerate(self.schedules)]
        heapq.heapify(self._heap)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_due(self, now: float) -> float | None:
        """Fire every schedule whose slot is at or before `now`; return the next slot."""
        while self._heap and self._heap[0][0] <= now:
            slot, index = heapq.heappop(self._heap)
            schedule = self.schedules[index]
            nxt = schedule.next_after(now)
            latest = slot
            probe = schedule.next_after(slot)
            while probe <= now:  # coalesce missed slots: fire for the latest one passed
                latest, probe = probe, schedule.next_after(probe)
            heapq.heappush(self._heap, (nxt, index))
            self._fire(schedule, latest)
        return self.next_due()

    def _fire(self, schedule: _Schedule, slot: float) -> None:
        firing = Firing(schedule.rule_id, "schedule", schedule.variables(slot), self._clock())
        try:
            self._dispatch([firing])
            self.counted(1)
        except Exception as exc:  # noqa: BLE001 - report, keep the other schedules running
            self.report(schedule.rule_id, f"schedule firing not accepted: {exc}")

    def start(self) -> None:
        self.reset(self._clock())
        self._start_thread(self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self._clock()
            nxt = self.run_due(now)
            wait = _MAX_WAIT if nxt is None else min(max(nxt - self._clock(), 0.0), _MAX_WAIT)
            self._stop.wait(wait)

