"""The retry policy: back-off shape, honouring 429 waits, bounds in count and time.

`deliver` is tested here with a scripted sink and a fake clock (pure logic); with the real
HTTP sink against the loopback intake in test_datadog_sink.py and test_fire.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emitter.delivery.retry import RetryPolicy, deliver
from emitter.events.encode import Encoded
from emitter.sinks.base import DeliveryResult, Outcome

RETRY = DeliveryResult(Outcome.RETRY, 503, errors=("Service Unavailable",), detail="HTTP 503")
OK = DeliveryResult(Outcome.DELIVERED, 202, event_id="1")
REJECTED = DeliveryResult(Outcome.REJECTED, 400, errors=("bad",))


class Script:
    """A sink answering from a list; records each call's time on the fake clock."""

    name = "script"

    def __init__(self, answers: list[DeliveryResult], clock: FakeClock) -> None:
        self.answers = list(answers)
        self.clock = clock
        self.calls: list[float] = []

    def send(self, event: Encoded, *, budget: float | None = None) -> DeliveryResult:
        self.calls.append(self.clock.now)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def close(self) -> None:
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def run(answers: list[DeliveryResult], policy: RetryPolicy) -> tuple[DeliveryResult, Script]:
    clock = FakeClock()
    sink = Script(answers, clock)
    result = deliver(sink, Encoded.of({"title": "t", "text": "x"}), policy, sleep=clock.sleep,
                     clock=clock, rng=random.Random(7))
    return result, sink


@settings(deadline=None)  # no timed assertions: a loaded machine may stall one example
@given(st.integers(1, 200), st.integers(0, 2**32))
def test_backoff_full_jitter_within_bounds(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base=0.5, cap=30)
    delay = policy.backoff(attempt, random.Random(seed))
    assert 0 <= delay <= min(30, 0.5 * 2 ** (attempt - 1))


def test_backoff_grows_then_caps_and_is_jittered() -> None:
    policy = RetryPolicy(base=0.5, cap=8)
    rng = random.Random(1)
    means = [sum(policy.backoff(a, rng) for _ in range(2000)) / 2000 for a in (1, 2, 3, 6, 9)]
    # full jitter: the mean is half the ceiling (0.5, 1, 2, then capped at 8 -> 4)
    assert means == pytest.approx([0.25, 0.5, 1.0, 4.0, 4.0], rel=0.1)
    draws = {policy.backoff(3, rng) for _ in range(50)}
    assert len(draws) == 50  # really random, not a fixed schedule


def test_delay_for_honours_retry_after_never_earlier() -> None:
    policy = RetryPolicy(base=0.5)
    rng = random.Random(3)
    limited = DeliveryResult(Outcome.RETRY, 429, retry_after=7.0)
    delays = [policy.delay_for(limited, 1, rng) for _ in range(200)]
    assert min(delays) >= 7.0 and max(delays) <= 7.5
    # no header: plain back-off
    no_header = DeliveryResult(Outcome.RETRY, 429)
    assert all(policy.delay_for(no_header, 1, rng) <= 0.5 for _ in range(100))


def test_delivered_first_try_no_sleep() -> None:
    result, sink = run([OK], RetryPolicy())
    assert result == OK and len(sink.calls) == 1


def test_retries_then_delivers() -> None:
    result, sink = run([RETRY, RETRY, OK], RetryPolicy())
    assert result.outcome is Outcome.DELIVERED
    assert len(sink.calls) == 3


def test_rejected_is_never_retried() -> None:
    result, sink = run([REJECTED, OK], RetryPolicy())
    assert result == REJECTED and len(sink.calls) == 1


def test_bounded_by_attempts() -> None:
    result, sink = run([RETRY], RetryPolicy(max_attempts=4, deadline=10_000))
    assert len(sink.calls) == 4
    assert result.outcome is Outcome.RETRY and result.status == 503
    assert "gave up after 4 attempts" in result.detail and "HTTP 503" in result.detail


def test_bounded_by_deadline() -> None:
    policy = RetryPolicy(max_attempts=1000, base=1, cap=4, deadline=20)
    result, sink = run([RETRY], policy)
    assert 3 <= len(sink.calls) < 1000
    assert sink.calls[-1] - sink.calls[0] <= 20
    assert "deadline" in result.detail


def test_retry_after_beyond_deadline_gives_up_at_once() -> None:
    limited = DeliveryResult(Outcome.RETRY, 429, retry_after=3600)
    result, sink = run([limited, OK], RetryPolicy(deadline=60))
    assert len(sink.calls) == 1 and result.status == 429 and "deadline" in result.detail


def test_waits_as_told_by_429() -> None:
    limited = DeliveryResult(Outcome.RETRY, 429, retry_after=5)
    result, sink = run([limited, OK], RetryPolicy())
    assert result.outcome is Outcome.DELIVERED
    assert sink.calls[1] - sink.calls[0] >= 5


def test_on_retry_hook_sees_each_wait() -> None:
    clock = FakeClock()
    seen: list[tuple[int, int | None, float]] = []
    deliver(Script([RETRY, RETRY, OK], clock), Encoded.of({}), RetryPolicy(), sleep=clock.sleep,
            clock=clock, on_retry=lambda n, r, d: seen.append((n, r.status, d)))
    assert [(n, s) for n, s, _ in seen] == [(1, 503), (2, 503)]
    assert [d for _, _, d in seen] == clock.sleeps


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base": 0}, {"base": 5, "cap": 1}])
def test_policy_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
