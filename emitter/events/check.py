"""Checking a rendered event exactly as it will be sent: schemas/event.schema.json plus the
date window, which JSON Schema cannot express because it depends on the current time.

The verdict comes from jsonschema-rs (emitter.schemaverdict); jsonschema, in the same dialect,
is imported and run only when that verdict is "invalid", to write the messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from emitter.events.limits import API_MAX_AGE, API_MAX_AHEAD, MILLISECONDS_FLOOR, SEED_MAX_AGE
from emitter.problems import Location, Problem, Severity, did_you_mean
from emitter.rules.model import Rule, Tmpl
from emitter.schemas import load_schema
from emitter.schemaverdict import Verdict, compile_verdict, message_validator

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["check_event", "date_problems", "is_valid", "schema_problems"]


# ---- the fast verdict ---------------------------------------------------------------------


@cache
def _fast() -> Verdict:
    """The verdict predicate, built without importing jsonschema (start-up time)."""
    return compile_verdict(load_schema("event"), _validator)


@cache
def _validator() -> Validator:
    return message_validator(load_schema("event"))


def is_valid(event: Any) -> bool:
    """The schema verdict alone (no date window), on the fast path."""
    return _fast()(event)


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
        hint = did_you_mean(value, limit) if isinstance(value, str) else ""
        return [(f"{name} is {value!r}; expected one of: {allowed}{hint}", path)]
    prefix = "$" if path == "$" else path
    if kind == "required" and isinstance(value, dict):
        missing = [r for r in limit if r not in value]
        return [(f"{field} is required", f"{prefix}.{field}") for field in missing]
    if kind == "additionalProperties" and isinstance(value, dict):
        known = schema.get("properties", {})
        return [(f"unknown field {key!r}{did_you_mean(str(key), known)}", f"{prefix}.{key}")
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
    validator = _validator()
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
        return problem(f"date_happened is {_span(age)} in the past; the limit is "
                       f"{SEED_MAX_AGE // 86400} days")
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

    Tags and source names Datadog would rewrite are lint warnings (emitter.validate.lint), not here.
    """
    problems = [] if _fast()(event) else schema_problems(event, rule)
    if "date_happened" in event:
        problems.extend(date_problems(event, now, rule))
    return problems
