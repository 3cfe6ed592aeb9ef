"""`emitter fire` through the outbox: commit the event first, then send it now with the
same retry rules as a direct send; what is not delivered stays queued for a sender."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from emitter.delivery.outbox import Outbox
from emitter.delivery.retry import RetryPolicy, deliver
from emitter.delivery.sender import reason
from emitter.events.encode import Encoded
from emitter.sinks.base import DeliveryResult, Outcome, Sink


@dataclass(frozen=True)
class QueuedDelivery:
    """What `deliver_via_outbox` did: the final result and whether the event stays queued."""

    event_id: int  # the outbox id (for `emitter outbox list/retry`)
    result: DeliveryResult
    queued: bool  # True: not delivered yet, left pending for the daemon / `outbox drain`
    dead: bool  # True: refused by the API, kept as a dead letter


def deliver_via_outbox(
    outbox: Outbox,
    sink: Sink,
    rule_id: str,
    event: Encoded,
    policy: RetryPolicy,
    **deliver_opts: Any,
) -> QueuedDelivery:
    """`emitter fire` with a state directory: commit the event first, then send it now with
    the same retry rules as a direct send. Delivered → removed; refused → dead letter;
    retries exhausted → left pending so a sender delivers it later (nothing is lost).

    `deliver_opts` go to `emitter.delivery.retry.deliver` (sleep, clock, rng, on_retry).
    """
    # Leased for the whole retry budget (plus a last request's timeout), so a daemon sharing
    # the outbox never sends it while this call may still be retrying it.
    (event_id,) = outbox.enqueue([(rule_id, event.body)], claimed=True, lease=policy.deadline + 120)
    attempts = 0

    def counted(attempt: int, result: DeliveryResult, delay: float) -> None:
        nonlocal attempts
        attempts = attempt
        hook = deliver_opts.get("on_retry")
        if hook is not None:
            hook(attempt, result, delay)

    opts = {**deliver_opts, "on_retry": counted}
    result = deliver(sink, event, policy, **opts)
    if result.outcome is Outcome.DELIVERED:
        outbox.mark_delivered(event_id)
        return QueuedDelivery(event_id, result, queued=False, dead=False)
    if result.outcome is Outcome.REJECTED:
        outbox.mark_dead(event_id, result.status, reason(result))
        return QueuedDelivery(event_id, result, queued=False, dead=True)
    tries = attempts + 1
    next_at = time.time() + policy.backoff(tries + 1, random.Random())  # noqa: S311
    outbox.mark_retry(event_id, next_at, result.status, reason(result), attempts=tries)
    return QueuedDelivery(event_id, result, queued=True, dead=False)
