"""A lean keep-alive HTTP transport for the Datadog sink, behind the small part of the
`requests.Session` interface that DatadogSink uses (`post`, `close`), and the check that says
when it may be used (no proxy configured).

Why: requests spends ~0.6 ms of CPU per POST (adapters, hooks, cookie jars, environment
look-ups) where http.client spends ~0.15 ms, and `import requests` alone costs a short-lived
`emitter fire` more time than all of its own work. This module never imports requests.

Exceptions (all `TransportError`; each wraps the OSError or malformed-answer error that caused it,
as its first argument and its `__cause__`):

    TransportError          base class
      ConnectError          the connection could not be opened (refused, DNS, TLS handshake
                            or certificate verification)
        ConnectTimeout      ... within the connect timeout (also a TransportTimeout)
      TransportTimeout      no answer (or no more of it) within the read timeout
        ReadTimeout         the one raised after a request was sent
      ProtocolError         the connection broke, or the answer was not HTTP, once open

They mirror requests' ConnectionError / ConnectTimeout / ReadTimeout so that DatadogSink
classifies both families the same way (tests/test_transport.py checks it).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from emitter.sinks import httpanswer

Timeout = float | tuple[float, float]


class TransportError(Exception):
    """Base of the transport's failures; see the module docstring for the tree."""


class ConnectError(TransportError):
    """The connection could not be opened (refused, unknown host, TLS failure)."""


class TransportTimeout(TransportError):
    """No answer within the timeout."""


class ConnectTimeout(ConnectError, TransportTimeout):
    """The connection was not open within the connect timeout."""


class ReadTimeout(TransportTimeout):
    """The request was sent but no answer came within the read timeout."""


class ProtocolError(TransportError):
    """The open connection broke, or the answer was not HTTP."""


class _Budget:
    """A bound on one whole exchange (connect, send, headers, body): when it runs out the
    socket is shut down, so a blocked read returns at once however the server trickles."""

    def __init__(self, seconds: float, sock: socket.socket) -> None:
        self.expired = False
        self._sock = sock
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


class Answer:
    """The parts of `requests.Response` DatadogSink reads."""

    def __init__(self, answer: httpanswer.Answer, owner: KeepAliveSession,
                 budget: _Budget | None = None) -> None:
        self._answer, self._owner, self._budget = answer, owner, budget
        self.status_code = answer.status
        self.headers = answer.headers

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        try:
            yield from self._answer.body(chunk_size)
        except TimeoutError as exc:
            self._owner.drop()
            raise ReadTimeout(exc) from exc
        except (OSError, httpanswer.Malformed, httpanswer.Closed) as exc:
            self._owner.drop()
            raise _broken(exc, self._budget) from exc
        if self._budget is not None and self._budget.expired:  # cut short: not the answer
            self._owner.drop()
            raise ReadTimeout(TimeoutError("the time budget ran out"))

    def close(self) -> None:
        if self._budget is not None:
            self._budget.cancel()
        # Unread bytes would be taken for the next answer on this connection: start afresh.
        if not (self._answer.done and self._answer.keep_alive and self._owner.reusable()):
            self._owner.drop()


def _broken(exc: BaseException, budget: _Budget | None) -> TransportError:
    """A broken exchange: a ReadTimeout when our own budget shut the socket."""
    return ReadTimeout(exc) if budget is not None and budget.expired else ProtocolError(exc)


class Sent:
    """A request on its way; its answer is read with `KeepAliveSession.read_answer`."""

    __slots__ = ("budget",)

    def __init__(self, budget: _Budget | None) -> None:
        self.budget = budget


class KeepAliveSession:
    """One persistent connection to one origin; not thread-safe (one per sender worker).

    The request line, headers and body leave in one `sendall` (http.client makes two, and
    on loopback each send costs as much as the rest of the request); the answer is read by
    emitter.sinks.httpanswer. TLS verifies the certificate and the host name against
    `ca_bundle` (a file or a directory of hashed certificates), else certifi's bundle as
    requests would, else the system's store.
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
        self._context = tls_context(ca_bundle) if self._tls else None
        # An ASCII host as bytes (getaddrinfo takes either; typeshed says str): the idna
        # codec, and the stringprep and unicodedata imports it costs, are skipped.
        self._address = (self._host.encode("ascii") if self._host.isascii() else self._host,
                         self._port)
        self._sock: socket.socket | None = None
        self._reader: httpanswer.Reader | None = None

    def sibling(self) -> KeepAliveSession:
        """Another session to the same origin with the same TLS settings (its context is
        shared, not built again), for requests in flight together (DatadogSink.send_many)."""
        other = copy.copy(self)
        other._sock, other._reader = None, None
        return other

    def reusable(self) -> bool:
        """The connection may carry the next request: open, and nothing unread on it."""
        return self._reader is not None and self._reader.idle

    def _socket(self, connect_timeout: float) -> socket.socket:
        if self._sock is not None and _stale(self._sock):
            self.drop()
        if self._sock is None:
            try:
                sock = socket.create_connection(self._address, connect_timeout)  # type: ignore[arg-type]
            except TimeoutError as exc:
                raise ConnectTimeout(exc) from exc
            except OSError as exc:
                raise ConnectError(exc) from exc
            self._sock = self._secure(sock)
            self._reader = httpanswer.Reader(self._sock)
        return self._sock

    def _secure(self, sock: socket.socket) -> socket.socket:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                return self._context.wrap_socket(sock, server_hostname=self._host)
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeout(exc) from exc
        except OSError as exc:  # ssl.SSLError (a bad certificate included) is an OSError
            sock.close()
            raise ConnectError(exc) from exc
        return sock

    def post(
        self,
        url: str,
        *,
        data: bytes,
        headers: Mapping[str, str],
        timeout: Timeout,
        budget: float | None = None,
        allow_redirects: bool = False,
        stream: bool = True,
    ) -> Answer:
        """One request. `timeout` bounds each wait, as in requests; `budget` (seconds), when
        given, bounds the whole exchange, the answer's body included (`emitter fire
        --deadline`): past it the read fails with ReadTimeout."""
        return self.read_answer(self.send_request(url, data=data, headers=headers,
                                                  timeout=timeout, budget=budget))

    def send_request(self, url: str, *, data: bytes, headers: Mapping[str, str],
                     timeout: Timeout, budget: float | None = None) -> Sent:
        """The first half of `post`: the request is sent (so a caller with several sessions
        can have all of their requests in flight at once); `read_answer` reads its answer."""
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout,) * 2
        started = time.monotonic()
        if budget is not None:
            connect_timeout, read_timeout = min(connect_timeout, budget), min(read_timeout, budget)
        request = _request(urlsplit(url).path or "/", self._host_header, headers, data)
        sock = self._socket(connect_timeout)
        sock.settimeout(read_timeout)
        guard = None if budget is None else _Budget(budget - (time.monotonic() - started), sock)
        try:
            sock.sendall(request)
        except TimeoutError as exc:
            self._abandon(guard)
            raise ReadTimeout(exc) from exc
        except OSError as exc:
            self._abandon(guard)
            raise _broken(exc, guard) from exc
        return Sent(guard)

    def read_answer(self, sent: Sent, *, until: float | None = None) -> Answer:
        """The answer's status and headers (its body is read through the Answer). `until`
        (time.monotonic()) replaces the read timeout by what is left of a shared one, so the
        answers of requests sent together are awaited together, not one timeout each."""
        guard = sent.budget
        if self._reader is None or self._sock is None:  # dropped since the request was sent
            self._abandon(guard)
            raise ProtocolError(OSError("the connection was closed"))
        if until is not None:
            self._sock.settimeout(max(0.001, until - time.monotonic()))
        try:
            answer = httpanswer.Answer(self._reader)
        except TimeoutError as exc:
            self._abandon(guard)
            raise ReadTimeout(exc) from exc
        except (OSError, httpanswer.Malformed, httpanswer.Closed) as exc:
            self._abandon(guard)
            raise _broken(exc, guard) from exc
        return Answer(answer, self, guard)

    def _abandon(self, guard: _Budget | None) -> None:
        if guard is not None:
            guard.cancel()
        self.drop()

    def drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._reader = None

    def close(self) -> None:
        self.drop()


def _request(path: str, host: str, headers: Mapping[str, str], body: bytes) -> bytes:
    return _head(path, host, tuple(headers.items())) + b"%d\r\n\r\n" % len(body) + body


@functools.lru_cache(maxsize=64)
def _head(path: str, host: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    """The request line and headers up to the Content-Length value (a sink sends the same
    ones every time: built and checked once)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if any(c in line for line in lines for c in "\r\n\0"):
        raise ValueError("a header name or value contains a line break")  # no injection
    return "\r\n".join(lines).encode("latin-1") + b"\r\nContent-Length: "


def _stale(sock: socket.socket) -> bool:
    """True when the server closed this idle connection (readable at rest means EOF)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


# ---- what requests would do: CA bundle and proxies ---------------------------------------


def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """Certificate and host-name verification against `ca_bundle` (file or directory, as
    REQUESTS_CA_BUNDLE may name either), else certifi's bundle, else the system store."""
    if ca_bundle and os.path.isdir(ca_bundle):
        return ssl.create_default_context(capath=ca_bundle)
    return ssl.create_default_context(cafile=ca_bundle or default_ca())


def default_ca() -> str | None:
    """certifi's bundle (requests' default trust), found without importing certifi where
    possible (its import pulls in importlib.resources); None when certifi is missing."""
    from importlib.util import find_spec

    try:
        spec = find_spec("certifi")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        candidate = os.path.join(folder, "cacert.pem")
        if os.path.isfile(candidate):
            return candidate
    import certifi  # a zipped install: let certifi extract its bundle

    return str(certifi.where())


def environ_ca_bundle(environ: Mapping[str, str]) -> str | None:
    """REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, as requests reads them (empty means unset)."""
    return environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or None


_PROXY_KEYS = {"http": ("http", "all"), "https": ("https", "all")}


def may_need_proxy(url: str, environ: Mapping[str, str]) -> bool:
    """False only when requests would certainly send `url` without a proxy: no non-empty
    `<scheme>_proxy` or `all_proxy` variable, in any letter case (urllib, whose reading
    requests uses, matches the names case-insensitively). True also on macOS and Windows,
    where requests reads the system's proxy settings too. NO_PROXY is left to requests'
    own matching (`requests.utils.get_environ_proxies`) on the path this returns True for.
    """
    if sys.platform in ("darwin", "win32"):
        return True
    parts = urlsplit(url)
    host = parts.hostname or ""
    keys = _PROXY_KEYS.get(parts.scheme, ("all",))  # the keys requests' select_proxy tries
    wanted = {f"{key}_proxy" for key in keys} | {f"{key}://{host}_proxy" for key in keys}
    return any(value and name.lower() in wanted for name, value in environ.items())
