"""check-jsonschema as a second opinion: on every example rule file (rules/ and
tests/examples/), its verdict against schemas/rules.schema.json is the verdict of emitter's
schema stage. The two read YAML the same way (1.2 core schema) and apply the same schema, so
an editor or a CI job using check-jsonschema never disagrees with `emitter validate` about the
shape of a rule file. (emitter's later stages, templates and rendered events, go further than
any schema tool can; they are not compared here.)

Alias and merge-key bombs are left out of check-jsonschema's run: it has no expansion budget
and spends minutes expanding them (emitter refuses them at once, which is checked here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emitter.rules.schemacheck import check_rules_schema
from emitter.rules.yamlload import load_yaml

ROOT = Path(__file__).resolve().parent.parent
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
SCHEMA = ROOT / "schemas" / "rules.schema.json"

FILES = sorted(
    [p for p in (ROOT / "rules").glob("*.yaml") if not p.name.endswith(".test.yaml")]
    + list((ROOT / "tests" / "examples").glob("*/*.yaml")))

pytestmark = pytest.mark.skipif(not CHECK_JSONSCHEMA.exists(),
                                reason="check-jsonschema is not installed (.[test])")


def _theirs(files: list[Path]) -> dict[str, str]:
    """check-jsonschema's verdict per file: ok, fail (schema errors) or parse (not loadable)."""
    done = subprocess.run([str(CHECK_JSONSCHEMA), "--schemafile", str(SCHEMA), "-o", "json",
                           "--traceback-mode", "short", *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    verdict = {str(p): "ok" for p in files}
    for error in report.get("errors", []):
        verdict[error["filename"]] = "fail"
    for error in report.get("parse_errors", []):
        verdict[error["filename"]] = "parse"
    return verdict


def _ours(path: Path) -> str:
    doc, problems = load_yaml(str(path))
    if any("expand to more than" in p.message for p in problems):
        return "bomb"
    if doc is None or any(p.is_error for p in problems):
        return "parse"
    return "fail" if check_rules_schema(doc) else "ok"


def test_there_is_something_to_compare() -> None:
    assert len(FILES) >= 30


def test_check_jsonschema_agrees_with_emitters_schema_stage() -> None:
    ours_by_path = {path: _ours(path) for path in FILES}
    bombs = [path.name for path, ours in ours_by_path.items() if ours == "bomb"]
    assert sorted(bombs) == ["alias_bomb.yaml", "merge_bomb.yaml"]
    compared = [path for path, ours in ours_by_path.items() if ours != "bomb"]
    theirs = _theirs(compared)
    disagreements = []
    for path in compared:
        ours, other = ours_by_path[path], theirs[str(path)]
        # A file emitter refuses to load (duplicate keys, a python tag, an alias bomb, a
        # second document) must not pass the other tool either; how it fails may differ.
        same = ours == other or (ours == "parse" and other != "ok")
        if not same:
            disagreements.append(f"{path.relative_to(ROOT)}: emitter {ours}, "
                                 f"check-jsonschema {other}")
    assert disagreements == []
