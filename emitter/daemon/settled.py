"""The daemon's observer of settled deliveries: each attempt's outcome counted per rule
(sent / failed / dead) into the daemon's counters, and logged as one event line (sent at
DEBUG: the traffic summary says it at INFO; a failed attempt at INFO, a dead letter at
WARNING)."""

from __future__ import annotations

import logging
from typing import Any

from emitter.counters import Metrics
from emitter.daemon import logs
from emitter.delivery.outbox import Row
from emitter.delivery.sender import SettledObserver, reason
from emitter.sinks.base import DeliveryResult, Outcome

_LEVELS = {"sent": logging.DEBUG, "failed": logging.INFO, "dead": logging.WARNING}


def settlement_log(metrics: Metrics) -> SettledObserver:
    """The sender's observer: each attempt's outcome counted per rule (sent / failed / dead)
    and logged."""

    def settled(row: Row, result: DeliveryResult) -> None:
        name = {Outcome.DELIVERED: "sent", Outcome.REJECTED: "dead"}.get(result.outcome,
                                                                         "failed")
        metrics.inc(row.rule_id, name)
        level = _LEVELS[name]
        if not logs.event_logged(level):
            return
        fields: dict[str, Any] = {"outbox_id": row.id, "attempt": row.attempts}
        if result.status is not None:
            fields["status"] = result.status
        if result.event_id:
            fields["event_id"] = result.event_id
        if name != "sent":
            fields["error"] = reason(result)
        logs.log_event(row.rule_id, "sender", name, level=level, fields=fields)

    return settled
