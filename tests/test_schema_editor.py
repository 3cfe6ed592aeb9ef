"""What an editor shows on hover: every property of every schema has examples that the schema
accepts and a markdownDescription exactly as emitter.schemadocs writes it; the catalog names
each schema by its $id."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from emitter import schemadocs
from emitter.rules.loader import TEST_SUFFIXES
from emitter.rules.yamlload import load_yaml
from emitter.schemas import load_schema

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("rules", "event", "ruletest")
BLOCK = re.compile(r"```yaml\n(.*?)\n```", re.DOTALL)


def _properties() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [(name, pointer, prop_name, prop)
            for name in NAMES
            for pointer, prop_name, prop in schemadocs.properties(load_schema(name))]


PROPERTIES = _properties()
IDS = [f"{name}:{pointer}" for name, pointer, _, _ in PROPERTIES]


def test_every_schema_is_covered() -> None:
    counts = {name: sum(1 for n, *_ in PROPERTIES if n == name) for name in NAMES}
    assert counts["event"] == len(load_schema("event")["properties"])
    assert min(counts.values()) > 0


@pytest.mark.parametrize(("name", "pointer", "prop_name", "prop"), PROPERTIES, ids=IDS)
def test_property_has_hover_text_with_an_example(
        name: str, pointer: str, prop_name: str, prop: dict[str, Any]) -> None:
    schema = load_schema(name)
    assert schemadocs.description(schema, prop), "no description"
    assert schemadocs.examples(schema, prop), "no examples"
    assert BLOCK.search(prop.get(schemadocs.MD, "")), "no ```yaml example in markdownDescription"


@pytest.mark.parametrize(("name", "pointer", "prop_name", "prop"), PROPERTIES, ids=IDS)
def test_examples_are_valid_for_their_property(
        name: str, pointer: str, prop_name: str, prop: dict[str, Any]) -> None:
    schema = load_schema(name)
    # evolve keeps the whole schema as the base, so the property's local $refs resolve.
    validator = Draft202012Validator(schema).evolve(schema=prop)
    for example in schemadocs.examples(schema, prop):
        assert [e.message for e in validator.iter_errors(example)] == [], example


def test_an_invalid_example_is_caught() -> None:
    schema = load_schema("rules")
    every = schema["$defs"]["trigger"]["allOf"][2]["then"]["properties"]["every"]
    validator = Draft202012Validator(schema).evolve(schema=every)
    assert list(validator.iter_errors("5 minutes"))  # reached through $ref #/$defs/duration
    assert not list(validator.iter_errors("5m"))


@pytest.mark.parametrize(("name", "pointer", "prop_name", "prop"), PROPERTIES, ids=IDS)
def test_yaml_blocks_read_back_as_the_examples(
        name: str, pointer: str, prop_name: str, prop: dict[str, Any], tmp_path: Path) -> None:
    blocks = BLOCK.findall(prop[schemadocs.MD])
    read = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"{i}.yaml"
        path.write_text(block + "\n", encoding="utf-8")
        doc, problems = load_yaml(str(path))  # YAML 1.2, as the editor reads the snippet
        assert problems == [] and doc is not None
        read.append(doc.data[prop_name])
    assert read == schemadocs.examples(load_schema(name), prop)


def test_markdown_descriptions_are_what_the_generator_writes() -> None:
    assert schemadocs.sync(ROOT) == [], "run: python -m emitter.schemadocs --write"


def test_write_regenerates_a_stale_hover_and_keeps_the_layout(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    path = tmp_path / "schemas" / "rules.schema.json"
    original = path.read_text("utf-8")
    stale = original.replace('"description": "The rule file format version. Only 1 exists."',
                             '"description": "The format version."', 1)
    path.write_text(stale, "utf-8")
    assert schemadocs.sync(tmp_path) == [
        "schemas/rules.schema.json: #/properties/version: markdownDescription differs"]
    assert schemadocs.sync(tmp_path, write=True)
    assert schemadocs.sync(tmp_path) == []
    written = path.read_text("utf-8")
    assert json.loads(written)["properties"]["version"][schemadocs.MD].startswith(
        "The format version.\n\n")
    # Only that one line changed: the hand layout of the rest of the file is kept.
    changed = [a for a, b in zip(stale.splitlines(), written.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and '"markdownDescription"' in changed[0]


def test_a_missing_hover_is_inserted_beside_the_description(tmp_path: Path) -> None:
    text = ('{"properties": {\n  "a": {"description": "An a.", "examples": [1]},\n'
            '  "b": {\n    "description": "A b.",\n    "examples": ["x"]\n  }\n}}\n')
    fixed, drift = schemadocs.sync_text(text, load_schema("event"))
    assert drift == ["#/properties/a", "#/properties/b"]
    assert json.loads(fixed)["properties"]["a"][schemadocs.MD] == \
        "An a.\n\nExample:\n\n```yaml\na: 1\n```"
    assert '\n    "markdownDescription": "A b.' in fixed  # on its own line, as its neighbours


@pytest.mark.parametrize("field", sorted(load_schema("event")["properties"]))
def test_rule_event_fields_show_the_datadog_fields_description_and_values(field: str) -> None:
    event_field = load_schema("event")["properties"][field]
    hover = load_schema("rules")["$defs"]["event"]["properties"][field][schemadocs.MD]
    assert schemadocs.plain_to_markdown(event_field["description"]) in hover
    for value in event_field.get("enum", []):
        assert f"`{value}`" in hover
    if "maxLength" in event_field:
        assert f"at most {event_field['maxLength']} characters" in hover


def test_markdown_escapes_outside_code_spans_only() -> None:
    assert schemadocs.plain_to_markdown("Bearer <token>, '_' or `a_<b>`") == \
        "Bearer \\<token>, '\\_' or `a_<b>`"


def test_ids_are_stable_absolute_uris() -> None:
    for name in NAMES:
        assert load_schema(name)["$id"] == f"https://emitter.dev/schemas/{name}.schema.json"


def test_catalog_names_each_schema_by_its_id() -> None:
    catalog = json.loads((ROOT / "schemas" / "catalog.json").read_text("utf-8"))
    assert catalog["$schema"] == "https://json.schemastore.org/schema-catalog.json"
    assert catalog["version"] == 1
    for entry in catalog["schemas"]:
        assert {"name", "description", "url"} <= set(entry) <= {
            "name", "description", "url", "fileMatch"}
    urls = {entry["url"] for entry in catalog["schemas"]}
    assert urls == {load_schema(name)["$id"] for name in NAMES}


def test_catalog_file_patterns_keep_rules_and_tests_apart() -> None:
    catalog = json.loads((ROOT / "schemas" / "catalog.json").read_text("utf-8"))
    by_url = {entry["url"]: entry.get("fileMatch", []) for entry in catalog["schemas"]}
    tests = by_url[load_schema("ruletest")["$id"]]
    rules = by_url[load_schema("rules")["$id"]]
    assert tests == [f"*{suffix}" for suffix in TEST_SUFFIXES]  # what `emitter test` reads
    for name in ("deploy.rules.yaml", "ci/deploy.rules.yml"):
        assert any(fnmatch.fnmatch(name, glob) for glob in rules), name
    for name in ("deploy.test.yaml", "deploy.rules.test.yaml"):
        assert not any(fnmatch.fnmatch(name, glob) for glob in rules), name
