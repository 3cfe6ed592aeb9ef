"""A fake Datadog events intake on loopback: a real HTTP/1.1 server that answers like the API.

It plays `POST /api/v1/events` as the live API does (see shared/reference/datadog-events.md):

* `DD-API-KEY` is checked against `api_key`; a wrong or missing key gets
  403 `{"errors": ["Forbidden"]}`.
* The body must be a JSON object (400 otherwise); an integer `date_happened` older than
  `past_window` seconds gets 400 `{"errors": ["Event too far in the past"]}` served as
  **text/plain**, like the recorded API answer.
* Success is 202 `{"status": "ok", "event": {"id": <int above 2**53>, "id_str": "<same>",
  "url": "https://app.datadoghq.com/event/event?id=<id>", "title": ..., ...}}`.

Faults are programmable. `enqueue(*faults)` queues faults that apply to the next requests,
one each, in order; `set_mode(fault)` sets a standing fault for every request once the queue is
empty (`set_mode(None)` clears it). A `Fault` can answer a status with headers and a body,
wait before answering (`delay`), or drop the connection without answering (`drop`). Use the
constructors: `Fault.rate_limited(reset=2)`, `Fault.error(503)`, `Fault.reject(400, "msg")`,
`Fault.slow(5)`, `Fault.dropped()`. `down()` closes the listening socket and every open
connection (clients then get "connection refused"); `up()` listens again on the same port;
`down_for(seconds)` does both.

Every request is recorded, thread-safely, as a `Received` (monotonic arrival time, method,
path, lower-cased headers, raw body, parsed JSON, the status it was answered with or None
when dropped). `requests` lists them all; `events` lists the JSON bodies answered 202;
`wait_for(n, timeout)` / `wait_for_events(n, timeout)` block until that many arrived.
`Received.time` is `time.monotonic()`, which is system-wide on Linux, so it compares with
clocks taken in a subprocess too.

    from tests.intake import FakeIntake, Fault

    with FakeIntake(api_key="test-key") as intake:
        intake.enqueue(Fault.error(503), Fault.rate_limited(reset=1))
        ...  # point DATADOG_HOST at intake.url and post
        intake.wait_for_events(1, timeout=5)
        assert intake.requests[2].time - intake.requests[1].time >= 1

In tests, use the `intake` fixture: `from tests.intake import intake_fixture  # noqa: F401`
then take `intake` as an argument (api key `INTAKE_KEY`).

Standalone (benchmarks, demos): `python tests/intake.py --port 8126 --api-key KEY`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVENTS_PATH = "/api/v1/events"
INTAKE_KEY = "intake-test-key-0123456789abcdef"
MAX_BODY = 1024 * 1024  # bigger bodies are refused with 413 before being read
# Above 2**53 and not exactly representable as a double: a float round-trip changes it.
FIRST_EVENT_ID = 7_654_321_098_765_432_101


@dataclass(frozen=True)
class Fault:
    """One programmed misbehaviour. `status=None` and `drop=False` means "answer normally"
    (after `delay`); `drop=True` closes the connection without any answer (after `delay`)."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def rate_limited(
        cls,
        reset: float | None = 1,
        *,
        retry_after: float | None = None,
        limit: int = 250_000,
        period: int = 60,
    ) -> Fault:
        """429 with Datadog's X-RateLimit-* headers (`reset=None` leaves Reset out) and,
        when given, a Retry-After header."""
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Period": str(period),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Name": "events_post",
        }
        if reset is not None:
            headers["X-RateLimit-Reset"] = _num(reset)
        if retry_after is not None:
            headers["Retry-After"] = _num(retry_after)
        return cls(429, headers, _errors_body("Too many requests"))

    @classmethod
    def error(cls, status: int = 503, message: str = "Service Unavailable") -> Fault:
        """A transient server-side answer (408, 500, 502, 503, ...) with an errors body."""
        return cls(status, {}, _errors_body(message))

    @classmethod
    def reject(
        cls, status: int = 400, *messages: str, content_type: str = "application/json"
    ) -> Fault:
        """A permanent refusal with `{"errors": [messages...]}`."""
        return cls(status, {}, _errors_body(*(messages or ("Bad Request",))), content_type)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Answer normally, but only after `delay` seconds."""
        return cls(delay=delay)

    @classmethod
    def dropped(cls, delay: float = 0.0) -> Fault:
        """Read the request, then close the connection without answering."""
        return cls(drop=True, delay=delay)


@dataclass(frozen=True)
class Received:
    """One request as the intake saw it. `status` is what it was answered (None: dropped)."""

    time: float  # time.monotonic() at arrival (after the body was read)
    wall: float  # time.time() at arrival
    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    json: Any  # the parsed body, or None when it was not JSON
    status: int | None
    client_port: int = 0  # the client's source port: same port, same kept-alive connection

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _errors_body(*messages: str) -> bytes:
    return json.dumps({"errors": list(messages)}).encode()


class FakeIntake:
    """The fake intake; see the module docstring. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        api_key: str = INTAKE_KEY,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        past_window: float = 18 * 3600,
    ) -> None:
        self.api_key = api_key
        self.past_window = past_window
        self._host = host
        self._port = port
        self._lock = threading.Condition()
        self._faults: deque[Fault] = deque()
        self._mode: Fault | None = None
        self._received: list[Received] = []
        self._ids = itertools.count(FIRST_EVENT_ID)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> FakeIntake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeIntake:
        self.up()
        return self

    def stop(self) -> None:
        self.down()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL to use as DATADOG_HOST (no trailing slash)."""
        return f"http://{self._host}:{self._port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self) -> None:
        """Listen (again) on the same port; a no-op when already up."""
        if self._server is not None:
            return
        server = _Server((self._host, self._port), _Handler)
        server.intake = self
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop accepting: close the listening socket and every open keep-alive connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def down_for(self, seconds: float) -> threading.Timer:
        """Go down now and come back up after `seconds` (on a timer thread)."""
        self.down()
        timer = threading.Timer(seconds, self.up)
        timer.daemon = True
        timer.start()
        return timer

    # ---- programming faults ---------------------------------------------------------------

    def enqueue(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def set_mode(self, fault: Fault | None) -> None:
        """A standing fault for every request once the queue is empty; None: behave."""
        with self._lock:
            self._mode = fault

    def clear(self) -> None:
        """Forget queued faults, the standing mode and every recorded request."""
        with self._lock:
            self._faults.clear()
            self._mode = None
            self._received.clear()

    # ---- what was received ----------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def events(self) -> list[Any]:
        """Bodies of the requests answered 202, in arrival order."""
        with self._lock:
            return [r.json for r in self._received if r.status == 202]

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least `n` requests arrived; TimeoutError otherwise."""
        return self._wait(lambda: len(self._received) >= n, timeout, f"{n} requests")

    def wait_for_events(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least `n` requests were answered 202; TimeoutError otherwise."""
        return self._wait(
            lambda: sum(r.status == 202 for r in self._received) >= n, timeout, f"{n} events"
        )

    def _wait(self, ready: Any, timeout: float, what: str) -> list[Received]:
        with self._lock:
            if not self._lock.wait_for(ready, timeout):
                got = len(self._received)
                raise TimeoutError(f"intake: waited {timeout}s for {what}, got {got} requests")
            return list(self._received)

    # ---- called by the handler threads ----------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else self._mode

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()

    def _answer(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> _Answer:
        """The intake's own verdict on a request that no fault intercepted."""
        if method != "POST" or path.split("?", 1)[0] != EVENTS_PATH:
            return _Answer(404, _errors_body("Not found"))
        if headers.get("dd-api-key") != self.api_key:
            return _Answer(403, _errors_body("Forbidden"))
        if not isinstance(body, dict):
            return _Answer(400, _errors_body("Invalid JSON structure"))
        date = body.get("date_happened")
        too_old = isinstance(date, int) and date < time.time() - self.past_window
        if too_old and not isinstance(date, bool):
            return _Answer(400, _errors_body("Event too far in the past"), "text/plain")
        return _Answer(202, json.dumps(self._accepted(body)).encode())

    def _accepted(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            event_id = next(self._ids)
        return {
            "status": "ok",
            "event": {
                "id": event_id,
                "id_str": str(event_id),
                "title": body.get("title"),
                "text": body.get("text"),
                "date_happened": body.get("date_happened") or int(time.time()),
                "handle": None,
                "priority": body.get("priority"),
                "related_event_id": None,
                "tags": body.get("tags"),
                "url": f"https://app.datadoghq.com/event/event?id={event_id}",
            },
        }


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    intake: FakeIntake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (killed, timed out) is part of the tests, not an error.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real intake
    server: _Server
    server_version = "fake-datadog-intake"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.intake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.intake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # quiet: tests read `intake.requests` instead

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(_Answer(413, _errors_body("Payload too large")), close=True)
            return
        raw = self.rfile.read(length) if length else b""
        arrived, wall = time.monotonic(), time.time()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            parsed = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        intake = self.server.intake
        fault = intake._next_fault()
        if fault is not None and (fault.drop or fault.status is not None):
            answer = None if fault.drop else _Answer(
                fault.status or 500, fault.body, fault.content_type, fault.headers
            )
        else:
            answer = intake._answer(self.command, self.path, headers, parsed)
        status = None if answer is None else answer.status
        received = Received(arrived, wall, self.command, self.path, headers, raw, parsed, status,
                            self.client_address[1])
        intake._record(received)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if answer is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(answer)

    def _send(self, answer: _Answer, *, close: bool = False) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(answer.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (timed out) meanwhile


try:  # the fixture only matters under pytest; standalone runs need not import it
    import pytest
except ImportError:  # pragma: no cover
    pass
else:

    @pytest.fixture(name="intake")
    def intake_fixture() -> Iterator[FakeIntake]:
        """A running FakeIntake with api key INTAKE_KEY, stopped after the test."""
        with FakeIntake(INTAKE_KEY) as running:
            yield running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake Datadog events intake.")
    parser.add_argument("--port", type=int, default=8126)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=INTAKE_KEY)
    parser.add_argument("--past-window", type=float, default=18 * 3600)
    args = parser.parse_args(argv)
    intake = FakeIntake(args.api_key, port=args.port, host=args.host, past_window=args.past_window)
    intake.start()
    print(f"fake intake listening on {intake.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        intake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
