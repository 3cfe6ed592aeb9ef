"""A TCP proxy on loopback in front of the test cluster's Unix socket that can lose one COMMIT:
armed "after", it forwards the client's COMMIT and cuts the client off before the server's
answer comes back (the server commits, the client hears nothing); armed "before", it cuts the
client off instead of forwarding it. It reads the PostgreSQL wire protocol only as far as
finding simple-query ('Q') COMMIT messages, which is how psycopg sends a transaction's COMMIT.

    with CommitCutter(pg.socket_dir) as proxy:
        url = proxy.url(dbname)
        proxy.arm("after")            # the next COMMIT through the proxy, on any connection
        proxy.refuse = True           # new connections are closed at once (server "away")
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from pathlib import Path
from types import TracebackType

_NOT_STARTUP = (80877102, 80877103, 80877104)  # CancelRequest, SSLRequest, GSSENCRequest


class CommitCutter:
    def __init__(self, socket_dir: Path, port: int = 5432) -> None:
        self.upstream = str(socket_dir / f".s.PGSQL.{port}")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refuse = False  # close new connections at once
        self.hold_server_side = False  # after a cut, leave the server's session open
        self.cut = threading.Event()  # set once the armed COMMIT was cut
        self._armed: str | None = None
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []
        self._links: list[_Link] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def url(self, dbname: str, password: str = "") -> str:
        user = f"emitter:{password}" if password else "emitter"
        return (f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"
                "?sslmode=disable&gssencmode=disable")

    def arm(self, when: str) -> None:
        assert when in ("before", "after")
        with self._lock:
            self._armed = when
            self.cut.clear()

    def close(self) -> None:
        """Stop accepting, cut every connection and wait for every thread: none outlives the
        test (a thread left running makes later tests that fork skip)."""
        _shut(self.listener)  # shutdown() wakes the blocked accept(); close() alone would not
        with self._lock:
            links, held = list(self._links), list(self._held)
        for link in links:
            _shut(link.client)
            _shut(link.server)
        for sock in held:
            _shut(sock)
        for thread in self._threads:
            thread.join(10)

    def __enter__(self) -> CommitCutter:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            while True:
                client, _ = self.listener.accept()
                if self.refuse:
                    client.close()
                    continue
                server = socket.socket(socket.AF_UNIX)
                try:
                    server.connect(self.upstream)
                except OSError:  # the server is down: so is this connection, not the proxy
                    server.close()
                    _shut(client)
                    continue
                link = _Link(self, client, server)
                threads = [threading.Thread(target=link.from_client, daemon=True),
                           threading.Thread(target=link.from_server, daemon=True)]
                with self._lock:
                    self._links.append(link)
                    self._threads.extend(threads)
                for thread in threads:
                    thread.start()

    def _take(self) -> str | None:
        """The armed cut, disarmed (once per arm); called under self._lock."""
        when, self._armed = self._armed, None
        return when


class _Link:
    """One client connection and its server connection."""

    def __init__(self, proxy: CommitCutter, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.dead = False  # the client was cut off: nothing more reaches it
        self.lock = threading.Lock()

    def from_client(self) -> None:
        buf, started = b"", False
        with contextlib.suppress(OSError):
            while chunk := self.client.recv(65536):
                buf += chunk
                while (size := _message_size(buf, started)) is not None and len(buf) >= size:
                    message, buf = buf[:size], buf[size:]
                    if not started:
                        started = struct.unpack("!i", message[4:8])[0] not in _NOT_STARTUP
                    if not self._pass(message):
                        return
        self._end()

    def _pass(self, message: bytes) -> bool:
        """Forward one message; False once the client was cut off."""
        commit = message[:1] == b"Q" and message[5:].rstrip(b"\0").strip().upper() == b"COMMIT"
        with self.proxy._lock:
            when = self.proxy._take() if commit else None
        with self.lock:
            if when is None:
                self.server.sendall(message)
                return True
            self.dead = True  # first: the server's answer to this COMMIT is never relayed
            if when == "after":
                self.server.sendall(message)
        _shut(self.client)
        if self.proxy.hold_server_side:
            self.proxy._held.append(self.server)
        else:
            _shut(self.server)
        self.proxy.cut.set()
        return False

    def from_server(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self.server.recv(65536):
                with self.lock:  # never relay once the COMMIT it answers was cut
                    if self.dead:
                        return
                    self.client.sendall(chunk)
        self._end()

    def _end(self) -> None:
        if not self.dead:
            _shut(self.client)
            _shut(self.server)


def _shut(sock: socket.socket) -> None:
    """Close now: shutdown() wakes a thread blocked reading it and tells the peer at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _message_size(buf: bytes, started: bool) -> int | None:
    """The size of the message at the head of `buf` (None until its header has come): a type
    byte and a length counting itself, without the type byte before the startup message."""
    head = 4 if not started else 5
    if len(buf) < head:
        return None
    (length,) = struct.unpack("!i", buf[head - 4:head])
    return length + (head - 4)
