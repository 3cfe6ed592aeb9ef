"""The trigger documentation written from the declarations: each trigger type's `type`
description in schemas/rules.schema.json and the README's trigger table.

`python -m emitter.triggers.docs` reports drift (exit 1); `--write` rewrites both places.
tests/test_trigger_decl.py fails when they drift from emitter.triggers.kinds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from emitter.triggers.registry import TRIGGER_TYPES
from emitter.triggers.spec import TriggerType

ROOT = Path(__file__).resolve().parents[2]
BEGIN = ("<!-- trigger table: generated from emitter/triggers/kinds "
         "(python -m emitter.triggers.docs --write) -->")
END = "<!-- end of trigger table -->"


def _names(decl: TriggerType) -> str:
    names = ", ".join(f"`{v.name}`" for v in decl.variables)
    if decl.extra_note and names:
        return f"{decl.extra_note}, then {names}"
    return decl.extra_note or names


def schema_description(decl: TriggerType) -> str:
    return f"{decl.fired_by} Variables for templates: {_names(decl)}."


def readme_table() -> str:
    rows = ["| type | options | variables for templates |", "|---|---|---|"]
    for decl in TRIGGER_TYPES.values():
        parts = [f"`{v.name}` ({v.description})" for v in decl.variables]
        if decl.extra_note:
            parts.insert(0, decl.extra_note)
        rows.append(f"| `{decl.name}` | {decl.options} | {', '.join(parts)} |")
    return "\n".join([BEGIN, *rows, END])


def _schema_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r'(\{"const": "' + re.escape(name) + r'"\}.*?"type": \{"description": )'
                      r'"((?:[^"\\]|\\.)*)"', re.DOTALL)


def _sync_schema(text: str) -> tuple[str, list[str]]:
    drift = []
    for decl in TRIGGER_TYPES.values():
        pattern = _schema_pattern(decl.name)
        match = pattern.search(text)
        want = schema_description(decl)
        if match is None:
            drift.append(f"schema: no `type` description for the {decl.name} trigger")
            continue
        if json.loads(f'"{match.group(2)}"') != want:
            drift.append(f"schema: the {decl.name} trigger's description differs")
            quoted = json.dumps(want, ensure_ascii=False)
            text = text[:match.start(2) - 1] + quoted + text[match.end(2) + 1:]
    return text, drift


def _sync_readme(text: str) -> tuple[str, list[str]]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return text, ["README: the generated trigger table's markers are missing"]
    current = text[start:end + len(END)]
    if current == readme_table():
        return text, []
    return text[:start] + readme_table() + text[end + len(END):], ["README: trigger table differs"]


def sync(root: Path = ROOT, *, write: bool = False) -> list[str]:
    """What differs from the declarations (rewritten when `write`)."""
    drift = []
    for path, fix in ((root / "schemas" / "rules.schema.json", _sync_schema),
                      (root / "README.md", _sync_readme)):
        text = path.read_text(encoding="utf-8")
        fixed, found = fix(text)
        drift.extend(found)
        if write and fixed != text:
            path.write_text(fixed, encoding="utf-8")
    return drift


if __name__ == "__main__":
    problems = sync(write="--write" in sys.argv[1:])
    print("\n".join(problems) or "trigger docs match the declarations")
    sys.exit(1 if problems and "--write" not in sys.argv[1:] else 0)
