"""The daemon's HTTP front on real loopback sockets: slow clients are bounded (header and body
deadlines, idle keep-alive, connections per listener) and malformed requests get a 4xx answer,
never a dropped connection or a traceback on stderr (issue 9 items 7 and 8)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from emitter.daemon.front import Front
from emitter.daemon.listener import Listener
from emitter.httpmsg import Limits, Request, Response
from emitter.problems import Location
from emitter.rules.model import Rule, WebhookTrigger
from emitter.triggers.base import Firing
from emitter.triggers.webhook import WebhookServer

TOKEN = "front-test-token"
HANG_GUARD = 30.0  # seconds: a socket read longer than this means the server hung


class Front_:
    """A webhook rule (token auth) behind the daemon's front on a real listener."""

    def __init__(self, limits: Limits) -> None:
        rule = Rule(id="hook", location=Location("r.yaml", 1, 1), event={},
                    trigger=WebhookTrigger(path="/hooks/x", token_env="T"))
        self.fired: list[Firing] = []
        self.webhook = WebhookServer([rule], self.fired.extend, lambda r, m: None,
                                     environ={"T": TOKEN})
        self.webhook.start()
        front = Front(lambda: {"status": "ok"})
        front.webhook = self.webhook.handle
        self.listener = Listener(("127.0.0.1", 0), front.app, limits)
        self.listener.start()
        self.port = self.listener.address[1]

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=HANG_GUARD)
        return sock

    def post(self, body: bytes = b'{"a": 1}') -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HANG_GUARD)
        try:
            conn.request("POST", "/hooks/x", body=body, headers={"X-Emitter-Token": TOKEN})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()


@pytest.fixture
def front(request: pytest.FixtureRequest) -> Iterator[Front_]:
    limits = getattr(request, "param", Limits(header_timeout=2, body_timeout=2, idle_timeout=2))
    f = Front_(limits)
    yield f
    f.listener.stop()


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the hang guard)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


# ---- slow clients (item 7) -------------------------------------------------------------------

def test_a_trickled_head_gets_408_at_the_header_deadline(front: Front_) -> None:
    # http.server's timeout restarted with every byte: one header line a second held the
    # thread forever. The head has one deadline from its first byte.
    with front.connect() as sock:
        sock.sendall(b"POST /hooks/x HTTP/1.1\r\n")
        answer = b""
        for n in range(int(HANG_GUARD)):
            try:
                sock.sendall(f"X-Slow-{n}: 1\r\n".encode())
            except OSError:  # the server hung up after answering
                break
            sock.settimeout(0.5)
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if answer:
                break
        assert answer.startswith(b"HTTP/1.1 408 ")


def test_an_idle_keep_alive_connection_is_closed(front: Front_) -> None:
    with front.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert answer_of(sock) == b""  # closed after idle_timeout, nothing more said


def _slow_connections(stack: ExitStack, front: Front_, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = stack.enter_context(front.connect())
        sock.sendall(b"POST /hooks/x HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        socks.append(sock)
    return socks


@pytest.mark.parametrize("front", [Limits(header_timeout=60, body_timeout=60)], indirect=True)
def test_hundreds_of_slow_connections_do_not_delay_a_real_request(front: Front_) -> None:
    with ExitStack() as stack:
        _slow_connections(stack, front, 400)
        deadline = time.monotonic() + HANG_GUARD
        while front.listener.connections < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert front.post() == 202
        status, _, _ = _get(front, "/healthz")
        assert status == 200
    assert len(front.fired) == 1


@pytest.mark.parametrize("front", [Limits(header_timeout=60, max_connections=50)],
                         indirect=True)
def test_a_full_listener_drops_the_longest_waiting_connection_for_a_new_one(
        front: Front_) -> None:
    with ExitStack() as stack:
        socks = _slow_connections(stack, front, 200)  # four times the bound
        assert front.post() == 202
        # The oldest were hung up on to make room; the listener stays within its bound.
        assert answer_of(socks[0]) == b""
        assert front.listener.connections <= 50


def _get(front: Front_, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=HANG_GUARD)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


# ---- malformed requests (item 8) -------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_NUMBER = b'{"n": ' + b"9" * 5000 + b"}"


def raw(front: Front_, data: bytes) -> bytes:
    with front.connect() as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return answer_of(sock)


def post_bytes(body: bytes, *headers: bytes, token: bool = True) -> bytes:
    lines = [b"POST /hooks/x HTTP/1.1", b"Host: x", *headers]
    if token:
        lines.append(f"X-Emitter-Token: {TOKEN}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.mark.parametrize(("data", "why"), [
    (post_bytes(b"{}", "Content-Length: ²".encode(), token=False), b"Content-Length"),
    (post_bytes(b"{}", b"Content-Length: 2", b"Content-Length: 2"), b"more than one"),
    (post_bytes(b"{}", b"Content-Length: 2, 2"), b"more than one"),
    (post_bytes(b"{}", b"Content-Length: -2"), b"Content-Length"),
    (post_bytes(DEEP, f"Content-Length: {len(DEEP)}".encode()), b"nested deeper"),
    (post_bytes(HUGE_NUMBER, f"Content-Length: {len(HUGE_NUMBER)}".encode()), b"digits"),
    (post_bytes(b"{}", b"Content-Length: 2", b"Transfer-Encoding: chunked"), b"both"),
    (b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n", b"malformed header"),
    (b"GET /healthz HTTP/1.1\r\n folded: x\r\n\r\n", b"malformed header"),
    (b"GARBAGE\r\n\r\n", b"malformed request line"),
    (b"GET http://evil/ HTTP/1.1\r\n\r\n", b"must be a path"),
    (b"GET /healthz HTTP/1.1\r\nHost: x", b"incomplete request head"),
    (post_bytes(b"{", b"Content-Length: 9"), b"body ended"),
])
def test_malformed_requests_get_a_400_and_nothing_on_stderr(
        front: Front_, data: bytes, why: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    answer = raw(front, data)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    if why not in (b"nested deeper", b"digits"):  # a JSON error keeps the connection
        assert b"Connection: close" in answer
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert why in json.loads(body)["error"].encode()
    assert front.fired == []
    assert "Traceback" not in capfd.readouterr().err


def test_content_length_squared_is_refused_before_authentication(front: Front_) -> None:
    # Without a token the answer would be 401 once the body was read: the length is checked
    # first, and never handed to int() (which raised on '²').
    answer = raw(front, post_bytes(b"{}", "Content-Length: ²".encode(), token=False))
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_other_limits_have_their_own_status(front: Front_) -> None:
    assert raw(front, b"GET / HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    many = b"".join(f"X-{n}: 1\r\n".encode() for n in range(200))
    assert raw(front, b"GET / HTTP/1.1\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431 ")
    assert raw(front, post_bytes(b"", b"Transfer-Encoding: chunked")).startswith(
        b"HTTP/1.1 411 ")
    assert raw(front, b"POST /hooks/x HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 411 ")


def test_a_failing_route_is_a_500_logged_through_logging(
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    listener = Listener(("127.0.0.1", 0), broken)
    listener.start()
    try:
        with caplog.at_level(logging.ERROR, logger="emitter"), socket.create_connection(
                ("127.0.0.1", listener.address[1]), timeout=HANG_GUARD) as sock:
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = answer_of(sock)
    finally:
        listener.stop()
    assert answer.startswith(b"HTTP/1.1 500 ")
    assert any("internal error answering GET /x" in r.getMessage() for r in caplog.records)


def test_header_and_target_byte_classes_are_the_rfc_ones() -> None:
    """The regexes the parser uses refuse exactly the bytes RFC 9110/9112 refuse: controls
    but tab in a field value, anything but visible ASCII in a request target."""
    from emitter.httpmsg import _CONTROL, _NOT_VISIBLE

    for c in range(256):
        byte = bytes([c])
        assert bool(_CONTROL.search(byte)) == ((c < 0x20 and c != 0x09) or c == 0x7F), c
        assert bool(_NOT_VISIBLE.search(byte)) == (c < 0x21 or c > 0x7E), c
