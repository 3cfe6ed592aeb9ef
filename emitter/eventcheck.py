"""Checking a rendered event exactly as it will be sent: schemas/event.schema.json plus the
date window, which JSON Schema cannot express because it depends on the current time.

jsonschema (Draft 2020-12) is the source of truth and writes every message. A checker
generated from the same schema at import gives the verdict on the hot path; jsonschema runs
only when that verdict is "invalid". tests/test_eventcheck.py proves both agree.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from emitter.model import Rule, Tmpl
from emitter.problems import Location, Problem, Severity
from emitter.schemas import load_schema

Check = Callable[[Any], bool]

SEED_MAX_AGE = 389 * 86400  # the seed's limit: an error
API_MAX_AGE = 18 * 3600  # today's API answers "Event too far in the past" beyond this
API_MAX_AHEAD = 2 * 3600
MILLISECONDS_FLOOR = 10**11  # seconds past this are in the year 5138: surely milliseconds


# ---- the fast verdict ---------------------------------------------------------------------

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "examples"}
)
_KEYWORDS = frozenset(
    {"type", "enum", "maxLength", "minLength", "properties", "required",
     "additionalProperties", "items"}
)


class Unsupported(Exception):
    """The schema uses a keyword the fast checker does not implement."""


def _is_integer(v: Any) -> bool:
    # As jsonschema's Draft 2020-12 type checker: bools are not integers, 1.0 is.
    if isinstance(v, int):
        return not isinstance(v, bool)
    return isinstance(v, float) and v.is_integer()


_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _type_check(spec: Any) -> Check:
    names = [spec] if isinstance(spec, str) else list(spec)
    if not names or any(n not in _TYPES for n in names):
        raise Unsupported(f"type {spec!r}")
    checks = [_TYPES[n] for n in names]
    if len(checks) == 1:
        return checks[0]
    return lambda v: any(c(v) for c in checks)


def _enum_check(values: Any) -> Check:
    if not all(isinstance(v, str) for v in values):
        raise Unsupported("enum with non-string values")  # JSON equality of 1/True/1.0
    allowed = frozenset(values)
    return lambda v: isinstance(v, str) and v in allowed


def _object_check(schema: Mapping[str, Any]) -> Check:
    props = {name: compile_checker(sub) for name, sub in schema.get("properties", {}).items()}
    required = tuple(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    if extra is not True and extra is not False:
        raise Unsupported("additionalProperties with a schema")

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for name in required:
            if name not in v:
                return False
        for key, value in v.items():
            sub = props.get(key)
            if sub is None:
                if extra is False:
                    return False
            elif not sub(value):
                return False
        return True

    return check


def compile_checker(schema: Mapping[str, Any]) -> Check:
    """A predicate with jsonschema's verdict for the keywords in _KEYWORDS; Unsupported else."""
    unknown = set(schema) - _ANNOTATIONS - _KEYWORDS
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    checks: list[Check] = []
    if "type" in schema:
        checks.append(_type_check(schema["type"]))
    if "enum" in schema:
        checks.append(_enum_check(schema["enum"]))
    if "maxLength" in schema:
        most = int(schema["maxLength"])
        checks.append(lambda v: not isinstance(v, str) or len(v) <= most)
    if "minLength" in schema:
        least = int(schema["minLength"])
        checks.append(lambda v: not isinstance(v, str) or len(v) >= least)
    if "items" in schema:
        item = compile_checker(schema["items"])
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
    if {"properties", "required", "additionalProperties"} & set(schema):
        checks.append(_object_check(schema))
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(c(v) for c in checks)


@cache
def _validators() -> tuple[Draft202012Validator, Check]:
    schema = load_schema("event")
    validator = Draft202012Validator(schema)
    try:
        fast = compile_checker(schema)
    except Unsupported:
        fast = validator.is_valid  # a schema beyond the fast checker: correct, just slower
    return validator, fast


def is_valid(event: Any) -> bool:
    """The schema verdict alone (no date window), on the fast path."""
    return _validators()[1](event)


# ---- messages -----------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return f"a {type(value).__name__} (not a JSON value)"


def _name(json_path: str) -> str:
    return json_path[2:] if json_path.startswith("$.") else json_path


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_message(name: str, expected: Any, value: Any) -> str:
    wanted = " or ".join([expected] if isinstance(expected, str) else expected)
    article = "an" if wanted[0] in "aeiou" else "a"
    message = f"{name} must be {article} {wanted}, not {_json_type(value)}"
    if "integer" in wanted and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        message += f" ({value!r} is a quoted number: send it without quotes)"
    return message


def _messages(error: ValidationError) -> list[tuple[str, str]]:
    """(message, json_path) pairs for one jsonschema error."""
    path, kind = error.json_path, error.validator
    value: Any = error.instance
    limit: Any = error.validator_value  # the keyword's value in the schema
    schema: Any = error.schema
    name = _name(path)
    if kind == "maxLength":
        return [(f"{name} is {len(value)} characters; the limit is {limit}", path)]
    if kind == "minLength":
        return [(f"{name} is {len(value)} characters; at least {limit} are required", path)]
    if kind == "type":
        return [(_type_message(name, limit, value), path)]
    if kind == "enum":
        allowed = ", ".join(str(v) for v in limit)
        hint = _did_you_mean(value, limit) if isinstance(value, str) else ""
        return [(f"{name} is {value!r}; expected one of: {allowed}{hint}", path)]
    prefix = "$" if path == "$" else path
    if kind == "required" and isinstance(value, dict):
        missing = [r for r in limit if r not in value]
        return [(f"{field} is required", f"{prefix}.{field}") for field in missing]
    if kind == "additionalProperties" and isinstance(value, dict):
        known = schema.get("properties", {})
        return [(f"unknown field {key!r}{_did_you_mean(str(key), known)}", f"{prefix}.{key}")
                for key in value if key not in known]
    return [(error.message, path)]


def _field_location(rule: Rule | None, json_path: str) -> Location | None:
    """The rule-file place of the template that produced the value at `json_path`."""
    if rule is None:
        return None
    match = re.match(r"\$\.(\w+)(?:\[(\d+)\])?", json_path)
    value = rule.event.get(match.group(1)) if match else None
    if isinstance(value, Tmpl):
        return value.location
    if isinstance(value, tuple) and match and match.group(2) is not None:
        index = int(match.group(2))
        if index < len(value) and isinstance(value[index], Tmpl):
            return value[index].location
    return rule.location


def _order(event: Any, error: ValidationError) -> tuple[int, str]:
    """Problems in the order the event's fields are written (the rule's order)."""
    path = list(error.absolute_path)
    fields = list(event) if isinstance(event, dict) else []
    first = path[0] if path else None
    return (fields.index(first) if first in fields else -1, json.dumps(path[1:], default=str))


def schema_problems(event: Any, rule: Rule | None = None) -> list[Problem]:
    """Every schema error of `event`, in readable words, each with its JSON path."""
    validator = _validators()[0]
    rule_id = rule.id if rule else None
    seen: dict[tuple[str, str], None] = {}
    for error in sorted(validator.iter_errors(event), key=lambda e: _order(event, e)):
        for pair in _messages(error):
            seen.setdefault(pair)
    return [
        Problem(message, _field_location(rule, path), Severity.ERROR, rule_id, path, "event")
        for message, path in seen
    ]


# ---- what the schema cannot say -----------------------------------------------------------


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 60:.0f} minutes"


def date_problems(event: Mapping[str, Any], now: datetime, rule: Rule | None) -> list[Problem]:
    """The date window: the seed's 389 days (error) and today's API window (warnings)."""
    when = event.get("date_happened")
    if not isinstance(when, int) or isinstance(when, bool):
        return []
    path = "$.date_happened"

    def problem(message: str, severity: Severity = Severity.ERROR) -> list[Problem]:
        loc = _field_location(rule, path)
        return [Problem(message, loc, severity, rule.id if rule else None, path, "date")]

    if when > MILLISECONDS_FLOOR:
        return problem(f"date_happened {when} looks like milliseconds; it must be POSIX seconds "
                       f"(divide by 1000: {when // 1000})")
    age = now.timestamp() - when
    if age > SEED_MAX_AGE:
        return problem(f"date_happened is {_span(age)} in the past; the limit is 389 days")
    if age > API_MAX_AGE:
        return problem(f"date_happened is {_span(age)} in the past: today's API rejects events "
                       "older than 18 hours (\"Event too far in the past\")", Severity.WARNING)
    if -age > API_MAX_AHEAD:
        return problem(f"date_happened is {_span(-age)} in the future; the API accepts at most "
                       "2 hours ahead", Severity.WARNING)
    return []


def check_event(event: Mapping[str, Any], *, now: datetime,
                rule: Rule | None = None) -> list[Problem]:
    """Every problem of `event` as it would be sent; errors and warnings, each with its place.

    Tags and source names Datadog would rewrite are lint warnings (emitter.lint), not here.
    """
    problems = [] if _validators()[1](event) else schema_problems(event, rule)
    if "date_happened" in event:
        problems.extend(date_problems(event, now, rule))
    return problems
