"""Each trigger type is one declaration (emitter.triggers.kinds): the schema's descriptions
and the README table are written from it, validate's samples come from it, and `emitter test`
and replay feed triggers through it rather than through trigger internals."""

from __future__ import annotations

import ast
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from emitter.problems import Location
from emitter.rules.model import (
    CommandTrigger,
    FileTrigger,
    ManualTrigger,
    Rule,
    ScheduleTrigger,
    StdinTrigger,
    Trigger,
    WebhookTrigger,
)
from emitter.triggers import docs
from emitter.triggers.registry import TRIGGER_TYPES, sample_variables, variable_names

ROOT = Path(__file__).resolve().parents[1]


def rule(trigger: Trigger) -> Rule:
    return Rule(id="r", location=Location("r.yaml", 1, 1), trigger=trigger, event={})


def test_every_trigger_type_of_the_schema_is_declared() -> None:
    import json

    schema = json.loads((ROOT / "schemas" / "rules.schema.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["trigger"]["properties"]["type"]["enum"] == list(TRIGGER_TYPES)


def test_schema_and_readme_match_the_declarations() -> None:
    assert docs.sync(ROOT) == [], "run: python -m emitter.triggers.docs --write"


def test_the_drift_check_notices_a_changed_description(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    schema = (ROOT / "schemas" / "rules.schema.json").read_text(encoding="utf-8")
    (tmp_path / "schemas" / "rules.schema.json").write_text(
        schema.replace("Variables for templates: `payload`, `headers`",
                       "Variables for templates: `body`, `headers`"), encoding="utf-8")
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text(encoding="utf-8")
                                        .replace("`method` (", "`verb` ("), encoding="utf-8")
    assert docs.sync(tmp_path) == ["schema: the webhook trigger's description differs",
                                   "README: trigger table differs"]
    docs.sync(tmp_path, write=True)
    assert docs.sync(tmp_path) == []


@pytest.mark.parametrize(
    ("trigger", "names"),
    [
        (ManualTrigger(), set()),
        (FileTrigger(path="/var/log/x", match=re.compile(r"(?P<level>\w+): (?P<msg>.*)")),
         {"line", "path", "line_number", "level", "msg"}),
        (WebhookTrigger(path="/hook"), {"payload", "headers", "query", "path", "method"}),
        (ScheduleTrigger(every=60, timezone="Europe/Paris"),
         {"scheduled_time", "scheduled_timestamp", "timezone"}),
        (CommandTrigger(command=("true",)), {"exit_code", "stdout", "stderr", "duration",
                                             "timed_out", "command", "state", "previous_state"}),
        (StdinTrigger(), {"payload"}),
    ],
)
def test_samples_cover_every_name(trigger: Trigger, names: set[str]) -> None:
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    got = sample_variables(rule(trigger), now)
    assert set(got) == names == variable_names(rule(trigger))
    if "scheduled_time" in got:
        assert got["scheduled_time"] == "2025-01-01T01:00:00+01:00"
        assert got["timezone"] == "Europe/Paris"


def test_nothing_documents_variables_the_triggers_do_not_give() -> None:
    schema = (ROOT / "schemas" / "rules.schema.json").read_text(encoding="utf-8")
    assert "variable `body`" not in schema and "variable `output`" not in schema
    assert "when the output differs" not in schema


@pytest.mark.parametrize("module", ["emitter/ruletest/inputs.py", "emitter/ruletest/replay.py",
                                    "emitter/validate/pipeline.py", "emitter/rules/params.py"])
def test_no_private_trigger_internals_imported(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    private = [f"{node.module}.{alias.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                   "emitter.triggers") for alias in node.names if alias.name.startswith("_")]
    assert private == []
