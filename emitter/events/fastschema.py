"""JSON Schema (Draft 2020-12) compiled into a plain predicate with jsonschema's verdict, for
the keywords listed in KEYWORDS; any other keyword is refused (Unsupported), never guessed.

The verdict is all start-up and hot paths need: importing jsonschema costs more than the rest
of `emitter fire`, so it is imported only when a verdict is "invalid" and messages are due.
tests/test_fastschema.py proves the verdicts equal jsonschema's on our schemas and on
generated documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence, Sized
from numbers import Number
from typing import Any

Check = Callable[[Any], bool]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Keywords that never change a verdict. `errorMessage` is our own (the ajv-errors convention).
ANNOTATIONS = frozenset(
    {"$comment", "title", "description", "default", "examples", "deprecated", "readOnly",
     "writeOnly", "errorMessage", "$defs"}
)
KEYWORDS = frozenset(
    {"type", "enum", "const", "pattern", "maxLength", "minLength", "minimum", "maximum",
     "exclusiveMinimum", "exclusiveMaximum", "items", "minItems", "maxItems", "uniqueItems",
     "properties", "required", "additionalProperties", "propertyNames", "minProperties",
     "maxProperties", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref"}
)
_OBJECT_KEYWORDS = ("properties", "required", "additionalProperties", "propertyNames")
_DEFS = "#/$defs/"


class Unsupported(Exception):
    """The schema uses something the fast checker does not implement."""


# ---- JSON semantics as jsonschema has them ------------------------------------------------


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, Number)


def _is_integer(v: Any) -> bool:
    # Draft 4 and later: bools are not integers, 1.0 is.
    if isinstance(v, int):
        return not isinstance(v, bool)
    return isinstance(v, float) and v.is_integer()


TYPES: Mapping[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}

_TRUE, _FALSE = object(), object()


def _unbool(v: Any) -> Any:
    """True and False as values equal to nothing else (JSON's true is not 1)."""
    return _TRUE if v is True else _FALSE if v is False else v


def json_equal(one: Any, two: Any) -> bool:
    """Equality as JSON Schema's enum/const/uniqueItems mean it: true != 1, 1 == 1.0."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(json_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(
            key in two and json_equal(value, two[key]) for key, value in one.items())
    return bool(_unbool(one) == _unbool(two))


def all_unique(items: Sequence[Any]) -> bool:
    """uniqueItems as jsonschema decides it: neighbours after sorting when the items sort,
    every pair otherwise."""
    if all(isinstance(item, str) for item in items):
        return len(set(items)) == len(items)
    try:
        ordered = sorted(_unbool(item) for item in items)
        return not any(json_equal(a, b) for a, b in zip(ordered, ordered[1:], strict=False))
    except (NotImplementedError, TypeError):
        seen: list[Any] = []
        for item in map(_unbool, items):
            if any(json_equal(s, item) for s in seen):
                return False
            seen.append(item)
        return True


# ---- compiling ----------------------------------------------------------------------------


def _never(v: Any) -> bool:
    return False


def _always(v: Any) -> bool:
    return True


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(c(v) for c in checks)


class _Compiler:
    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        self.defs: Mapping[str, Any] = {}
        if isinstance(root, Mapping):
            if root.get("$schema", DRAFT) != DRAFT:
                raise Unsupported(f"$schema {root['$schema']!r}")
            self.defs = root.get("$defs", {})
        self.refs: dict[str, Check] = {}

    def schema(self, node: Any, *, root: bool = False) -> Check:
        if node is True:
            return _always
        if node is False:
            return _never
        if not isinstance(node, Mapping):
            raise Unsupported(f"a schema must be an object or a boolean, not {node!r}")
        allowed = KEYWORDS | ANNOTATIONS | ({"$schema", "$id"} if root else frozenset())
        unknown = set(node) - allowed
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        checks = [self.keyword(node, key) for key in node if key in _SIMPLE]
        checks = [c for c in checks if c is not _always]
        if any(key in node for key in _OBJECT_KEYWORDS):
            checks.append(self.object(node))
        if "if" in node:
            checks.append(self.conditional(node))
        if "$ref" in node:
            checks.append(self.ref(node["$ref"]))
        return _all(checks)

    def keyword(self, node: Mapping[str, Any], key: str) -> Check:
        return _SIMPLE[key](self, node[key])

    def ref(self, ref: Any) -> Check:
        name = ref[len(_DEFS):] if isinstance(ref, str) and ref.startswith(_DEFS) else ""
        if not name or any(c in name for c in "/~%") or name not in self.defs:
            raise Unsupported(f"$ref {ref!r} (only #/$defs/NAME is)")
        if name not in self.refs:
            target: list[Check] = []
            self.refs[name] = lambda v: target[0](v)  # a recursive $ref reaches it meanwhile
            target.append(self.schema(self.defs[name]))
            self.refs[name] = target[0]
        return self.refs[name]

    def conditional(self, node: Mapping[str, Any]) -> Check:
        condition = self.schema(node["if"])
        then, otherwise = self.schema(node.get("then", True)), self.schema(node.get("else", True))
        return lambda v: then(v) if condition(v) else otherwise(v)

    def object(self, node: Mapping[str, Any]) -> Check:
        props = {name: self.schema(sub) for name, sub in node.get("properties", {}).items()}
        required = tuple(node.get("required", ()))
        extra = self.schema(node.get("additionalProperties", True))
        closed = extra is _never

        def check(v: Any) -> bool:  # the hot path: every rendered event goes through one
            if not isinstance(v, dict):
                return True
            for name in required:
                if name not in v:
                    return False
            for key, value in v.items():
                sub = props.get(key)
                if sub is None:
                    if closed or not extra(value):
                        return False
                elif not sub(value):
                    return False
            return True

        if "propertyNames" not in node:
            return check
        names = self.schema(node["propertyNames"])
        return lambda v: check(v) and (not isinstance(v, dict) or all(map(names, v)))


def _type(c: _Compiler, spec: Any) -> Check:
    names = [spec] if isinstance(spec, str) else list(spec)
    if any(n not in TYPES for n in names):
        raise Unsupported(f"type {spec!r}")
    checks = [TYPES[n] for n in names]
    return checks[0] if len(checks) == 1 else lambda v: any(t(v) for t in checks)


def _enum(c: _Compiler, values: Any) -> Check:
    if all(isinstance(v, str) for v in values):
        allowed = frozenset(values)
        return lambda v: isinstance(v, str) and v in allowed
    return lambda v: any(json_equal(each, v) for each in values)


def _const(c: _Compiler, value: Any) -> Check:
    return lambda v: json_equal(v, value)


def _pattern(c: _Compiler, pattern: Any) -> Check:
    compiled: list[re.Pattern[str]] = []  # on first use: most patterns never meet a string

    def check(v: Any) -> bool:
        if not isinstance(v, str):
            return True
        if not compiled:
            compiled.append(re.compile(pattern))
        return compiled[0].search(v) is not None  # jsonschema searches, with Python's re

    return check


def _sized(kind: type[Sized], most: bool) -> Callable[[_Compiler, Any], Check]:
    """maxLength/minLength, maxItems/minItems, maxProperties/minProperties: one call each,
    as they run on every string of every event."""

    def build(c: _Compiler, limit: Any) -> Check:
        if most:
            return lambda v: not isinstance(v, kind) or len(v) <= limit
        return lambda v: not isinstance(v, kind) or len(v) >= limit

    return build


def _bound(test: Callable[[Any, Any], bool]) -> Callable[[_Compiler, Any], Check]:
    def build(c: _Compiler, limit: Any) -> Check:
        return lambda v: not _is_number(v) or test(v, limit)

    return build


def _items(c: _Compiler, sub: Any) -> Check:
    item = c.schema(sub)
    return lambda v: not isinstance(v, list) or all(item(x) for x in v)


def _unique(c: _Compiler, flag: Any) -> Check:
    return (lambda v: not isinstance(v, list) or all_unique(v)) if flag else _always


def _all_of(c: _Compiler, subs: Any) -> Check:
    return _all([c.schema(s) for s in subs])


def _any_of(c: _Compiler, subs: Any) -> Check:
    checks = [c.schema(s) for s in subs]
    return lambda v: any(check(v) for check in checks)


def _one_of(c: _Compiler, subs: Any) -> Check:
    checks = [c.schema(s) for s in subs]
    return lambda v: sum(1 for check in checks if check(v)) == 1


def _not(c: _Compiler, sub: Any) -> Check:
    check = c.schema(sub)
    return lambda v: not check(v)


_SIMPLE: dict[str, Callable[[_Compiler, Any], Check]] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "maxLength": _sized(str, most=True),
    "minLength": _sized(str, most=False),
    "maxItems": _sized(list, most=True),
    "minItems": _sized(list, most=False),
    "maxProperties": _sized(dict, most=True),
    "minProperties": _sized(dict, most=False),
    "minimum": _bound(lambda v, n: not v < n),
    "maximum": _bound(lambda v, n: not v > n),
    "exclusiveMinimum": _bound(lambda v, n: not v <= n),
    "exclusiveMaximum": _bound(lambda v, n: not v >= n),
    "items": _items,
    "uniqueItems": _unique,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
}


def compile_checker(schema: Mapping[str, Any] | bool) -> Check:
    """A predicate giving jsonschema's Draft 2020-12 verdict on `schema` (its `$ref`s to
    `#/$defs/NAME` included); Unsupported for any keyword outside KEYWORDS."""
    return _Compiler(schema).schema(schema, root=True)
