"""Checks a loaded rule file against rules.schema.json and words each jsonschema error as a
Problem at the offending key or value (line:col), never as a dumped ValidationError.

The verdict comes from jsonschema-rs (emitter.schemaverdict); jsonschema, in the same dialect,
is imported and run only for a file that fails it, to find and word the errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from emitter.problems import Location, Problem, did_you_mean
from emitter.rules.yaml12 import yaml11_reading
from emitter.rules.yamlload import JsonPath, YamlDoc
from emitter.schemas import load_schema
from emitter.schemaverdict import Verdict, compile_verdict, message_validator

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


@cache
def _fast() -> Verdict:
    """The verdict predicate, built without importing jsonschema (start-up time)."""
    return compile_verdict(load_schema("rules"), _validator)


def is_valid(data: Any) -> bool:
    """rules.schema.json's verdict on a loaded document, without the messages."""
    return _fast()(data)


@cache
def _validator() -> Validator:
    # Local $refs are inlined once: resolving them on every use is a third of validation time.
    schema = load_schema("rules")
    return message_validator(_inline(schema, schema["$defs"]))


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}
    ref = out.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline(defs[ref[len("#/$defs/"):]], defs)
        # The referring schema's own keywords (a description, a default) sit beside the target's.
        return {**target, **out} if not set(out) & set(target) - {"description", "title"} \
            else {"allOf": [target], **out}
    if ref is not None:
        out["$ref"] = ref
    return out


def check_rules_schema(doc: YamlDoc) -> list[tuple[JsonPath, Problem]]:
    """Every schema problem of the document with the JSON path it concerns, deduplicated,
    in document order."""
    if _fast()(doc.data):
        return []
    found: dict[tuple[str, Location], tuple[JsonPath, Problem]] = {}
    for error in _validator().iter_errors(doc.data):
        path: JsonPath = tuple(error.absolute_path)
        for problem in _translate(doc, error):
            assert problem.location is not None
            found.setdefault((problem.message, problem.location), (path, problem))

    def order(item: tuple[JsonPath, Problem]) -> tuple[int, int]:
        where = item[1].location
        return (where.line, where.col) if where else (0, 0)

    return sorted(found.values(), key=order)


def describe(value: Any) -> str:
    """A value as a message shows it: `boolean true`, `number 1.5`, `string 'x'`, `a list`."""
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    return "a list" if isinstance(value, list) else "a mapping"


def quote_hint(doc: YamlDoc, path: JsonPath) -> str:
    """` from unquoted `yes`: quote it ('yes')` when YAML read an unquoted scalar as non-text."""
    plain = doc.plain_scalar(path)
    if plain is None:
        return ""
    if plain == "":
        return " (nothing is written after the colon)"
    return f" from unquoted `{plain}`: quote it ('{plain}')"


def yaml11_hint(doc: YamlDoc, path: JsonPath) -> str:
    """`: YAML 1.2 reads `yes` as a string; write true` when the value is an unquoted string
    that YAML 1.1 (older emitters, PyYAML) read as a boolean or a number."""
    text = doc.yaml11_spelling(path)
    reading = yaml11_reading(text) if text is not None else None
    if text is None or reading is None:
        return ""
    kind, value = reading
    if kind == "boolean":
        return f": YAML 1.2 reads `{text}` as a string; write {'true' if value else 'false'}"
    return (f": YAML 1.2 reads `{text}` as a string (YAML 1.1 read it as the number {value}); "
            f"write {value}")


def dotted(path: Sequence[str | int]) -> str:
    """`event.tags[1]`: a path as a user would write it, relative to the rule when in one."""
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        path = path[2:]
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def rule_id_at(doc: YamlDoc, path: JsonPath) -> str | None:
    """The id of the rule `path` is inside of, when it has a usable one."""
    if len(path) < 2 or path[0] != "rules" or not isinstance(path[1], int):
        return None
    rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
    if not isinstance(rules, list) or path[1] >= len(rules) or not isinstance(rules[path[1]], dict):
        return None
    rid = rules[path[1]].get("id")
    return rid if isinstance(rid, str) else None


def _where(path: JsonPath) -> str:
    if not path:
        return "at the top level"
    if len(path) == 2 and path[0] == "rules":
        return "in the rule"
    return f"in {dotted(path)}"


def _schema(error: ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}


def _expected(error: ValidationError) -> Any:
    # The typing stubs allow an "unset" marker; a reported error always has its value.
    return error.validator_value


def _instance(error: ValidationError) -> Any:
    return error.instance


def _translate(doc: YamlDoc, error: ValidationError) -> list[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    rid = rule_id_at(doc, path)

    def at(location: Location, message: str) -> Problem:
        return Problem(message, location, rule_id=rid, check="schema")

    kind, instance = error.validator, _instance(error)
    if "propertyNames" in error.absolute_schema_path:
        name = str(error.instance)
        return [at(doc.key_location((*path, name)),
                   f"{name!r} is not a usable name {_where(path)}: use a letter or '_', "
                   "then letters, digits or '_'")]
    if kind == "additionalProperties":
        allowed = _schema(error).get("properties", {})
        return [
            at(doc.key_location((*path, key)),
               f"unknown key {key!r} {_where(path)}{did_you_mean(key, allowed)}")
            for key in instance if key not in allowed
        ]
    if kind == "required":
        return [
            at(doc.location(path), f"missing required key {key!r} {_where(path)}")
            for key in _expected(error) if key not in instance
        ]
    return [at(doc.location(path), _value_message(doc, error, path) + yaml11_hint(doc, path))]


def _value_message(doc: YamlDoc, error: ValidationError, path: JsonPath) -> str:
    kind, value, schema = error.validator, error.instance, _schema(error)
    field = dotted(path) or ("the rule" if path else "the file")
    if path == ("version",) and kind == "const":
        return f"unsupported version {value!r}: this emitter reads rule files of version 1"
    if kind == "type":
        expected = _expected(error)
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_EXPECTED.get(n, n) for n in names)
        hint = quote_hint(doc, path) if "string" in names else ""
        return f"{field}: expected {wanted}, got {describe(value)}{hint}"
    if kind == "enum":
        return _enum_message(doc, field, value, _expected(error), path, "")
    if kind in ("anyOf", "oneOf"):
        return _choice_message(doc, error, field, path)
    if kind == "pattern":
        what = schema.get("title", "value")
        why = schema.get("errorMessage", f"it must match {schema['pattern']}")
        return f"{field}: {value!r} is not a valid {what}: {why}"
    if isinstance(schema, dict) and "errorMessage" in schema:
        return f"{field}: {schema['errorMessage']}"
    return f"{field}: {error.message}"


def _enum_message(
    doc: YamlDoc, field: str, value: Any, allowed: Sequence[Any], path: JsonPath, extra: str
) -> str:
    choices = ", ".join(str(a) for a in allowed) + extra
    if not isinstance(value, str):
        got = describe(value) + quote_hint(doc, path)
        return f"{field}: expected one of: {choices}, got {got}"
    hint = did_you_mean(value, [str(a) for a in allowed])
    return f"{field}: {value!r} is not allowed{hint}; expected one of: {choices}"


def _choice_message(doc: YamlDoc, error: ValidationError, field: str, path: JsonPath) -> str:
    schema, value = _schema(error), error.instance
    branches = schema.get(str(error.validator), [])
    enums = [b["enum"] for b in branches if isinstance(b, dict) and "enum" in b]
    if enums:
        return _enum_message(doc, field, value, enums[0], path,
                             ", or a template containing {{ }}")
    if "errorMessage" in schema:
        if error.validator == "oneOf" and isinstance(value, dict):
            return f"{field}: {schema['errorMessage']}"
        unquote = ""
        if path[-1:] == ("date_happened",) and isinstance(value, str) and value.isdigit():
            unquote = ": remove the quotes, it is sent as an integer"
        return f"{field}: {schema['errorMessage']}, got {describe(value)}{unquote}"
    from jsonschema.exceptions import best_match

    best = best_match(error.context or [])
    if best is None:
        return f"{field}: {error.message}"
    return _value_message(doc, best, path)
