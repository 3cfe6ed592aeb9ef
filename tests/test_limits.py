"""The one table of event limits (emitter.events.limits) and the places that must repeat it:
the event schema (for editors and check-jsonschema) states the same field lengths."""

from __future__ import annotations

from emitter.events import limits
from emitter.schemas import load_schema


def test_the_event_schema_states_the_tables_field_lengths() -> None:
    properties = load_schema("event")["properties"]
    stated = {name: spec["maxLength"] for name, spec in properties.items() if "maxLength" in spec}
    assert stated == dict(limits.FIELD_MAX)


def test_the_schema_descriptions_quote_the_same_numbers() -> None:
    properties = load_schema("event")["properties"]
    for name, most in limits.FIELD_MAX.items():
        assert f"At most {most} characters" in properties[name]["description"], name


def test_the_date_window_in_the_schema_description_is_the_tables() -> None:
    description = load_schema("event")["properties"]["date_happened"]["description"]
    assert f"{limits.SEED_MAX_AGE // 86400}-day window" in description
