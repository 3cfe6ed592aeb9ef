"""Throttling on PostgreSQL, shared by every replica: the Throttler's interface and semantics
(emitter.delivery.throttle), decided on a locked window row inside the batch's transaction, so
`first` and `summary` hold per key across replicas and each window's summary is claimed by
exactly one replica (FOR UPDATE SKIP LOCKED, deleted in the transaction that queues it)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from emitter.delivery.throttle import MAX_DISTINCT, Decision, Reservation, Summary
from emitter.rules.model import Rule
from emitter.state.postgres.db import Database

_WINDOW = "mode, start_at, end_at, count, details, more"


class PgThrottler:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def decide(self, rule: Rule, key: str, now: float | None = None, *,
               detail: str | None = None) -> Decision:
        decision, _ = self.reserve(rule, key, now, detail=detail)
        return decision

    def reserve(self, rule: Rule, key: str, now: float | None = None, *,
                detail: str | None = None) -> tuple[Decision, Reservation]:
        """Decide and write the window in this thread's batch: it commits with the events
        (or is rolled back with them), so there is nothing to confirm or cancel."""
        when = self._clock() if now is None else now
        spec = rule.throttle
        if spec is None:
            return Decision(True, 1, when, when), Reservation(rule.id, key, None, False)
        with self._db.tx() as cur:
            cur.execute(
                "INSERT INTO throttle_windows (rule_id, key, mode, start_at, end_at, count)"
                " VALUES (%s, %s, %s, 0, 0, 0) ON CONFLICT DO NOTHING", (rule.id, key, spec.mode))
            cur.execute(f"SELECT {_WINDOW} FROM throttle_windows WHERE rule_id = %s AND"  # noqa: S608
                        " key = %s FOR UPDATE", (rule.id, key))
            mode, start, end, count, details, more = cur.fetchone()
            if count > 0 and when >= end:
                _close(cur, rule.id, key, mode, start, end, count, details, more)
                count = 0
            if count == 0:
                start, end, count, details, more = when, when + spec.window, 1, "[]", 0
                mode = spec.mode
            else:
                count += 1
                if mode == "summary":
                    details, more = _note(details, more, key if detail is None else detail)
            cur.execute(
                "UPDATE throttle_windows SET mode = %s, start_at = %s, end_at = %s, count = %s,"
                " details = %s, more = %s WHERE rule_id = %s AND key = %s",
                (mode, start, end, count, details, more, rule.id, key))
        decision = Decision(count == 1, count, start, end)
        return decision, Reservation(rule.id, key, None, count == 1)

    def confirm(self, reservations: Iterable[Reservation]) -> None:
        """Nothing to do: the decision was written in the batch's transaction."""

    def cancel(self, reservations: Iterable[Reservation]) -> None:
        """Nothing to do: the refused batch's transaction is rolled back, decision and all."""

    def due_summaries(self, now: float | None = None) -> list[Summary]:
        """Close ended windows and return the summaries no other replica is queueing now;
        inside a batch they stay locked to this replica until it commits."""
        when = self._clock() if now is None else now
        with self._db.tx() as cur:
            cur.execute(f"SELECT rule_id, key, {_WINDOW} FROM throttle_windows WHERE"  # noqa: S608
                        " count > 0 AND end_at <= %s FOR UPDATE SKIP LOCKED", (when,))
            for rule_id, key, mode, start, end, count, details, more in cur.fetchall():
                _close(cur, rule_id, key, mode, start, end, count, details, more)
                cur.execute("DELETE FROM throttle_windows WHERE rule_id = %s AND key = %s",
                            (rule_id, key))
            cur.execute("SELECT rule_id, key, count, details, more, start_at, end_at FROM"
                        " throttle_summaries ORDER BY end_at, rule_id, key FOR UPDATE SKIP LOCKED")
            rows = cur.fetchall()
        return [Summary(r, k, c, tuple(json.loads(d)), m, s, e) for r, k, c, d, m, s, e in rows]

    def summary_sent(self, summary: Summary) -> None:
        with self._db.tx() as cur:
            cur.execute("DELETE FROM throttle_summaries WHERE rule_id = %s AND key = %s AND"
                        " start_at = %s", (summary.rule_id, summary.key, summary.window_start))


def _close(cur: Any, rule_id: str, key: str, mode: str, start: float, end: float, count: int,
           details: str, more: int) -> None:
    """An ended window that dropped events in `summary` mode becomes a pending summary."""
    if mode == "summary" and count > 1:
        cur.execute("INSERT INTO throttle_summaries VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING", (rule_id, key, start, end, count - 1, details, more))


def _note(details: str, more: int, detail: str) -> tuple[str, int]:
    seen: list[Any] = json.loads(details)
    if detail not in seen:
        if len(seen) < MAX_DISTINCT:
            seen.append(detail)
        else:
            more += 1  # approximate, as in emitter.delivery.throttle
    return json.dumps(seen), more
