"""The sandboxed Jinja2 environment every template runs in: Jinja's immutable sandbox, strict
undefined, emitter's filters, and every render metered by templates.budget (time and size)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from types import BuiltinMethodType, MethodType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from emitter.templates import budget
from emitter.templates.filters import guard

_METHODS = (MethodType, BuiltinMethodType)
_FORMAT_METHODS = ("format", "format_map")
MAX_JSON_INDENT = 16  # each nesting level repeats the indent: a large one multiplies the text


def _tojson(value: Any, indent: int | None = None) -> str:
    """JSON without the HTML escaping of Jinja's builtin `tojson` (events are not HTML)."""
    if isinstance(indent, int) and indent > MAX_JSON_INDENT:
        raise budget.BudgetExceeded(f"tojson indent {indent} is over {MAX_JSON_INDENT}")
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


# str (and bytes) methods that pad, repeat or splice: their result size is checked first.
_AMPLIFYING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "join", "replace"})


def _method_size(name: str, text: Any, args: tuple[Any, ...]) -> int:
    """What `text.<name>(*args)` would build, in characters or bytes (never less)."""
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(text), first if isinstance(first, int) else 0)
    if name == "expandtabs":
        width = first if isinstance(first, int) else 8
        tab = "\t" if isinstance(text, str) else b"\t"
        return int(len(text) + text.count(tab) * max(width, 0))
    if name == "join":
        return len(text) * max(len(args[1]) - 1, 0) + sum(map(len, args[1]))
    old, new = (args + (None, None))[:2]
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return len(text)
    return int(len(text) + text.count(old) * max(len(new) - len(old), 0))


def _checked_method(name: str, method: Any, text: str | bytes) -> Any:
    def call(*args: Any) -> Any:
        if name == "join":
            items = list(args[0]) if args else []
            budget.allow_text(_method_size(name, text, (None, items)), f"{name}()")
            return method(items)
        budget.allow_text(_method_size(name, text, args), f"{name}()")
        return method(*args)

    return call


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, metered: each call checks the render's deadline (loops check it
    through budget.iterate), and what can build a large string or list checks its size first:
    operators here, str methods when called, filters in templates.filters."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget.allow_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # Every call in a template comes here (a method found by attribute or item too).
        budget.tick()
        return super().call(__context, __self._checked(__obj), *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        # Every attribute a template reads comes here (`loop.last` too): most are no method.
        if not isinstance(value, _METHODS) or value.__name__ not in _FORMAT_METHODS:
            return None
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = str(value.__self__)  # a str (only str methods are wrapped): the same object
        mapping = value.__name__ == "format_map"

        def formatted(*args: Any, **kwargs: Any) -> Any:
            if mapping and len(args) == 1 and isinstance(args[0], Mapping):
                budget.allow_format(text, (), args[0])
            else:
                budget.allow_format(text, args, kwargs)
            return wrapped(*args, **kwargs)

        return formatted

    @staticmethod
    def _checked(value: Any) -> Any:
        if isinstance(value, BuiltinMethodType) and value.__name__ in _AMPLIFYING \
                and isinstance(value.__self__, (str, bytes)):
            return _checked_method(value.__name__, value, value.__self__)
        return value


def _make_environment() -> jinja2.Environment:
    env = _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        # Keep a final newline: constant strings (which skip Jinja) keep theirs too.
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    env.filters["timestamp"] = _timestamp
    guard(env.filters)
    env.globals.pop("lipsum", None)  # filler text has no place in an event
    return env


ENV = _make_environment()
# What every render scope starts from (the sandbox's builtins such as range, dict, namespace).
BASE_SCOPE: Mapping[str, Any] = dict(ENV.globals)
