"""The one back-off policy (emitter.backoff), read by delivery retries and trigger retries."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from emitter.backoff import Backoff, BackoffPolicy
from emitter.delivery.retry import RetryPolicy
from emitter.triggers.base import Backoff as TriggerBackoff


@settings(deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32))
def test_delay_is_full_jitter_under_the_ceiling(failures: int, seed: int) -> None:
    policy = BackoffPolicy(base=0.5, cap=30)
    assert 0 <= policy.delay(failures, random.Random(seed)) <= min(30, 0.5 * 2 ** (failures - 1))


def test_a_run_grows_and_a_success_ends_it() -> None:
    run = Backoff(BackoffPolicy(base=1, cap=8), random.Random(3))
    ceilings = []
    for _ in range(6):
        run.failed()
        ceilings.append(run.policy.ceiling(run.failures))
    assert ceilings == [1, 2, 4, 8, 8, 8]
    run.succeeded()
    assert run.failures == 0


def test_delivery_and_triggers_read_the_same_policy() -> None:
    retry = RetryPolicy(base=0.5, cap=30)
    assert retry.backoff(4, random.Random(9)) == BackoffPolicy(0.5, 30).delay(4, random.Random(9))
    trigger = TriggerBackoff(first=0.5, cap=10)
    assert isinstance(trigger, Backoff) and trigger.policy == BackoffPolicy(0.5, 10)
    assert all(0 <= trigger.failed() <= 10 for _ in range(20))
