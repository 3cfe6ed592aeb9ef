"""`emitter schema`: prints each JSON Schema, valid against the 2020-12 metaschema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from emitter.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["rules", "event", "ruletest"])
def test_prints_the_schema_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", name]) == 0
    printed = json.loads(capsys.readouterr().out)
    on_disk = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text("utf-8"))
    assert printed == on_disk
    Draft202012Validator.check_schema(printed)


def test_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["schema", "nope"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _properties_without_description(schema: object, where: str = "$") -> list[str]:
    missing: list[str] = []
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                missing.append(f"{where}.{name}")
        for key, sub in schema.items():
            missing += _properties_without_description(sub, f"{where}.{key}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            missing += _properties_without_description(sub, f"{where}[{i}]")
    return missing


def test_every_ruletest_property_has_a_description() -> None:
    schema = json.loads((ROOT / "schemas" / "ruletest.schema.json").read_text("utf-8"))
    assert _properties_without_description(schema) == []
    # properties reached through $ref get their description from the $def they point to
    for name, sub in schema["$defs"].items():
        assert "description" in sub, name
