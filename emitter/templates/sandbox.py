"""The sandboxed Jinja2 environment every template runs in: Jinja's immutable sandbox, strict
undefined, emitter's filters, and bounds on the operators that can multiply memory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Output-size bounds for the two operators that can multiply memory in one step
# (`'x' * 10**9`, `9 ** 10**9`); `range()` is already capped by the sandbox.
MAX_SEQUENCE_RESULT = 1_000_000
MAX_POWER_BITS = 100_000


def _tojson(value: Any, indent: int | None = None) -> str:
    """JSON without the HTML escaping of Jinja's builtin `tojson` (events are not HTML)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent, default=str)


def _timestamp(value: Any) -> int:
    """POSIX seconds from a datetime, an ISO 8601 string or a number (for date_happened)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"timestamp expects a datetime, an ISO 8601 string or a number, not {value!r}")


def _is_sized(value: Any) -> bool:
    return isinstance(value, (str, list, tuple, bytes))


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus bounds on `*` and `**`, so a template cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and (_is_sized(left) or _is_sized(right)):
            seq, times = (left, right) if _is_sized(left) else (right, left)
            if isinstance(times, int) and len(seq) * times > MAX_SEQUENCE_RESULT:
                raise SecurityError(f"'*' would build more than {MAX_SEQUENCE_RESULT} items")
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and left.bit_length() * right > MAX_POWER_BITS
        ):
            raise SecurityError(f"'**' result would exceed {MAX_POWER_BITS} bits")
        return super().call_binop(context, operator, left, right)


def _make_environment() -> jinja2.Environment:
    env = _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        # Keep a final newline: constant strings (which skip Jinja) keep theirs too.
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    env.filters["timestamp"] = _timestamp
    env.globals.pop("lipsum", None)  # filler text has no place in an event
    return env


ENV = _make_environment()
# What every render scope starts from (the sandbox's builtins such as range, dict, namespace).
BASE_SCOPE: Mapping[str, Any] = dict(ENV.globals)
