"""DatadogSink over the lean keep-alive transport: every answer the intake can give is
classified exactly as over a requests session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emitter.settings import Settings
from emitter.sinks.base import DeliveryResult, Outcome
from emitter.sinks.datadog import DatadogSink
from emitter.sinks.registry import make_sink
from emitter.sinks.transport import KeepAliveSession
from tests.intake import FIRST_EVENT_ID, INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture

EVENT = {"title": "Déployé", "text": "x"}


@pytest.fixture
def settings(intake: FakeIntake) -> Settings:
    return Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})


@pytest.fixture
def lean(settings: Settings) -> Iterator[DatadogSink]:
    sink = DatadogSink(settings, timeout=(1, 0.5),
                       session=KeepAliveSession(settings.base_url))  # type: ignore[arg-type]
    yield sink
    sink.close()


@pytest.fixture
def classic(settings: Settings) -> Iterator[DatadogSink]:
    sink = DatadogSink(settings, timeout=(1, 0.5))
    yield sink
    sink.close()


def same(a: DeliveryResult, b: DeliveryResult) -> tuple[object, ...]:
    assert (a.outcome, a.status, a.errors) == (b.outcome, b.status, b.errors)
    assert a.retry_after == b.retry_after
    return (a.outcome, a.status)


def test_registry_uses_it_without_a_proxy(settings: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sink = make_sink("datadog", settings)
    assert isinstance(sink._session, KeepAliveSession)  # type: ignore[attr-defined]
    sink.close()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    sink = make_sink("datadog", settings)
    assert not isinstance(sink._session, KeepAliveSession)  # type: ignore[attr-defined]
    sink.close()


def test_accepted_keeps_the_big_id(lean: DatadogSink, intake: FakeIntake) -> None:
    result = lean.send(EVENT)
    assert result.outcome is Outcome.DELIVERED and result.event_id == str(FIRST_EVENT_ID)
    assert intake.events == [EVENT]
    assert intake.requests[0].header("dd-api-key") == INTAKE_KEY


@pytest.mark.parametrize("fault", [
    Fault.reject(400, "Event too far in the past", content_type="text/plain"),
    Fault.reject(403, "Forbidden"),
    Fault.error(503),
    Fault.error(408, "Request Timeout"),
    Fault.rate_limited(reset=7),
    Fault.rate_limited(reset=None, retry_after=3),
], ids=["400-text", "403", "503", "408", "429-reset", "429-retry-after"])
def test_answers_classified_like_requests(lean: DatadogSink, classic: DatadogSink,
                                          intake: FakeIntake, fault: Fault) -> None:
    intake.enqueue(fault, fault)
    same(lean.send(EVENT), classic.send(EVENT))
    assert lean.send(EVENT).outcome is Outcome.DELIVERED  # the connection is still usable


def test_no_answer_is_retry(lean: DatadogSink, intake: FakeIntake) -> None:
    intake.enqueue(Fault.dropped())
    dropped = lean.send(EVENT)
    assert dropped.outcome is Outcome.RETRY and dropped.status is None
    intake.enqueue(Fault.slow(2))
    slow = lean.send(EVENT)
    assert slow.outcome is Outcome.RETRY and "no answer within 0.5s" in slow.errors[0]
    assert lean.send(EVENT).outcome is Outcome.DELIVERED  # a fresh connection after both


def test_intake_down_then_up_reconnects(lean: DatadogSink, intake: FakeIntake) -> None:
    assert lean.send(EVENT).outcome is Outcome.DELIVERED
    intake.down()  # closes the idle keep-alive connection too
    refused = lean.send(EVENT)
    assert refused.outcome is Outcome.RETRY and "refused" in refused.errors[0].lower()
    intake.up()
    assert lean.send(EVENT).outcome is Outcome.DELIVERED
    assert len(intake.events) == 2


def test_key_never_in_errors(lean: DatadogSink, intake: FakeIntake) -> None:
    intake.down()
    result = lean.send(EVENT)
    assert INTAKE_KEY not in repr(result) and INTAKE_KEY not in repr(lean)


def test_header_injection_is_refused() -> None:
    from emitter.sinks.transport import _request

    assert _request("/p", "h:1", {"A": "b"}, b"{}") == (
        b"POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\nA: b\r\n\r\n{}")
    for bad in ("x\r\nEvil: 1", "x\nEvil: 1", "x\rEvil"):
        with pytest.raises(ValueError, match="line break"):
            _request("/p", "h", {"A": bad}, b"")
