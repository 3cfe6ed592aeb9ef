"""The fake intake itself answers like Datadog's: other tests rely on these behaviours."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from contextlib import closing
from typing import Any

import pytest

from tests.intake import EVENTS_PATH, INTAKE_KEY, FakeIntake, Fault, intake_fixture  # noqa: F401


def post(
    intake: FakeIntake,
    body: Any,
    *,
    key: str | None = INTAKE_KEY,
    conn: http.client.HTTPConnection | None = None,
    timeout: float = 5,
) -> tuple[int, dict[str, str], bytes]:
    if conn is None:
        with closing(http.client.HTTPConnection("127.0.0.1", intake.port, timeout=timeout)) as c:
            return post(intake, body, key=key, conn=c)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["DD-API-KEY"] = key
    conn.request("POST", EVENTS_PATH, body=data, headers=headers)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def test_accepts_event_with_big_exact_id(intake: FakeIntake) -> None:
    status, headers, body = post(intake, {"title": "t", "text": "x", "tags": ["a:b"]})
    assert status == 202
    parsed = json.loads(body)
    event = parsed["event"]
    assert parsed["status"] == "ok"
    assert event["id"] > 2**53
    assert str(event["id"]) == event["id_str"]
    assert float(event["id"]) != event["id"]  # a float round-trip would corrupt it
    assert event["url"].endswith(f"id={event['id_str']}")
    assert event["title"] == "t" and event["tags"] == ["a:b"]
    assert intake.events == [{"title": "t", "text": "x", "tags": ["a:b"]}]
    # the second event gets a different id
    _, _, body2 = post(intake, {"title": "t", "text": "x"})
    assert json.loads(body2)["event"]["id_str"] != event["id_str"]


@pytest.mark.parametrize("key", [None, "wrong"])
def test_bad_key_is_forbidden(intake: FakeIntake, key: str | None) -> None:
    status, _, body = post(intake, {"title": "t", "text": "x"}, key=key)
    assert (status, json.loads(body)) == (403, {"errors": ["Forbidden"]})
    assert intake.events == []
    assert intake.requests[0].status == 403


def test_not_json_is_400(intake: FakeIntake) -> None:
    status, _, body = post(intake, b"{nope")
    assert status == 400 and "errors" in json.loads(body)


def test_too_far_in_the_past_is_text_plain_400() -> None:
    with FakeIntake(past_window=3600) as intake:
        status, headers, body = post(intake, {"title": "t", "text": "x",
                                              "date_happened": int(time.time()) - 7200})
        assert status == 400
        assert headers["content-type"] == "text/plain"
        assert json.loads(body) == {"errors": ["Event too far in the past"]}
        ok, _, _ = post(intake, {"title": "t", "text": "x", "date_happened": int(time.time())})
        assert ok == 202


def test_queued_faults_apply_in_order_then_normal(
    intake: FakeIntake, request: pytest.FixtureRequest
) -> None:
    intake.enqueue(Fault.error(503), Fault.rate_limited(reset=2, retry_after=3))
    conn = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=5)
    request.addfinalizer(conn.close)
    first = post(intake, {"title": "t", "text": "x"}, conn=conn)
    second = post(intake, {"title": "t", "text": "x"}, conn=conn)
    third = post(intake, {"title": "t", "text": "x"}, conn=conn)
    assert [first[0], second[0], third[0]] == [503, 429, 202]
    assert second[1]["x-ratelimit-reset"] == "2"
    assert second[1]["retry-after"] == "3"
    assert second[1]["x-ratelimit-name"] == "events_post"
    assert [r.status for r in intake.requests] == [503, 429, 202]


def test_keep_alive_connection_is_reused(
    intake: FakeIntake, request: pytest.FixtureRequest
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=5)
    request.addfinalizer(conn.close)
    post(intake, {"title": "t", "text": "x"}, conn=conn)
    sock = conn.sock
    post(intake, {"title": "t", "text": "x"}, conn=conn)
    assert sock is not None and conn.sock is sock


def test_standing_mode_until_cleared(intake: FakeIntake) -> None:
    intake.set_mode(Fault.reject(400, "nope", content_type="text/plain"))
    assert post(intake, {"title": "t", "text": "x"})[0] == 400
    assert post(intake, {"title": "t", "text": "x"})[0] == 400
    intake.set_mode(None)
    assert post(intake, {"title": "t", "text": "x"})[0] == 202


def test_slow_answer(intake: FakeIntake) -> None:
    intake.enqueue(Fault.slow(0.3))
    started = time.monotonic()
    assert post(intake, {"title": "t", "text": "x"})[0] == 202
    assert time.monotonic() - started >= 0.3
    intake.enqueue(Fault.slow(2))
    with pytest.raises(socket.timeout):
        post(intake, {"title": "t", "text": "x"}, timeout=0.2)


def test_dropped_connection(intake: FakeIntake) -> None:
    intake.enqueue(Fault.dropped())
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        post(intake, {"title": "t", "text": "x"})
    assert intake.requests[0].status is None
    assert post(intake, {"title": "t", "text": "x"})[0] == 202


def test_down_refuses_then_up_on_same_port(
    intake: FakeIntake, request: pytest.FixtureRequest
) -> None:
    port = intake.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    request.addfinalizer(conn.close)
    post(intake, {"title": "t", "text": "x"}, conn=conn)
    intake.down()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        post(intake, {"title": "t", "text": "x"}, conn=conn)  # the kept-alive one is closed too
    intake.up()
    assert intake.port == port
    assert post(intake, {"title": "t", "text": "x"})[0] == 202


def test_down_for_comes_back(intake: FakeIntake) -> None:
    timer = intake.down_for(0.3)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", intake.port), timeout=1)
    timer.join(10)  # comes back by itself (a sleep could wake before a loaded timer fires)
    assert intake.is_up
    assert post(intake, {"title": "t", "text": "x"})[0] == 202


def test_records_headers_and_waits(intake: FakeIntake) -> None:
    def later() -> None:
        time.sleep(0.2)
        post(intake, {"title": "late", "text": "x"})

    thread = threading.Thread(target=later)
    thread.start()
    received = intake.wait_for_events(1, timeout=5)
    thread.join()
    assert received[0].header("DD-API-KEY") == INTAKE_KEY
    assert received[0].json == {"title": "late", "text": "x"}
    with pytest.raises(TimeoutError):
        intake.wait_for(5, timeout=0.1)


def test_concurrent_requests_all_recorded(intake: FakeIntake) -> None:
    threads = [
        threading.Thread(target=post, args=(intake, {"title": str(i), "text": "x"}))
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(e["title"]) for e in intake.events) == list(range(20))
