"""The one event encoding: a checked event dict -> the exact bytes the outbox keeps and the
Datadog sink posts (compact UTF-8 JSON, non-ASCII kept as is, no NaN/Infinity).

`Encoded` carries those bytes to every sink unchanged; a sink that needs the fields (the
DogStatsD datagram) reads `Encoded.event`, decoded once from the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from typing import Any


class EncodingError(ValueError):
    """The bytes are not one JSON object (a damaged or foreign outbox row)."""


# One encoder, reused: json.dumps with options builds a new JSONEncoder on every call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The wire body of `event`. Raises ValueError for NaN/Infinity, TypeError for a value
    JSON cannot hold (the event check refuses both before this is reached)."""
    return _ENCODE(event).encode("utf-8")


class Encoded:
    """One event as its wire bytes; `event` is their decoded form (computed once)."""

    def __init__(self, body: bytes) -> None:
        self.body = bytes(body)

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Encoded:
        return cls(encode_event(event))

    @cached_property
    def event(self) -> dict[str, Any]:
        """The fields, decoded from `body`; EncodingError when they are not a JSON object."""
        try:
            value = json.loads(self.body)
        except ValueError as exc:  # UnicodeDecodeError included
            raise EncodingError(f"stored body is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise EncodingError("stored body is not a JSON object")
        return value

    def __repr__(self) -> str:
        return f"Encoded({len(self.body)} bytes)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Encoded) and other.body == self.body

    def __hash__(self) -> int:
        return hash(self.body)
