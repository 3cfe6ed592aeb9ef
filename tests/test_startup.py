"""Start-up stays lean: `emitter fire` on a valid manual rule imports none of the modules that
only an invalid document, another trigger type or an error message needs (issue 2's
benchmark: benchmarks/bench_fire.py). A guard on imports, not a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRE = ["fire", "rules/deploy.yaml", "--rule", "deploy-finished", "--var", "service=a",
        "--var", "version=1", "--var", "outcome=success", "--dry-run"]
# Each is imported where it is needed: jsonschema (and its referencing, attrs) for messages
# about an invalid rule file or event, croniter/zoneinfo for schedule triggers, shlex for
# command triggers, difflib for "did you mean", traceback for EMITTER_DEBUG, requests for
# the Datadog sink (not built by --dry-run).
LAZY = ("jsonschema", "referencing", "attrs", "croniter", "zoneinfo", "shlex", "difflib",
        "traceback", "requests", "importlib.resources")


def modules_after(argv: list[str]) -> tuple[int, set[str]]:
    probe = (
        "import json, sys\n"
        "from emitter.cli import main\n"
        "code = main(json.loads(sys.argv[1]))\n"
        "print('\\nMODULES', json.dumps(sorted(sys.modules)), code)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    line = done.stdout.rsplit("\nMODULES ", 1)[1]
    names, code = line.rsplit(" ", 1)
    return int(code), set(json.loads(names))


def test_firing_a_valid_rule_imports_nothing_it_does_not_use() -> None:
    code, loaded = modules_after(FIRE)
    assert code == 0
    assert "jinja2" in loaded and "yaml" in loaded  # the probe does see real imports
    assert sorted(m for m in LAZY if m in loaded) == []


def test_an_invalid_rule_file_still_gets_jsonschemas_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    trigger: {type: manual}\n"
                   "    event: {title: t, text: b, priority: urgent}\n")
    probe = [sys.executable, "-m", "emitter", "fire", str(bad), "--rule", "x", "--dry-run"]
    done = subprocess.run(probe, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "bad.yaml:5:" in done.stderr and "'urgent' is not allowed" in done.stderr
