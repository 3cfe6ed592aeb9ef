"""The one retry policy: which outcomes are retried, how long to wait (the one back-off policy
of emitter.backoff, or what a 429 asked for), and the bounds (attempts and total time).

`RetryPolicy.backoff` and `RetryPolicy.delay_for` are pure (randomness comes in as an argument)
so the outbox sender reuses them; `deliver` is the synchronous loop `emitter fire` uses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from emitter.backoff import BackoffPolicy
from emitter.events.encode import Encoded
from emitter.sinks.base import DeliveryResult, Outcome, Sink

# Called before each wait: (attempt just made, its result, seconds about to be slept).
RetryHook = Callable[[int, DeliveryResult, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and pacing of retries. Attempt numbers are 1-based (1 = the first try)."""

    max_attempts: int = 6
    base: float = 0.5  # seconds; the first back-off is drawn from [0, base]
    cap: float = 30.0  # no single back-off is longer than this
    deadline: float = 120.0  # total seconds from the first attempt; no wait goes past it

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base <= 0 or self.cap < self.base or self.deadline < 0:
            raise ValueError("need 0 < base <= cap and deadline >= 0")

    @property
    def pacing(self) -> BackoffPolicy:
        return BackoffPolicy(self.base, self.cap)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The one back-off policy (emitter.backoff): full jitter in
        [0, min(cap, base * 2**(attempt-1))]."""
        return self.pacing.delay(attempt, rng)

    def delay_for(self, result: DeliveryResult, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after `attempt` produced `result` (a RETRY outcome).

        When the server said how long to wait (429's X-RateLimit-Reset or Retry-After) that
        is honoured, plus a little jitter *upwards* so that no retry comes before the reset
        and several senders do not come back in the same instant; otherwise back-off.
        """
        if result.retry_after is not None and result.retry_after >= 0:
            return result.retry_after + rng.uniform(0.0, min(self.base, 1.0))
        return self.backoff(attempt, rng)


def deliver(
    sink: Sink,
    event: Encoded,
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    on_retry: RetryHook | None = None,
) -> DeliveryResult:
    """Send `event` through `sink`, retrying RETRY outcomes (never REJECTED ones).

    Returns the first DELIVERED or REJECTED result, or the last RETRY result once
    `max_attempts` are used or the next wait would pass `deadline` (its `detail` then says
    why it gave up). `deadline` bounds all attempts together, the one in flight included:
    each attempt gets at most what is left of it as its budget (`Sink.send(budget=...)`).
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        left = policy.deadline - (clock() - started)
        result = sink.send(event, budget=max(left, 0.001))
        if result.outcome is not Outcome.RETRY:
            return result
        if clock() - started >= policy.deadline:
            return _gave_up(result, f"gave up after {attempt} attempt(s): the "
                                    f"{policy.deadline:g}s deadline passed")
        if attempt >= policy.max_attempts:
            return _gave_up(result, f"gave up after {attempt} attempts")
        delay = policy.delay_for(result, attempt, rng)
        elapsed = clock() - started
        if elapsed + delay > policy.deadline:
            return _gave_up(
                result,
                f"gave up after {attempt} attempts in {elapsed:.1f}s: the next try (in "
                f"{delay:.1f}s) would pass the {policy.deadline:g}s deadline",
            )
        if on_retry is not None:
            on_retry(attempt, result, delay)
        sleep(delay)


def _gave_up(result: DeliveryResult, why: str) -> DeliveryResult:
    detail = f"{why}; last: {result.detail}" if result.detail else why
    return replace(result, detail=detail)
