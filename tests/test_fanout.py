"""The Datadog sink's fan-out (`send_many`) against the loopback intake: the same results as
one `send` per event, in order, on several connections at once; the window grows on clean
batches and falls back to one request on a 429, a 5xx or a dropped connection."""

from __future__ import annotations

import json

from emitter.events.encode import Encoded
from emitter.settings import Settings
from emitter.sinks.base import Outcome
from emitter.sinks.datadog import FANOUT, DatadogSink
from tests.intake import INTAKE_KEY, FakeIntake, Fault, intake_fixture  # noqa: F401


def sink_for(intake: FakeIntake) -> DatadogSink:
    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})
    return DatadogSink(settings, timeout=(1, 2))


def events(n: int, start: int = 0) -> list[Encoded]:
    return [Encoded(json.dumps({"title": f"e{i}", "text": "x"}).encode())
            for i in range(start, start + n)]


def test_results_match_one_send_each_in_order(intake: FakeIntake) -> None:
    faults = [Fault.reject(400, "bad"), Fault(), Fault.error(503), Fault(), Fault.dropped()]
    one, many = sink_for(intake), sink_for(intake)
    try:
        intake.enqueue(*faults)
        singles = [one.send(e) for e in events(5)]
        many.fanout = 8  # as if a clean batch had opened the window
        intake.enqueue(*faults)  # taken in the order the requests reach the intake
        batch = many.send_many(events(5))
    finally:
        one.close()
        many.close()
    def key(r: object) -> tuple[str, int]:
        return (str(getattr(r, "outcome", "")), getattr(r, "status", None) or 0)

    assert sorted(map(key, batch)) == sorted(map(key, singles))
    # Each result is its own event's answer: the intake saw each title once per sink, and
    # what each event was answered is what send_many returned for it.
    answered = {r.json["title"]: r.status for r in intake.requests[5:]}
    assert [answered[f"e{i}"] for i in range(5)] == [r.status for r in batch]


def test_the_window_opens_on_several_connections_and_closes_on_a_429(
        intake: FakeIntake) -> None:
    sink = sink_for(intake)
    try:
        sizes = []
        for k in range(6):
            sizes.append(sink.fanout)
            results = sink.send_many(events(sink.fanout, start=100 * k))
            assert all(r.outcome is Outcome.DELIVERED for r in results)
        assert sizes == [1, 2, 4, 8, FANOUT, FANOUT]
        ports = {r.client_port for r in intake.requests[-FANOUT:]}
        assert len(ports) == FANOUT  # one connection per request in flight
        # ... and no more in all: the sink's own connection is the first of them
        assert {r.client_port for r in intake.requests} == ports
        intake.enqueue(Fault.rate_limited(reset=0))
        results = sink.send_many(events(FANOUT, start=1000))
        assert [r.status for r in results].count(429) == 1
        assert sum(r.outcome is Outcome.DELIVERED for r in results) == FANOUT - 1
        assert sink.fanout == 1
    finally:
        sink.close()
    titles = [r.json["title"] for r in intake.requests if r.status == 202]
    assert len(titles) == len(set(titles))  # nothing sent twice


def test_answers_of_one_batch_share_one_read_timeout(intake: FakeIntake) -> None:
    """A hung intake costs a batch one read timeout, not one per request: the answers are
    awaited together (sequentially, 16 requests x 1 s would take 16 s)."""
    import time

    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})
    sink = DatadogSink(settings, timeout=(1, 1))
    try:
        sink.fanout = FANOUT
        intake.set_mode(Fault.slow(4))
        started = time.monotonic()
        results = sink.send_many(events(FANOUT))
        elapsed = time.monotonic() - started
    finally:
        intake.set_mode(None)
        sink.close()
    assert all(r.outcome is Outcome.RETRY and "no answer within 1s" in r.errors[0]
               for r in results)
    assert elapsed < FANOUT / 2  # far below FANOUT timeouts of 1 s each
    assert sink.fanout == 1
