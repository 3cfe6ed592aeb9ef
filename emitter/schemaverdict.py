"""JSON Schema in one dialect: the verdict from jsonschema-rs (hot path), and the jsonschema
validator that words the errors, made to read patterns and numbers as jsonschema-rs does.

The two libraries differ where Python's `re` is not ECMA-262 (`$` also matches before a final
newline, `\\d` and `\\w` match non-ASCII digits and letters) and on NaN and infinity (not JSON
numbers). The message writer asks jsonschema-rs for those keywords, so a verdict of "invalid"
always comes with its errors. tests/test_schemaverdict.py runs both on generated documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import jsonschema_rs

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

Verdict = Callable[[Any], bool]
# What jsonschema-rs raises for a value it cannot read as JSON: a timedelta, an int dict key,
# a lone surrogate, nesting deeper than its converter goes.
_NOT_JSON = (ValueError, TypeError, OverflowError, RecursionError)


def compile_verdict(schema: Mapping[str, Any] | bool, words: Callable[[], Validator]) -> Verdict:
    """`schema`'s verdict from jsonschema-rs; a value that is not JSON-shaped is left to the
    message writer `words()` (which sees any Python value, and is only built then)."""
    validator = jsonschema_rs.validator_for(_plain(schema))

    def is_valid(instance: Any) -> bool:
        try:
            return bool(validator.is_valid(instance))
        except _NOT_JSON:
            return bool(words().is_valid(instance))

    return is_valid


@cache
def _pattern(pattern: str) -> Any:
    return jsonschema_rs.validator_for({"pattern": pattern})


@cache
def _type(name: str) -> Any:
    return jsonschema_rs.validator_for({"type": name})


def _rs_says(validator: Any, instance: Any) -> bool:
    try:
        return bool(validator.is_valid(instance))
    except _NOT_JSON:
        return False


@cache
def message_validator_class() -> type[Validator]:
    """Draft 2020-12 as jsonschema-rs decides `pattern`, the number types and arrays."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, regex: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not _rs_says(_pattern(regex), instance):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    def number(kind: str) -> Callable[[Any, Any], bool]:
        base = Draft202012Validator.TYPE_CHECKER

        def check(checker: Any, instance: Any) -> bool:
            return bool(base.is_type(instance, kind)) and _rs_says(_type(kind), instance)

        return check

    def array(checker: Any, instance: Any) -> bool:
        return isinstance(instance, (list, tuple))  # a tuple is sent as a JSON array

    checker = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"number": number("number"), "integer": number("integer"), "array": array})
    extended: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, validators={"pattern": pattern}, type_checker=checker)
    return extended


def message_validator(schema: Mapping[str, Any] | bool) -> Validator:
    """A jsonschema validator for `schema` in jsonschema-rs's dialect: it writes the errors."""
    return message_validator_class()(_plain(schema))


def _plain(schema: Mapping[str, Any] | bool) -> Any:
    return schema if isinstance(schema, (bool, dict)) else dict(schema)
