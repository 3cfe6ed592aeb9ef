"""Jinja's filters that pad, repeat or splice text, each checked against the render's size
budget before it builds anything; and the two helpers the compiler puts into templates:
`for` loops iterate through `budget.iterate`, `~` joins through `budget.concat`."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from functools import wraps
from typing import Any

from emitter.templates import budget

LOOP_FILTER = "_emitter_loop"  # wraps every `{% for %}` iterable (see compiler._Metered)
CONCAT_FILTER = "_emitter_concat"  # replaces every `a ~ b` (a list of its parts)

Sizer = Callable[..., int]


def _lines(text: Any) -> int:
    return str(text).count("\n") + 1


# Each sizer takes the filter's own parameters, by Jinja's names, and says what it would build.
def _center(value: Any, width: Any = 80) -> int:
    return max(len(str(value)), width if isinstance(width, int) else 0)


def _indent(s: Any, width: Any = 4, **_: Any) -> int:
    pad = width if isinstance(width, int) else len(str(width))
    return len(str(s)) + _lines(s) * max(pad, 0)


def _join(value: list[Any], d: Any = "", attribute: Any = None) -> int:
    # An attribute join measures the items themselves: never less than the result.
    return len(str(d)) * max(len(value) - 1, 0) + sum(len(str(i)) for i in value)


def _replace(s: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    text, old, new = str(s), str(old), str(new)
    times = text.count(old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * max(len(new) - len(old), 0)


def _wordwrap(s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
              **_: Any) -> int:
    return len(str(s)) * (1 + len(str(wrapstring or "\n")))


def _checked(name: str, original: Callable[..., Any], sizer: Sizer, lead: int) -> Any:
    """`original` with `sizer(*args)` checked first; `lead` leading arguments (the
    environment or eval context Jinja passes) are not the filter's own."""

    @wraps(original)  # keeps jinja_pass_arg: Jinja passes the same leading argument
    def checked(*args: Any, **kwargs: Any) -> Any:
        own = list(args[lead:])
        if name == "join" and own:
            own[0] = list(own[0])  # an iterator is read once: measure and join the same list
            args = (*args[:lead], *own)
        try:
            size = sizer(*own, **kwargs)
        except TypeError:  # arguments the filter itself refuses: let it say so
            size = 0
        budget.allow_text(size, f"the {name} filter")
        return original(*args, **kwargs)

    return checked


def _format(original: Callable[..., Any]) -> Any:
    @wraps(original)
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        budget.allow_percent(str(value), kwargs or tuple(args))
        return original(value, *args, **kwargs)

    return checked


_SIZERS: dict[str, tuple[Sizer, int]] = {
    "center": (_center, 0), "indent": (_indent, 0), "join": (_join, 1),
    "replace": (_replace, 1), "wordwrap": (_wordwrap, 1),
}


def guard(filters: MutableMapping[str, Any]) -> None:
    """Replace the amplifying filters with checked ones; add the compiler's two helpers."""
    for name, (sizer, lead) in _SIZERS.items():
        filters[name] = _checked(name, filters[name], sizer, lead)
    filters["format"] = _format(filters["format"])
    filters[LOOP_FILTER] = budget.iterate
    filters[CONCAT_FILTER] = budget.concat
