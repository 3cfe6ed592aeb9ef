"""A rule's params: typed values from `--var NAME=VALUE` strings and JSON, and the example
variable sets `emitter validate` renders every rule with (examples x enum combinations).

Variables a trigger provides (a webhook's `payload`, a file line's `line`) are not params;
their sample values come from the trigger's declaration (emitter.triggers.registry).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from emitter.errors import UsageError
from emitter.problems import Problem, Severity, closest
from emitter.rules.jsonvalue import parse_json
from emitter.rules.model import MISSING, Param, Rule

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "object": (dict,),
}


# ---- checking values ----------------------------------------------------------------------


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def type_matches(param: Param, value: Any) -> bool:
    """Whether `value` (already typed, e.g. from JSON) has the param's declared type."""
    if isinstance(value, bool) and param.type in ("integer", "number"):
        return False
    return isinstance(value, _JSON_TYPES[param.type])


def convert(param: Param, text: str) -> Any:
    """Convert one --var string by the param's type; raises ValueError with a reason."""
    kind = param.type
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if kind == "number":
        try:
            return float(text) if any(c in text for c in ".eE") else int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueError(f"{text!r} is not a boolean (use true/false, yes/no or 1/0)")
    try:
        value = parse_json(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{kind} values are JSON; {text[:80]!r} is not ({exc.msg})") from None
    if not type_matches(param, value):
        raise ValueError(f"{text!r} is JSON but not {_a(kind)}")
    return value


def _enum_problem(param: Param, value: Any) -> str | None:
    if param.enum is None or value in param.enum:
        return None
    allowed = ", ".join(json.dumps(v) for v in param.enum)
    return f"{param.name}: {value!r} is not one of {allowed}"


def _unknown(name: str, rule: Rule) -> str:
    known = [p.name for p in rule.params]
    close = closest(name, known)
    hint = f"; did you mean {close!r}?" if close else ""
    listed = ", ".join(known) if known else "none"
    return f"unknown variable {name!r} for rule {rule.id!r}{hint} (params: {listed})"


def coerce_vars(rule: Rule, raw: Mapping[str, str],
                json_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Typed variables for one render: JSON values first, --var strings over them, then
    defaults. Raises UsageError listing every problem (unknown names, bad values, missing
    required params, values outside `enum`)."""
    errors: list[str] = []
    bad: set[str] = set()  # names already reported, so "required" is not said twice
    values: dict[str, Any] = {}
    for name, value in (json_vars or {}).items():
        param = rule.param(name)
        if param is None:
            errors.append(_unknown(name, rule))
        elif not type_matches(param, value):
            errors.append(f"{name}: {value!r} from the vars file is not {_a(param.type)}")
            bad.add(name)
        else:
            values[name] = value
    for name, text in raw.items():
        param = rule.param(name)
        if param is None:
            errors.append(_unknown(name, rule))
            continue
        try:
            values[name] = convert(param, text)
        except ValueError as exc:
            errors.append(f"{name}: {exc}")
            bad.add(name)
    for param in rule.params:
        if param.name not in values:
            if param.default is not MISSING:
                values[param.name] = param.default
            elif param.name not in bad:
                errors.append(f"{param.name}: required (set it with --var {param.name}=VALUE)")
        elif (problem := _enum_problem(param, values[param.name])) is not None:
            errors.append(problem)
    if errors:
        raise UsageError("invalid variables:\n  " + "\n  ".join(errors))
    return values


# ---- example sets for validate ------------------------------------------------------------


def _candidates(param: Param) -> list[Any] | None:
    """The values validate tries for one param, example first; None when there is none."""
    values: list[Any] = []
    if param.example is not MISSING:
        values.append(param.example)
    if param.enum is not None:
        values.extend(v for v in param.enum if v not in values)
    elif not values and param.default is not MISSING:
        values.append(param.default)
    return values or None


def example_variable_sets(rule: Rule, limit: int = 64) -> tuple[list[dict[str, Any]],
                                                                 list[Problem]]:
    """Variable sets to render `rule` with: the examples first, then every combination of
    enum values (at most `limit` sets; a warning says when more were left out).

    A param with no example, default or enum makes the rule unrenderable: ([], [warning]).
    (The loader has already checked examples against their param's type and enum.)
    """
    problems: list[Problem] = []
    choices: list[list[Any]] = []
    for param in rule.params:
        values = _candidates(param)
        if values is None:
            problems.append(Problem(
                f"param {param.name} has no example: validate cannot render this rule",
                param.location or rule.location, Severity.WARNING, rule.id, check="params"))
            return [], problems
        choices.append(values)
    names = [p.name for p in rule.params]
    combos = list(itertools.islice(itertools.product(*choices), limit + 1))
    if len(combos) > limit:
        total = 1
        for values in choices:
            total *= len(values)
        problems.append(Problem(
            f"{total} combinations of param values; validate rendered the first {limit}",
            rule.location, Severity.WARNING, rule.id, check="params"))
        combos = combos[:limit]
    return [dict(zip(names, combo, strict=True)) for combo in combos], problems
