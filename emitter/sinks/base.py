"""The sink interface and the result of one delivery attempt."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from emitter.events.encode import Encoded


class Outcome(str, Enum):
    DELIVERED = "delivered"  # 202 (or the sink's equivalent)
    RETRY = "retry"  # transient: connection error, timeout, 408, 429, 5xx
    REJECTED = "rejected"  # permanent: any other 4xx; never retried, goes to dead letters


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    status: int | None = None  # HTTP status, None when no answer came back
    event_id: str | None = None  # Datadog's id_str (ids exceed 2**53: never a float)
    url: str | None = None
    errors: tuple[str, ...] = ()  # the API's `errors` list, or our own description
    retry_after: float | None = None  # seconds the server asked us to wait (429)
    detail: str = ""  # one line for logs; never contains the API key


class Sink(Protocol):
    name: str

    def send(self, event: Encoded, *, budget: float | None = None) -> DeliveryResult:
        """Make exactly one attempt to deliver `event` (a checked event's wire bytes, sent
        unchanged by every sink that sends JSON), taking at most `budget` seconds when
        given (a local sink, which cannot block for long, may ignore it)."""
        ...

    def close(self) -> None: ...

# A sink may also have `send_many(events) -> list[DeliveryResult]` (one attempt each, in
# order, never raising for delivery trouble) and `fanout: int`, how many events it takes at
# once; the sender then hands each worker up to `fanout` events per call
# (emitter.delivery.sender._send_all).
