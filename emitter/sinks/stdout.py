"""The stdout sink: prints the exact JSON body that would be posted, one event per line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from emitter.sinks.base import DeliveryResult, Outcome

if TYPE_CHECKING:
    from emitter.events.encode import Encoded


class StdoutSink:
    """For dry runs and pipes: `send` writes the body and reports DELIVERED (no event id)."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, event: Encoded, *, budget: float | None = None) -> DeliveryResult:
        stream = self._stream or sys.stdout  # looked up late so pytest's capture sees it
        stream.write(event.body.decode("utf-8") + "\n")
        stream.flush()
        return DeliveryResult(Outcome.DELIVERED, detail="printed to stdout")

    def close(self) -> None:
        pass  # the stream belongs to the caller
