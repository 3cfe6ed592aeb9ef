"""The `dogstatsd` sink: events as DogStatsD datagrams to a local Datadog Agent (UDP or a Unix
datagram socket). Format, field order and limits: shared/reference/datadog-events.md."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emitter.events.limits import DOGSTATSD_DATAGRAM_MAX as MAX_DATAGRAM
from emitter.sinks.base import DeliveryResult, Outcome

if TYPE_CHECKING:
    from emitter.events.encode import Encoded

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8125
# Characters the Agent's tag parser would misread (`|` and `,` are separators); replaced
# by `_` exactly as datadogpy and the Agent's own clients do.
_TAG_BAD = re.compile(r"[^\w\-:/.]", re.UNICODE)
# datadogpy's order of the optional fields after title|text.
_FIELDS = (
    ("date_happened", "d"),
    ("host", "h"),
    ("aggregation_key", "k"),
    ("priority", "p"),
    ("source_type_name", "s"),
    ("alert_type", "t"),
)


class DatagramError(ValueError):
    """The event cannot be written as one DogStatsD datagram (too long, a bad header field)."""


def _escape(text: str) -> str:
    return text.replace("\n", "\\n")  # the two characters backslash-n, as datadogpy does


def format_event(event: Mapping[str, Any]) -> bytes:
    """The datagram for `event` (a schema-valid event dict), newline-terminated as datadogpy
    sends it. Raises DatagramError when it cannot be sent faithfully."""
    title = _escape(str(event["title"]))
    text = _escape(str(event["text"]))
    if not title:
        raise DatagramError("the title is empty; the Agent rejects such an event")
    head = f"_e{{{len(title.encode())},{len(text.encode())}}}:{title}|{text}"
    parts = [head]
    for key, code in _FIELDS:
        value = event.get(key)
        if value is None or value == "":
            continue
        shown = str(int(value)) if key == "date_happened" else str(value)
        if "|" in shown or "\n" in shown:
            raise DatagramError(f"{key} {shown!r} contains '|' or a newline, which would split it")
        parts.append(f"{code}:{shown}")
    tags = [_TAG_BAD.sub("_", str(t)) for t in event.get("tags") or ()]
    if tags:
        parts.append("#" + ",".join(tags))
    datagram = ("|".join(parts) + "\n").encode()
    if len(datagram) > MAX_DATAGRAM:
        raise DatagramError(
            f"the datagram is {len(datagram)} bytes, over the Agent's {MAX_DATAGRAM}-byte "
            "limit; shorten the text (UTF-8 bytes count) or use the datadog sink"
        )
    return datagram


class DogStatsdSink:
    """One datagram per event to a local Agent: UDP `host:port`, or `socket_path` (Unix).

    Datagrams carry no acknowledgement: a datagram the kernel accepted counts as DELIVERED.
    A socket error (no Agent on a Unix socket, a full buffer) is RETRY; an event that cannot
    be one valid datagram is REJECTED with the reason, never dropped silently.
    """

    name = "dogstatsd"

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        socket_path: str | None = None,
        timeout: float = 1.0,
    ) -> None:
        self.host, self.port, self.socket_path, self.timeout = host, port, socket_path, timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def destination(self) -> str:
        return f"unix://{self.socket_path}" if self.socket_path else f"udp://{self.host}:{self.port}"

    def _socket(self) -> socket.socket:
        if self._sock is None:
            if self.socket_path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                address: Any = self.socket_path
            else:
                info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
                sock = socket.socket(info[0], socket.SOCK_DGRAM)
                address = info[4]
            sock.settimeout(self.timeout)
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def send(self, event: Encoded, *, budget: float | None = None) -> DeliveryResult:
        """The datagram is built from `event.event`, the one decoded form of the body."""
        try:
            datagram = format_event(event.event)
        except (DatagramError, KeyError, TypeError, ValueError) as exc:
            message = str(exc) if isinstance(exc, DatagramError) else f"not an event: {exc!r}"
            return DeliveryResult(
                Outcome.REJECTED, errors=(message,), detail=f"dogstatsd: {message}"
            )
        with self._lock:
            try:
                self._socket().send(datagram)
            except OSError as exc:
                self._reset()
                why = f"cannot send to {self.destination}: {exc.strerror or exc}"
                return DeliveryResult(Outcome.RETRY, errors=(why,), detail=f"dogstatsd: {why}")
        sent = f"dogstatsd: {len(datagram)} bytes to {self.destination}"
        return DeliveryResult(Outcome.DELIVERED, detail=sent)

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._reset()
