"""The daemon's bounded HTTP listeners: one `Listener` per port, each running the same `App`.

Why our own loop on the standard library's threading server, not http.server or a library:
a webhook answer waits for the outbox commit, so a thread per connection fits the work and
needs no new dependency; http.server has no total header deadline (its socket timeout
restarts with every byte, so a client trickling a header line every few seconds held its
thread forever), handed malformed lengths to `int()` and printed tracebacks on stderr past
the log format. Here a request head has one deadline from its first byte
(`Limits.header_timeout`), the body another (`body_timeout`), a kept-alive connection waits
`idle_timeout` for its next request, and a listener holds at most `max_connections`: when
full, the connection that has waited longest for a complete request is closed to make room,
so slow clients never lock a real one out. Threads blocked in `recv` cost no CPU. Every
malformed request gets a 4xx answer; an app that raises gets a 500 and a log line.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import socketserver
import threading
import time
from typing import Any

from emitter.httpmsg import (
    App,
    BadRequest,
    Limits,
    Response,
    encode_response,
    error_response,
    parse_head,
    to_request,
)

log = logging.getLogger(__name__)
_BODY_METHODS = ("POST", "PUT", "PATCH")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class _Closed(Exception):
    """The client went away, or sent nothing before the deadline: nothing to answer."""


class _Reader:
    """Reads from a socket against deadlines (a trickling client does not extend them)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _recv(self, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        return self.sock.recv(65536)

    def head(self, first_wait: float, limits: Limits) -> bytes:
        """The next request head; _Closed when none starts within `first_wait`."""
        if not self.buf:
            try:
                chunk = self._recv(time.monotonic() + first_wait)
            except OSError:
                raise _Closed from None
            if not chunk:
                raise _Closed
            self.buf = chunk
        deadline = time.monotonic() + limits.header_timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")  # stray CRLF between requests (RFC 9112)
            end = _HEAD_END.search(self.buf)
            if end is not None:
                head, self.buf = self.buf[: end.start()], self.buf[end.end():]
                if len(head) > limits.max_head:
                    raise BadRequest(431, "request head too large")
                return head
            if len(self.buf) > limits.max_head:
                raise BadRequest(431, "request head too large")
            chunk = self._timed(deadline, "the request head")
            if not chunk:
                raise BadRequest(400, "incomplete request head") if self.buf else _Closed
            self.buf += chunk

    def body(self, length: int, limits: Limits) -> bytes:
        deadline = time.monotonic() + limits.body_timeout
        while len(self.buf) < length:
            chunk = self._timed(deadline, "the body")
            if not chunk:  # half-closed mid-body: it may still read the answer
                raise BadRequest(400, "the body ended before Content-Length bytes")
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return body

    def _timed(self, deadline: float, what: str) -> bytes:
        try:
            return self._recv(deadline)
        except TimeoutError:
            raise BadRequest(408, f"{what} did not arrive in time") from None
        except OSError:
            raise _Closed from None


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], app: App, limits: Limits) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.limits = limits
        # socket -> monotonic time it started waiting for a request; None while answering.
        self.waiting: dict[socket.socket, float | None] = {}
        self.slots = threading.Lock()
        super().__init__(address, _Connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._make_room():
            self._refuse(request)
            return
        with self.slots:
            self.waiting[request] = time.monotonic()
        super().process_request(request, client_address)

    def _make_room(self) -> bool:
        """Below the bound, or made so by closing the connection idle the longest."""
        with self.slots:
            if len(self.waiting) < self.limits.max_connections:
                return True
            idle = [(since, s) for s, since in self.waiting.items() if since is not None]
            if not idle:
                return False
            victim = min(idle, key=lambda pair: pair[0])[1]
            del self.waiting[victim]
        _hang_up(victim)
        return True

    def _refuse(self, request: socket.socket) -> None:
        busy = error_response(503, "too many connections", **{"Retry-After": "1"})
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(encode_response(busy, close=True))
        self.shutdown_request(request)

    def mark(self, sock: socket.socket, waiting: bool) -> None:
        with self.slots:
            if sock in self.waiting:
                self.waiting[sock] = time.monotonic() if waiting else None

    def forget(self, sock: socket.socket) -> None:
        with self.slots:
            self.waiting.pop(sock, None)

    def hang_up_all(self) -> None:
        with self.slots:
            socks = list(self.waiting)
            self.waiting.clear()
        for sock in socks:
            _hang_up(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback on stderr, past the log format and redaction.
        log.error("http connection failed", exc_info=True)


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in recv on it


class _Connection(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def handle(self) -> None:
        limits = self.server.limits
        reader = _Reader(self.request)
        wait = limits.header_timeout
        while True:
            self.server.mark(self.request, waiting=True)
            try:
                head = parse_head(reader.head(wait, limits), limits)
                answer, close = self._answer(head, reader)
            except _Closed:
                return
            except BadRequest as exc:
                self._send(error_response(exc.status, exc.message), close=True)
                return
            if not self._send(answer, close, head_only=head.method == "HEAD") or close:
                return
            wait = limits.idle_timeout

    def finish(self) -> None:
        self.server.forget(self.request)

    def _answer(self, head: Any, reader: _Reader) -> tuple[Response, bool]:
        limits = self.server.limits
        if head.chunked or (head.content_length is None and head.method in _BODY_METHODS):
            raise BadRequest(411, "a Content-Length is required")
        length = head.content_length or 0
        if length > limits.max_body:
            raise BadRequest(413, f"body larger than {limits.max_body} bytes")
        request = to_request(head, reader.body(length, limits))
        self.server.mark(self.request, waiting=False)
        try:
            answer = self.server.app(request)
        except Exception:  # noqa: BLE001 - the client gets a 500, the log the rest
            log.exception("internal error answering %s %s", request.method, request.path)
            answer = error_response(500, "internal error")
        return answer, not head.keep_alive

    def _send(self, answer: Response, close: bool, head_only: bool = False) -> bool:
        try:
            self.request.settimeout(self.server.limits.write_timeout)
            self.request.sendall(encode_response(answer, close=close, head_only=head_only))
        except OSError:
            return False
        return True


class Listener:
    """One bound port serving `app` in a daemon thread. Binds in the constructor (OSError
    when the address is taken); `start()` serves, `stop()` closes every connection."""

    def __init__(self, address: tuple[str, int], app: App, limits: Limits | None = None,
                 name: str = "http") -> None:
        self._server = _Server(address, app, limits or Limits())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def connections(self) -> int:
        with self._server.slots:
            return len(self._server.waiting)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._server.hang_up_all()
