"""A loopback Datadog intake fast enough not to be what a benchmark measures.

    python benchmarks/fast_intake.py PORT        (prints "listening" once it accepts)

One asyncio process, one protocol object per keep-alive connection, no HTTP library: it
answers every POST with 202 and a small event JSON, counts the bodies, and keeps the arrival
time of each body carrying a `seq-N` marker (line-to-event latency). GET /stats answers
{"count", "first", "last"} (wall-clock times); GET /arrivals answers {N: time}; POST /reset
clears both. `ceiling(port)` measures what it can answer with raw keep-alive clients in
other processes, so a benchmark prints the intake's own limit next to what it measured.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import socket
import sys
import time
from typing import Any

SEQ = re.compile(rb"seq-(\d+)")
_EVENT = b'{"status":"ok","event":{"id":1,"id_str":"1"}}'
ACCEPTED = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(_EVENT)) + _EVENT


class _State:
    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.arrivals: dict[int, float] = {}


def _answer(data: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)) + data


class _Conn(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end]
            lower = head.lower()
            length = 0
            at = lower.find(b"content-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at)
                length = int(lower[at + 15:stop if stop >= 0 else None])
            if len(self.buf) < end + 4 + length:
                break
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            out.append(self._route(head, body))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _route(self, head: bytes, body: bytes) -> bytes:
        st = self.state
        if head.startswith(b"GET /stats"):
            return _answer(json.dumps({"count": st.count, "first": st.first,
                                       "last": st.last}).encode())
        if head.startswith(b"GET /arrivals"):
            return _answer(json.dumps(st.arrivals).encode())
        if head.startswith(b"POST /reset"):
            self.state.__init__()  # type: ignore[misc]
            return _answer(b"{}")
        now = time.time()
        st.count += 1
        st.first = st.first or now
        st.last = now
        found = SEQ.search(body)
        if found:
            st.arrivals.setdefault(int(found.group(1)), now)
        return ACCEPTED


async def _serve(port: int) -> None:
    state = _State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Conn(state), "127.0.0.1", port, backlog=512)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


def _load(port: int, seconds: float, out: Any) -> None:
    body = json.dumps({"title": "ceiling", "text": "x" * 120, "tags": ["a:b"]}).encode()
    request = (b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        sock.sendall(request)
        got = b""
        while len(got) < len(ACCEPTED):
            got += sock.recv(65536)
        n += 1
    sock.close()
    out.put(n)


def ceiling(port: int, connections: int = 4, seconds: float = 2.0) -> float:
    """Requests/s the intake answers to `connections` raw keep-alive clients, one process each."""
    queue: Any = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_load, args=(port, seconds, queue))
             for _ in range(connections)]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
