"""The compiled schema checker (emitter.events.fastschema) gives jsonschema's verdict: keyword by
keyword on generated values, and on rules.schema.json for every rule and example file plus
generated mutations of valid rule documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from emitter.events.fastschema import Unsupported, compile_checker
from emitter.rules import schemacheck as ruleschema
from emitter.rules.yamlload import load_yaml
from emitter.schemas import load_schema

REPO = Path(__file__).resolve().parent.parent
RULES_SCHEMA = load_schema("rules")
REFERENCE = Draft202012Validator(RULES_SCHEMA)
FAST = compile_checker(RULES_SCHEMA)

SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats()
           | st.sampled_from([0.0, 1.0, -0.5, 2**70]) | st.text(max_size=3)
           | st.sampled_from(["a", "ab", "1", "{{ x }}"]))
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "_c", "1x", "type"]) | st.text(max_size=2),
                      inner, max_size=3),
    max_leaves=6,
)


# ---- keyword by keyword -------------------------------------------------------------------

SMALL_SCHEMAS: list[Any] = [
    True, False, {},
    {"type": "integer"}, {"type": "number"}, {"type": ["string", "null"]},
    {"type": "boolean"}, {"type": "object"}, {"type": "array"},
    {"const": 1}, {"const": True}, {"const": [1, "a"]}, {"const": {"a": 0}}, {"const": None},
    {"enum": [1, True, "a", None, [0], {"a": False}]}, {"enum": ["a", "ab"]},
    {"pattern": "^a"}, {"pattern": "b$", "minLength": 2}, {"maxLength": 1},
    {"minimum": 0}, {"maximum": 1.5}, {"exclusiveMinimum": 0}, {"exclusiveMaximum": 0},
    {"minItems": 1}, {"maxItems": 1}, {"uniqueItems": True}, {"uniqueItems": False},
    {"items": {"type": "string"}}, {"items": False}, {"minProperties": 1}, {"maxProperties": 1},
    {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
    {"properties": {"a": {}}, "additionalProperties": False},
    {"additionalProperties": {"type": "string"}},
    {"propertyNames": {"pattern": "^[a-z_]+$"}}, {"propertyNames": {"maxLength": 1}},
    {"anyOf": [{"type": "string"}, {"minimum": 1}]},
    {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
    {"allOf": [{"type": "number"}, {"maximum": 2}]}, {"not": {"type": "array"}},
    {"if": {"properties": {"a": {"const": 1}}, "required": ["a"]},
     "then": {"required": ["b"]}, "else": {"maxProperties": 1}},
    {"if": {"type": "string"}, "then": {"minLength": 1}}, {"then": {"type": "string"}},
    {"$defs": {"node": {"type": ["array", "integer"], "items": {"$ref": "#/$defs/node"}}},
     "$ref": "#/$defs/node"},
    {"$defs": {"s": {"type": "string"}}, "type": "object",
     "additionalProperties": {"$ref": "#/$defs/s"}, "title": "t", "errorMessage": "m"},
]


@pytest.mark.parametrize("schema", SMALL_SCHEMAS, ids=range(len(SMALL_SCHEMAS)))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSONISH)
def test_each_keyword_gives_jsonschemas_verdict(schema: Any, value: Any) -> None:
    assert compile_checker(schema)(value) == Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"const": 1}, 1.0, True), ({"const": 1}, True, False), ({"enum": [0]}, False, False),
        ({"uniqueItems": True}, [1, True], True), ({"uniqueItems": True}, [1, 1.0], False),
        ({"uniqueItems": True}, [{"a": 1}, {"a": 1}], False),
        ({"uniqueItems": True}, [[0], [False]], True),
        ({"type": "integer"}, 2.0, True), ({"minimum": 0}, float("nan"), True),
        ({"pattern": "b"}, "abc", True), ({"propertyNames": {"pattern": "^a"}}, {1: 0}, True),
    ],
)
def test_json_semantics(schema: Any, value: Any, valid: bool) -> None:
    assert Draft202012Validator(schema).is_valid(value) is valid  # the cases mean something
    assert compile_checker(schema)(value) is valid


@pytest.mark.parametrize(
    "schema",
    [
        {"format": "date-time"}, {"multipleOf": 2}, {"prefixItems": [{}]},
        {"patternProperties": {"^a": {}}}, {"dependentRequired": {"a": ["b"]}},
        {"contains": {}}, {"unevaluatedProperties": False}, {"x-custom": 1},
        {"$ref": "#/properties/a"}, {"$ref": "#/$defs/missing"}, {"$ref": "other.json"},
        {"properties": {"a": {"$id": "inner"}}}, {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"type": "decimal"}, {"items": [{}]},
    ],
)
def test_anything_else_is_refused_not_guessed(schema: Any) -> None:
    with pytest.raises(Unsupported):
        compile_checker(schema)


def test_our_schemas_are_within_the_fast_checker() -> None:
    # A schema edit that needs jsonschema for the verdict fails here, not silently slower.
    for name in ("rules", "event"):
        compile_checker(load_schema(name))


# ---- rules.schema.json on real files ------------------------------------------------------

RULE_FILES = sorted([*REPO.glob("rules/*.yaml"), *REPO.glob("tests/examples/**/*.yaml")])


def loaded(path: Path) -> Iterator[Any]:
    """The document as the loader sees it, and as plain PyYAML reads it."""
    doc, _ = load_yaml(str(path))
    if doc is not None:
        yield doc.data
    try:
        yield yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return


def verdicts(document: Any) -> tuple[bool, bool, bool]:
    return (FAST(document), REFERENCE.is_valid(document),
            ruleschema._validator().is_valid(document))


@pytest.mark.parametrize("path", RULE_FILES, ids=[str(p.relative_to(REPO)) for p in RULE_FILES])
def test_every_rule_and_example_file_gets_jsonschemas_verdict(path: Path) -> None:
    for document in loaded(path):
        fast, reference, inlined = verdicts(document)
        assert fast == reference == inlined


def test_the_files_include_both_verdicts() -> None:
    found = {REFERENCE.is_valid(d) for p in RULE_FILES for d in loaded(p)}
    assert found == {True, False}


# ---- mutations of valid rule documents ----------------------------------------------------

VALID_DOCS = [d for p in RULE_FILES for d in loaded(p) if REFERENCE.is_valid(d)]
TRIGGER_TYPES = ["manual", "schedule", "file", "webhook", "command", "stdin"]
WORDS = [*TRIGGER_TYPES, "normal", "low", "high", "error", "eror", "info", "success", "warning",
         "first", "summary", "always", "change", "failure", "string", "list", "tuple", "1x",
         "5m", "5 minutes", "0 9 * * 1-5", "/hooks/x", "hooks", "X-Sig", "X Sig", "{{ x }}", "",
         "HOME", "-id"]


def _names(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node.get("properties", {})) | {n for v in node.values() for n in _names(v)}
    if isinstance(node, list):
        return {n for v in node for n in _names(v)}
    return set()


KEYS = sorted(_names(RULES_SCHEMA) | {"extra", "Type", "evry", "1x", "my-var", ""})
SWAPS = JSONISH | st.sampled_from(WORDS) | st.sampled_from(
    [None, True, False, 0, 1, 1.0, -1, 1.5, float("inf"), [], ["a"], ["a", "a"], {},
     {"type": "manual"}, {"type": "schedule", "every": "1m"}, [{"id": "x"}]])


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    children = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, value in children:
        yield from _paths(value, (*here, key))


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    return [_copy(v) for v in node] if isinstance(node, list) else node


@st.composite  # every drawn value is copied: later steps edit it in place
def mutated(draw: st.DrawFn) -> Any:
    document = _copy(draw(st.sampled_from(VALID_DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for step in path[:-1]:
            parent = parent[step]
        target = parent[path[-1]] if path else document
        op = draw(st.sampled_from(["drop", "add", "swap", "word", "retype"]))
        if op == "drop" and path:
            del parent[path[-1]]
        elif op == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(KEYS))] = _copy(draw(SWAPS))
        elif op == "add" and isinstance(target, list):
            target.append(_copy(draw(SWAPS)))
        elif op in ("swap", "word") and path:
            parent[path[-1]] = _copy(draw(SWAPS if op == "swap" else st.sampled_from(WORDS)))
        elif op == "retype" and isinstance(target, dict) and "type" in target:
            target["type"] = draw(st.sampled_from([*TRIGGER_TYPES, "cron", 1]))
        elif not path:
            document = _copy(draw(SWAPS))
    return document


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_rule_documents_get_jsonschemas_verdict(document: Any) -> None:
    fast, reference, inlined = verdicts(document)
    assert fast == reference == inlined


def test_mutations_reach_both_verdicts() -> None:
    # Without this the test above could pass by only ever comparing "invalid" with "invalid".
    options = settings(database=None, max_examples=2000)
    changed = find(mutated(), lambda d: REFERENCE.is_valid(d) and d not in VALID_DOCS,
                   settings=options)
    assert FAST(changed)
    broken = find(mutated(), lambda d: not REFERENCE.is_valid(d), settings=options)
    assert not FAST(broken)
