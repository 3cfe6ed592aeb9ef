"""rules.schema.json itself: valid Draft 2020-12, documented everywhere, closed everywhere,
and in step with the event schema, the loader and the duration parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from emitter.rules import durations, loader, triggerspec
from emitter.rules import schemacheck as ruleschema
from emitter.schemas import load_schema

REPO = Path(__file__).resolve().parent.parent
SCHEMA = load_schema("rules")


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema with its place, skipping `if` blocks (they only discriminate)."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key in ("if", "enum", "const", "default", "examples"):
                continue
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}/{i}")


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_every_property_has_a_description() -> None:
    missing = [
        f"{where}/properties/{name}"
        for where, node in walk(SCHEMA)
        if isinstance(node.get("properties"), dict)
        for name, prop in node["properties"].items()
        if not (isinstance(prop, dict) and prop.get("description"))
    ]
    assert missing == []


def test_every_object_level_rejects_unknown_keys() -> None:
    open_levels = []
    for where, node in walk(SCHEMA):
        if "properties" not in node or node.get("additionalProperties") is False:
            continue
        # The discriminated trigger closes each variant in its `then` instead.
        thens = [branch.get("then", {}) for branch in node.get("allOf", [])]
        if thens and all(t.get("additionalProperties") is False for t in thens):
            continue
        open_levels.append(where)
    assert open_levels == []


def test_rule_event_fields_are_the_event_schema_fields() -> None:
    event_fields = set(load_schema("event")["properties"])
    assert set(SCHEMA["$defs"]["event"]["properties"]) == event_fields
    assert set(loader.EVENT_FIELDS) == event_fields


def test_trigger_types_match_the_loader() -> None:
    types = SCHEMA["$defs"]["trigger"]["properties"]["type"]["enum"]
    assert set(types) == set(triggerspec._BUILDERS)
    branches = [b["if"]["properties"]["type"]["const"] for b in SCHEMA["$defs"]["trigger"]["allOf"]]
    assert sorted(branches) == sorted(types)


def test_duration_pattern_is_the_parsers() -> None:
    pattern = SCHEMA["$defs"]["duration"]["anyOf"][1]["pattern"]
    assert pattern == durations.DURATION_PATTERN


def test_enum_values_match_the_event_schema() -> None:
    event = load_schema("event")["properties"]
    for name in ("priority", "alert_type"):
        rule_enum = SCHEMA["$defs"]["event"]["properties"][name]["anyOf"][0]["enum"]
        assert rule_enum == event[name]["enum"]


def test_the_example_rule_file_is_valid_as_editors_see_it() -> None:
    data = yaml.safe_load((REPO / "rules" / "deploy.yaml").read_text())
    assert list(Draft202012Validator(SCHEMA).iter_errors(data)) == []


BASE: dict[str, Any] = {"id": "r", "trigger": {"type": "manual"}, "event": {"title": "t"}}


@pytest.mark.parametrize(
    ("patch", "valid"),
    [
        ({}, True),
        ({"trigger": {"type": "schedule", "every": "5m"}}, True),
        ({"trigger": {"type": "schedule", "every": 30}}, True),
        ({"trigger": {"type": "schedule", "cron": "* * * * *", "every": "5m"}}, False),
        ({"trigger": {"type": "schedule"}}, False),
        ({"trigger": {"type": "schedule", "every": "5 minutes"}}, False),
        ({"trigger": {"type": "file", "path": "/x", "match": "a"}}, True),
        ({"trigger": {"type": "file", "path": "/x"}}, False),
        ({"trigger": {"type": "webhook", "path": "/h", "hmac_secret_env": "S"}}, True),
        ({"trigger": {"type": "webhook", "path": "h"}}, False),
        ({"trigger": {"type": "command", "command": ["ls", "-l"], "on": "change"}}, True),
        ({"trigger": {"type": "command", "command": []}}, False),
        ({"trigger": {"type": "manual", "path": "/x"}}, False),
        ({"trigger": {"type": "stdin"}}, True),
        ({"event": {"alert_type": "eror"}}, False),
        ({"event": {"alert_type": "{{ kind }}"}}, True),
        ({"event": {"date_happened": "1700000000"}}, False),
        ({"event": {"date_happened": "{{ ts }}"}}, True),
        ({"event": {"tags": "a"}}, False),
        ({"id": "-starts-with-dash"}, False),
        ({"id": "a" * 100}, True),
        ({"id": "a" * 101}, False),
        ({"params": {"x": {"type": "list", "example": [1]}}}, True),
        ({"params": {"x": {"type": "tuple"}}}, False),
        ({"params": {"1x": {}}}, False),
        ({"env": ["HOME", "HOME"]}, False),
        ({"throttle": {"window": "1h", "mode": "summary"}}, True),
        ({"throttle": {"key": "{{ host }}"}}, False),
    ],
)
def test_rule_instances(patch: dict[str, Any], valid: bool) -> None:
    document = {"version": 1, "rules": [{**BASE, **patch}]}
    errors = list(Draft202012Validator(SCHEMA).iter_errors(document))
    assert (errors == []) is valid, [e.message for e in errors]
    # The loader validates with local $refs inlined (faster): it must agree, error for error.
    inlined = list(ruleschema._validator().iter_errors(document))
    assert sorted(e.message for e in inlined) == sorted(e.message for e in errors)


def test_rule_event_descriptions_leave_limits_to_the_event_schema() -> None:
    # The limit's one home is event.schema.json; the rule side's hover text reads it from there.
    event = load_schema("event")["properties"]
    for name, field in event.items():
        if "maxLength" in field:
            rule_side = SCHEMA["$defs"]["event"]["properties"][name]["description"]
            assert str(field["maxLength"]) not in rule_side, name
