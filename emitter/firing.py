"""`Firing`: the record a trigger hands to delivery (a rule fired, with its variables).

It sits below both `triggers/` and `delivery/` so neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Firing:
    """One rule fired: the variables its templates see, and when (time.time())."""

    rule_id: str
    trigger: str  # the trigger type: "schedule", "file", "webhook", "command", "stdin"
    variables: Mapping[str, Any]
    at: float


Dispatch = Callable[[Sequence[Firing]], None]
OnError = Callable[[str | None, str], None]
