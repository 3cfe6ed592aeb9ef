"""How rule files read plain scalars: YAML 1.2 core-schema resolution and conversion (what
editors and schema tools read), and how YAML 1.1 would have read the same text (for hints).

PyYAML's own resolver is YAML 1.1: `yes`/`no`/`on`/`off` are booleans, `010` is octal 8 and
`1:30` is 90 (base 60). yaml-language-server and check-jsonschema read YAML 1.2, so a rule file
meant two things. Here the safe loaders get the core schema's resolvers instead: booleans are
true/false (True/TRUE...), null is null/~/empty, integers are decimal, 0o or 0x, floats include
.inf and .nan; anything else plain is a string.

Merge keys (`<<: *base`) are not in the YAML 1.2 core schema, but yaml-language-server and
check-jsonschema both still merge them, and rule files use them to share event parts; they are
kept (and counted in the alias expansion budget by yamlload).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

_T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MERGE = (
    _T + n for n in ("str", "int", "float", "bool", "null", "merge"))

_BOOLS = {"true": True, "True": True, "TRUE": True,
          "false": False, "False": False, "FALSE": False}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL = {".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
            ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}

# (tag, pattern, first characters it can start with); PyYAML picks resolvers by first character.
_RESOLVERS = [
    (BOOL, r"true|True|TRUE|false|False|FALSE", "tTfF"),
    (INT, _INT.pattern, "-+0123456789"),
    (FLOAT, _FLOAT.pattern + r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)", "-+.0123456789"),
    (NULL, r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    (MERGE, r"<<", "<"),
]


def core_schema(base: Any) -> Any:
    """`base` (a PyYAML safe loader class) with YAML 1.2 core-schema resolution."""

    class CoreLoader(base):  # type: ignore[misc]
        yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    for tag, pattern, first in _RESOLVERS:
        CoreLoader.add_implicit_resolver(tag, re.compile(f"(?:{pattern})\\Z"), list(first))
    CoreLoader.__name__ = CoreLoader.__qualname__ = f"Core{base.__name__}"
    return CoreLoader


def to_int(node: ScalarNode) -> int:
    text = node.value
    if not _INT.fullmatch(text):
        raise ValueError(f"not a YAML 1.2 integer: {text!r}")
    if text[:2] in ("0o", "0x"):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)  # over 4,300 digits raises ValueError naming the digits


def to_float(node: ScalarNode) -> float:
    text = node.value
    sign, body = (text[0], text[1:]) if text[:1] in ("-", "+") else ("", text)
    if body in _SPECIAL and not (sign and math.isnan(_SPECIAL[body])):
        return -_SPECIAL[body] if sign == "-" else _SPECIAL[body]
    if not _FLOAT.fullmatch(text):
        raise ValueError(f"not a YAML 1.2 number: {text!r}")
    return float(text)


def to_bool(node: ScalarNode) -> bool:
    return _BOOLS[node.value]  # KeyError for anything else


def to_null(node: ScalarNode) -> None:
    if node.value not in _NULLS:
        raise ValueError(f"not a YAML 1.2 null: {node.value!r}")


CONVERT: dict[str, Any] = {INT: to_int, FLOAT: to_float, BOOL: to_bool, NULL: to_null}

_YAML11 = yaml.resolver.Resolver()
_YAML11_VALUES = yaml.constructor.SafeConstructor()


def yaml11_reading(text: str) -> tuple[str, Any] | None:
    """What YAML 1.1 (PyYAML's default) makes of a plain scalar YAML 1.2 reads as a string:
    ("boolean", True) for `yes`, ("number", 90) for `1:30`; None when it is a string there too."""
    tag = _YAML11.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag not in (BOOL, INT, FLOAT):
        return None
    node = ScalarNode(tag, text)
    try:
        value = {BOOL: _YAML11_VALUES.construct_yaml_bool, INT: _YAML11_VALUES.construct_yaml_int,
                 FLOAT: _YAML11_VALUES.construct_yaml_float}[tag](node)
    except (ValueError, KeyError, OverflowError):
        return None
    return ("boolean" if tag == BOOL else "number"), value
