"""The HTTP sink against the loopback intake: one attempt per send, answers classified."""

from __future__ import annotations

import io
import json
import platform
import re
import time
from collections.abc import Iterator

import pytest
import requests

from emitter import __version__
from emitter.delivery.retry import RetryPolicy, deliver
from emitter.errors import ConfigError
from emitter.events.encode import Encoded, encode_event
from emitter.settings import Settings
from emitter.sinks.base import Outcome
from emitter.sinks.datadog import DatadogSink, user_agent
from emitter.sinks.stdout import StdoutSink
from emitter.sinks.transport import KeepAliveSession
from tests.intake import FIRST_EVENT_ID, INTAKE_KEY, FakeIntake, Fault, intake_fixture  # noqa: F401

EVENT = {"title": "Déployé payments 1.4.2 ✓", "text": "%%% \n**ok**\n %%%", "tags": ["a:b"],
         "date_happened": int(time.time())}


def make_sink(intake: FakeIntake, key: str = INTAKE_KEY, timeout: float = 2,
              session: str = "default") -> DatadogSink:
    settings = Settings.from_environ({"DD_API_KEY": key, "DATADOG_HOST": intake.url + "/"})
    if session == "requests":  # what a proxy configuration gets
        return DatadogSink(settings, timeout=(1, timeout), session=requests.Session())
    return DatadogSink(settings, timeout=(1, timeout))  # the lean transport, no proxy here


@pytest.fixture(params=["default", "requests"])
def sink(intake: FakeIntake, request: pytest.FixtureRequest) -> Iterator[DatadogSink]:
    """Each test once over the default (lean) session and once over a requests session."""
    made = make_sink(intake, session=request.param)
    yield made
    made.close()


def test_default_session_is_the_lean_transport(intake: FakeIntake) -> None:
    sink = make_sink(intake)
    assert isinstance(sink._session, KeepAliveSession)
    sink.close()


def test_202_keeps_big_id_exact(intake: FakeIntake, sink: DatadogSink) -> None:
    result = sink.send(Encoded.of(EVENT))
    assert result.outcome is Outcome.DELIVERED and result.status == 202
    assert result.event_id == str(FIRST_EVENT_ID)  # 7654321098765432101, not ...2000
    assert result.url == f"https://app.datadoghq.com/event/event?id={FIRST_EVENT_ID}"
    assert intake.events == [EVENT]


# The form Datadog's clients use, spelled out here from the parts the issue names.
EXPECTED_UA = (f"emitter/{__version__} (python {platform.python_version()}; "
               f"os {platform.system().lower()}; arch {platform.machine()})")


def test_user_agent_form() -> None:
    assert re.fullmatch(r"emitter/\d+\.\d+\.\d+\S* \(python \d+\.\d+\.\d+\S*; os [a-z0-9_]+; "
                        r"arch \S+\)", user_agent()), user_agent()
    assert user_agent() == EXPECTED_UA


def test_request_shape(intake: FakeIntake, sink: DatadogSink) -> None:
    sink.send(Encoded.of(EVENT))
    received = intake.requests[0]
    assert received.path == "/api/v1/events"
    assert received.header("DD-API-KEY") == INTAKE_KEY
    assert received.header("Content-Type") == "application/json"
    assert received.header("User-Agent") == EXPECTED_UA
    # compact, UTF-8, non-ASCII not escaped
    assert received.body == encode_event(EVENT)
    assert b" " not in received.body.split(b'"title"')[0] and "✓".encode() in received.body
    assert b": " not in received.body and b"\\u" not in received.body


def test_keep_alive_one_connection(intake: FakeIntake, sink: DatadogSink) -> None:
    for _ in range(3):
        assert sink.send(Encoded.of(EVENT)).outcome is Outcome.DELIVERED
    assert len(intake.requests) == 3
    ports = {r.client_port for r in intake.requests}
    assert len(ports) == 1 and 0 not in ports


def test_bad_key_rejected_with_forbidden(intake: FakeIntake) -> None:
    sink = make_sink(intake, key="not-the-key")
    result = sink.send(Encoded.of(EVENT))
    sink.close()
    assert result.outcome is Outcome.REJECTED and result.status == 403
    assert result.errors == ("Forbidden",)
    assert "not-the-key" not in result.detail and "not-the-key" not in repr(sink)


def test_text_plain_400_errors_parsed() -> None:
    with FakeIntake(past_window=60) as intake:
        sink = make_sink(intake)
        result = sink.send(Encoded.of({**EVENT, "date_happened": int(time.time()) - 3600}))
        sink.close()
    assert result.outcome is Outcome.REJECTED and result.status == 400
    assert result.errors == ("Event too far in the past",)


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_transient_statuses_are_retry(intake: FakeIntake, sink: DatadogSink, status: int) -> None:
    intake.enqueue(Fault.error(status, "try later"))
    result = sink.send(Encoded.of(EVENT))
    assert (result.outcome, result.status, result.errors) == (Outcome.RETRY, status, ("try later",))


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
def test_other_4xx_rejected(intake: FakeIntake, sink: DatadogSink, status: int) -> None:
    intake.enqueue(Fault.reject(status, "one", "two"))
    result = sink.send(Encoded.of(EVENT))
    assert (result.outcome, result.errors) == (Outcome.REJECTED, ("one", "two"))


def test_non_json_error_body_excerpt(intake: FakeIntake, sink: DatadogSink) -> None:
    intake.enqueue(Fault(status=400, body=b"<html>\n<b>" + b"x" * 500 + b"</b></html>",
                         content_type="text/html"))
    result = sink.send(Encoded.of(EVENT))
    assert result.outcome is Outcome.REJECTED
    (excerpt,) = result.errors
    assert excerpt.startswith("<html> <b>xxx") and excerpt.endswith("...") and len(excerpt) < 210


def test_other_2xx_is_not_success(intake: FakeIntake, sink: DatadogSink) -> None:
    intake.enqueue(Fault(status=200, body=b"{}"))
    assert sink.send(Encoded.of(EVENT)).outcome is Outcome.REJECTED


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.rate_limited(reset=3, retry_after=9), 3.0),
        (Fault.rate_limited(reset=None, retry_after=9), 9.0),
        (Fault.rate_limited(reset=None), None),
        (Fault(status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), 0.0),
        (Fault(status=503, headers={"Retry-After": "4"}), 4.0),
        (Fault(status=502, headers={"Retry-After": "4"}), None),
    ],
)
def test_retry_after(intake: FakeIntake, sink: DatadogSink, fault: Fault,
                     expected: float | None) -> None:
    intake.enqueue(fault)
    result = sink.send(Encoded.of(EVENT))
    assert result.outcome is Outcome.RETRY and result.retry_after == expected


def test_slow_answer_times_out_as_retry(intake: FakeIntake) -> None:
    sink = make_sink(intake, timeout=0.2)
    intake.enqueue(Fault.slow(3))
    started = time.monotonic()
    result = sink.send(Encoded.of(EVENT))
    sink.close()
    assert time.monotonic() - started < 2
    assert result.outcome is Outcome.RETRY and result.status is None
    assert "0.2s" in result.errors[0]


def test_dropped_connection_is_retry(intake: FakeIntake, sink: DatadogSink) -> None:
    intake.enqueue(Fault.dropped())
    result = sink.send(Encoded.of(EVENT))
    assert result.outcome is Outcome.RETRY and result.status is None
    assert "closed connection" in result.errors[0]
    assert sink.send(Encoded.of(EVENT)).outcome is Outcome.DELIVERED  # the session recovers


def test_down_is_retry_then_recovers(intake: FakeIntake, sink: DatadogSink) -> None:
    intake.down()
    result = sink.send(Encoded.of(EVENT))
    assert result.outcome is Outcome.RETRY and "refused" in result.errors[0]
    assert intake.url in result.detail
    intake.up()
    assert sink.send(Encoded.of(EVENT)).outcome is Outcome.DELIVERED


def test_huge_answer_is_bounded(intake: FakeIntake, sink: DatadogSink) -> None:
    intake.enqueue(Fault(status=500, body=b"y" * 900_000, content_type="text/plain"))
    result = sink.send(Encoded.of(EVENT))
    assert result.outcome is Outcome.RETRY and len(result.errors[0]) < 210


def test_deliver_over_http_retries_then_succeeds(intake: FakeIntake, sink: DatadogSink) -> None:
    intake.enqueue(Fault.error(503), Fault.dropped(), Fault.error(502))
    result = deliver(sink, Encoded.of(EVENT), RetryPolicy(base=0.05, max_attempts=5))
    assert result.outcome is Outcome.DELIVERED
    assert [r.status for r in intake.requests] == [503, None, 502, 202]


def test_no_key_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="DD_API_KEY"):
        DatadogSink(Settings.from_environ({}))


def test_key_reflected_in_error_body_is_redacted(intake: FakeIntake, sink: DatadogSink) -> None:
    intake.enqueue(Fault.reject(400, f"bad key {INTAKE_KEY}"),
                   Fault(status=400, body=f"no json {INTAKE_KEY}".encode()))
    for _ in range(2):
        result = sink.send(Encoded.of(EVENT))
        assert INTAKE_KEY not in repr(result)
        assert "****" in result.errors[0]


def test_stdout_sink_prints_exact_body() -> None:
    stream = io.StringIO()
    result = StdoutSink(stream).send(Encoded.of(EVENT))
    assert result.outcome is Outcome.DELIVERED and result.event_id is None
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert line[:-1].encode() == encode_event(EVENT)
    assert json.loads(line) == EVENT
