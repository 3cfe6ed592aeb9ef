"""A lean keep-alive HTTP transport for the sender's workers, behind the small part of the
`requests.Session` interface that DatadogSink uses (`post`, `close`).

Why: requests spends ~0.6 ms of CPU per POST (adapters, hooks, cookie jars, environment
look-ups); http.client spends ~0.15 ms. The sender makes one request per event from several
threads sharing one GIL, so that difference is the sender's throughput. Failures are raised
as requests' own exception types, so DatadogSink's classification stays the one place that
decides what is retried. With a proxy configured, the registry uses a real requests session.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
from collections.abc import Iterator, Mapping
from email.message import Message
from urllib.parse import urlsplit

import requests

Timeout = float | tuple[float, float]


class Answer:
    """The parts of `requests.Response` DatadogSink reads."""

    def __init__(self, response: http.client.HTTPResponse, owner: KeepAliveSession) -> None:
        self._response, self._owner = response, owner
        self.status_code = response.status
        self.headers: Message = response.headers

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        try:
            while chunk := self._response.read(chunk_size):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            self._owner.drop()
            raise requests.ConnectionError(exc) from exc

    def close(self) -> None:
        # Unread bytes would be taken for the next answer on this connection: start afresh.
        if not self._response.isclosed() or self._response.will_close:
            self._owner.drop()
        self._response.close()


class KeepAliveSession:
    """One persistent connection to one origin; not thread-safe (one per sender worker).

    The request line, headers and body leave in one `sendall` (http.client makes two, and
    on loopback each send costs as much as the rest of the request); the answer is parsed by
    http.client's own HTTPResponse.
    """

    def __init__(self, base_url: str, *, ca_bundle: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        default = 443 if self._tls else 80
        self._port = parts.port or default
        self._host_header = self._host if self._port == default else f"{self._host}:{self._port}"
        self._context = (
            ssl.create_default_context(cafile=ca_bundle or _default_ca()) if self._tls else None
        )
        self._sock: socket.socket | None = None

    def _socket(self, connect_timeout: float) -> socket.socket:
        if self._sock is not None and _stale(self._sock):
            self.drop()
        if self._sock is None:
            try:
                sock = socket.create_connection((self._host, self._port), connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._context is not None:
                    sock = self._context.wrap_socket(sock, server_hostname=self._host)
            except TimeoutError as exc:
                raise requests.ConnectTimeout(exc) from exc
            except OSError as exc:
                raise requests.ConnectionError(exc) from exc
            self._sock = sock
        return self._sock

    def post(
        self,
        url: str,
        *,
        data: bytes,
        headers: Mapping[str, str],
        timeout: Timeout,
        allow_redirects: bool = False,
        stream: bool = True,
    ) -> Answer:
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout,) * 2
        request = _request(urlsplit(url).path or "/", self._host_header, headers, data)
        sock = self._socket(connect_timeout)
        sock.settimeout(read_timeout)
        try:
            sock.sendall(request)
            response = http.client.HTTPResponse(sock, method="POST")
            response.begin()
        except TimeoutError as exc:
            self.drop()
            raise requests.ReadTimeout(exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            self.drop()
            raise requests.ConnectionError(exc) from exc
        return Answer(response, self)

    def drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self.drop()


def _request(path: str, host: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if any(c in line for line in lines for c in "\r\n\0"):
        raise ValueError("a header name or value contains a line break")  # no injection
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def _stale(sock: socket.socket) -> bool:
    """True when the server closed this idle connection (readable at rest means EOF)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _default_ca() -> str | None:
    """requests' CA bundle (certifi), so TLS trusts exactly what a requests session would."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with requests
        return None
    return str(certifi.where())
