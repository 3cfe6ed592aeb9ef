"""The sender pool against the loopback intake: delivery, wake-up, stop, locks, `fire`'s path,
and the sink registry."""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.delivery.gate import Gate
from emitter.delivery.outbox import Outbox
from emitter.delivery.queued import deliver_via_outbox
from emitter.delivery.retry import RetryPolicy
from emitter.delivery.sender import Sender
from emitter.errors import ConfigError, UsageError
from emitter.events.encode import Encoded
from emitter.settings import Settings
from emitter.sinks.base import Outcome, Sink
from emitter.sinks.registry import make_sink, parse_statsd_address, sink_factory
from tests.intake import INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture

FAST = RetryPolicy(max_attempts=1_000_000, base=0.01, cap=0.05, deadline=3600)


@pytest.fixture(autouse=True)
def _no_nagle(monkeypatch: pytest.MonkeyPatch) -> None:
    # The intake writes headers and body separately; with Nagle on, every answer waits for
    # the client's delayed ACK (~40 ms). Real intakes don't do that; neither should ours.
    from tests import intake

    monkeypatch.setattr(intake._Handler, "disable_nagle_algorithm", True, raising=False)


def settings_for(intake: FakeIntake) -> Settings:
    return Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})


def marked(n: int, run: str = "") -> bytes:
    return json.dumps({"title": f"event {run}{n}", "text": "body", "tags": [f"n:{n}"]}).encode()


def titles(intake: FakeIntake) -> list[str]:
    return [e["title"] for e in intake.events]


@pytest.fixture
def dd_sink(intake: FakeIntake) -> Iterator[Sink]:
    sink = make_sink("datadog", settings_for(intake))
    yield sink
    sink.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.in_dir(tmp_path)
    yield box
    box.close()


def sender_for(outbox: Outbox, intake: FakeIntake, **kwargs: object) -> Sender:
    kwargs.setdefault("policy", FAST)
    return Sender(outbox, sink_factory("datadog", settings_for(intake), timeout=5), **kwargs)


def test_drains_everything_exactly_once(intake: FakeIntake, outbox: Outbox) -> None:
    outbox.enqueue([("r", marked(i)) for i in range(300)])
    sender = sender_for(outbox, intake)
    sender.start()
    try:
        assert sender.drain(timeout=30)
    finally:
        assert sender.stop(5)
    assert sorted(titles(intake)) == sorted(f"event {i}" for i in range(300))
    assert sender.counters().sent == 300
    status = outbox.status()
    assert status.events == 0 and status.counters["delivered"] == 300


def test_the_stored_bytes_are_posted_unchanged(intake: FakeIntake, outbox: Outbox) -> None:
    # Spacing and key order a re-encoding would change: the sender must not decode them.
    body = '{ "text" : "b\u00e9",  "title":"t" }'.encode()
    outbox.enqueue([("r", body)])
    sender = sender_for(outbox, intake)
    sender.start()
    try:
        assert sender.drain(timeout=30)
    finally:
        sender.stop(5)
    (received,) = intake.requests
    assert received.body == body


def test_transient_errors_are_retried(intake: FakeIntake, outbox: Outbox) -> None:
    intake.enqueue(Fault.error(503), Fault.dropped(), Fault.error(408), Fault.error(500))
    outbox.enqueue([("r", marked(i)) for i in range(10)])
    sender = sender_for(outbox, intake, workers=2)
    sender.start()
    try:
        assert sender.drain(timeout=30)
    finally:
        sender.stop(5)
    assert sorted(titles(intake)) == sorted(f"event {i}" for i in range(10))
    assert sender.counters().retried == 4


def test_wakes_on_enqueue_without_polling(intake: FakeIntake, outbox: Outbox) -> None:
    sender = sender_for(outbox, intake, idle_poll=60.0)
    sender.start()
    try:
        time.sleep(0.2)  # the dispatcher is now idle, waiting up to 60 s
        outbox.enqueue([("r", marked(1))])
        intake.wait_for_events(1, timeout=10)  # far less than the 60 s idle wait
    finally:
        sender.stop(5)


def test_stop_lets_inflight_finish_and_leaves_the_rest(intake: FakeIntake, outbox: Outbox) -> None:
    intake.set_mode(Fault.slow(0.5))
    outbox.enqueue([("r", marked(i)) for i in range(40)])
    sender = sender_for(outbox, intake, workers=2)
    sender.start()
    intake.wait_for(2, timeout=10)
    assert sender.stop(grace=5)
    sent = sender.counters().sent
    assert sent >= 2  # the two requests in flight at stop() were allowed to finish
    status = outbox.status()
    assert status.inflight == 0 and status.pending == 40 - sent
    assert len(intake.events) == sent


def test_one_sender_per_outbox(intake: FakeIntake, outbox: Outbox) -> None:
    first = sender_for(outbox, intake)
    first.start()
    try:
        with Outbox(outbox.path) as same, pytest.raises(ConfigError, match="already being sent"):
            sender_for(same, intake).start()
    finally:
        first.stop(5)
    second = sender_for(outbox, intake)
    second.start()  # the lock went with the first sender
    second.stop(5)


def test_gate_pauses_everyone_and_backs_off_after_a_run_of_failures() -> None:
    gate = Gate(RetryPolicy(base=10, cap=10), random.Random(1))
    gate.failed()
    gate.failed()
    assert gate.remaining() == 0  # two failures: not yet a pattern
    gate.failed()
    assert gate.remaining() > 0
    gate.succeeded()
    fresh = Gate(RetryPolicy(), random.Random(1))
    fresh.pause(5)
    assert 4 < fresh.remaining() <= 5


# ---- `emitter fire` through the outbox -----------------------------------------------------


def test_fire_path_delivered_leaves_nothing(intake: FakeIntake, outbox: Outbox,
                                            dd_sink: Sink) -> None:
    sink = dd_sink
    event = {"title": "fired", "text": "x"}
    done = deliver_via_outbox(outbox, sink, "r", Encoded.of(event), FAST, sleep=lambda s: None)
    assert done.result.outcome is Outcome.DELIVERED and not done.queued
    assert done.result.event_id and outbox.status().events == 0
    assert intake.events == [event]


def test_fire_path_rejected_is_a_dead_letter(intake: FakeIntake, outbox: Outbox,
                                             dd_sink: Sink) -> None:
    intake.enqueue(Fault.reject(400, "Event too far in the past", content_type="text/plain"))
    sink = dd_sink
    done = deliver_via_outbox(outbox, sink, "r", Encoded.of({"title": "old", "text": "x"}), FAST)
    assert done.dead and done.result.status == 400
    (row,) = outbox.list(dead=True)
    assert row.id == done.event_id and row.last_error == "Event too far in the past"


def test_fire_path_gives_up_but_keeps_the_event(intake: FakeIntake, outbox: Outbox,
                                                dd_sink: Sink) -> None:
    intake.set_mode(Fault.error(503))
    sink = dd_sink
    policy = RetryPolicy(max_attempts=3, base=0.01, cap=0.01, deadline=5)
    done = deliver_via_outbox(outbox, sink, "r", Encoded.of({"title": "later", "text": "x"}),
                              policy)
    assert done.queued and done.result.outcome is Outcome.RETRY
    (row,) = outbox.list()
    assert (row.state, row.attempts, row.last_status) == ("pending", 3, 503)
    intake.set_mode(None)
    sender = sender_for(outbox, intake)
    sender.start()
    try:
        assert sender.drain(timeout=10)
    finally:
        sender.stop(5)
    assert titles(intake)[-1] == "later"


def test_a_running_sender_does_not_take_fires_event(intake: FakeIntake, outbox: Outbox,
                                                    dd_sink: Sink) -> None:
    sender = sender_for(outbox, intake)
    sender.start()
    try:
        intake.set_mode(Fault.slow(0.3))
        deliver_via_outbox(outbox, dd_sink, "r", Encoded.of({"title": "once", "text": "x"}),
                           FAST)
        time.sleep(0.3)
    finally:
        sender.stop(5)
    assert titles(intake) == ["once"]


# ---- the registry -------------------------------------------------------------------------


def test_registry_builds_each_sink(tmp_path: Path, intake: FakeIntake) -> None:
    settings = settings_for(intake)
    stream = io.StringIO()
    sinks = [make_sink("datadog", settings),
             make_sink("dogstatsd", settings, address="127.0.0.1:8125"),
             make_sink("stdout", settings, stream=stream),
             make_sink("file", settings, path=tmp_path / "a.jsonl")]
    assert [s.name for s in sinks] == ["datadog", "dogstatsd", "stdout", "file"]
    for sink in sinks:
        assert sink.send(Encoded.of({"title": "t", "text": "x"})).outcome is Outcome.DELIVERED
        sink.close()
    assert json.loads(stream.getvalue()) == {"title": "t", "text": "x"}
    with pytest.raises(UsageError, match="unknown sink 'kafka'; choose one of: datadog"):
        make_sink("kafka", settings)
    with pytest.raises(UsageError, match="needs a path"):
        make_sink("file", settings)
    with pytest.raises(ConfigError, match="DD_API_KEY"):
        make_sink("datadog", Settings.from_environ({}))


def test_statsd_addresses() -> None:
    assert parse_statsd_address("10.0.0.1:8125") == {"host": "10.0.0.1", "port": 8125}
    assert parse_statsd_address("udp://agent:9125") == {"host": "agent", "port": 9125}
    assert parse_statsd_address("unix:///var/run/dsd.sock") == {"socket_path": "/var/run/dsd.sock"}
    for bad in ("agent", "tcp://agent:1", "udp://agent:notaport", "unix://"):
        with pytest.raises(ConfigError):
            parse_statsd_address(bad)


class _Flaky:
    """A sink whose first send raises (a bug), then delivers: the worker must survive it."""

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, event: Encoded, *, budget: float | None = None) -> object:
        from emitter.sinks.base import DeliveryResult

        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("boom")
        return DeliveryResult(Outcome.DELIVERED)

    def close(self) -> None:
        pass


def test_a_sink_bug_is_a_retry_not_a_dead_worker(outbox: Outbox) -> None:
    outbox.enqueue([("r", marked(i)) for i in range(5)])
    sender = Sender(outbox, _Flaky, workers=1, policy=FAST)
    sender.start()
    try:
        assert sender.drain(timeout=10)
    finally:
        sender.stop(5)
    assert sender.counters().sent == 5 and sender.counters().retried == 1
    last = outbox.status().last_error or ""
    assert "internal error in the flaky sink: RuntimeError('boom')" in last
