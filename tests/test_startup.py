"""Start-up stays lean: `emitter fire` on a valid manual rule imports none of the modules that
only an invalid document, another trigger type, an error message or a proxy needs (issue 2's
benchmark: benchmarks/bench_fire.py). A guard on imports, not a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.intake import INTAKE_KEY, FakeIntake
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture

REPO = Path(__file__).resolve().parent.parent
FIRE = ["fire", "rules/deploy.yaml", "--rule", "deploy-finished", "--var", "service=a",
        "--var", "version=1", "--var", "outcome=success", "--dry-run"]
# Each is imported where it is needed: jsonschema (and its referencing, attrs) for messages
# about an invalid rule file or event, croniter/zoneinfo for schedule triggers, shlex for
# command triggers, difflib for "did you mean", traceback for EMITTER_DEBUG, requests only
# behind a proxy (the Datadog sink's lean transport needs none of it).
LAZY = ("jsonschema", "referencing", "attrs", "croniter", "zoneinfo", "shlex", "difflib",
        "traceback", "requests", "importlib.resources")


def modules_after(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    probe = (
        "import json, sys\n"
        "from emitter.cli import main\n"
        "code = main(json.loads(sys.argv[1]))\n"
        "print('\\nMODULES', json.dumps(sorted(sys.modules)), code)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, **(env or {})})
    line = done.stdout.rsplit("\nMODULES ", 1)[1]
    names, code = line.rsplit(" ", 1)
    return int(code), set(json.loads(names))


def test_firing_a_valid_rule_imports_nothing_it_does_not_use() -> None:
    code, loaded = modules_after(FIRE)
    assert code == 0
    assert "jinja2" in loaded and "yaml" in loaded  # the probe does see real imports
    assert sorted(m for m in LAZY if m in loaded) == []
    assert sorted(m for m in ("http.client", "ssl") if m in loaded) == []  # no HTTP at all


def test_posting_to_the_intake_imports_no_requests(intake: FakeIntake,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    env = {"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url}
    code, loaded = modules_after([a for a in FIRE if a != "--dry-run"], env)
    assert code == 0 and len(intake.events) == 1  # it really posted
    assert "emitter.sinks.httpanswer" in loaded  # the lean transport's own answer reader
    assert "http.client" not in loaded and "email.parser" not in loaded
    assert sorted(m for m in LAZY if m in loaded) == []
    assert "encodings.idna" not in loaded  # an ASCII host needs no idna codec
    assert "emitter.state.dirs" not in loaded  # no state directory configured: sent directly
    assert not any(m.startswith(("requests", "urllib3", "certifi")) for m in loaded)


def test_an_https_session_imports_no_requests_or_certifi(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    probe = ("import json, sys\n"
             "from emitter.sinks.datadog import open_session\n"
             "session = open_session('https://api.datadoghq.com')\n"
             "print(type(session).__name__, json.dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    kind, names = done.stdout.split(" ", 1)
    loaded = set(json.loads(names))
    assert kind == "KeepAliveSession" and "ssl" in loaded
    assert not any(m.startswith(("requests", "urllib3", "certifi", "importlib.resources"))
                   for m in loaded)


def test_an_invalid_rule_file_still_gets_jsonschemas_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    trigger: {type: manual}\n"
                   "    event: {title: t, text: b, priority: urgent}\n")
    probe = [sys.executable, "-m", "emitter", "fire", str(bad), "--rule", "x", "--dry-run"]
    done = subprocess.run(probe, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "bad.yaml:5:" in done.stderr and "'urgent' is not allowed" in done.stderr


@pytest.mark.parametrize("argv", [
    FIRE,
    ["validate", "rules/"],
    ["test", "tests/ruletests/passing"],
])
def test_only_the_daemon_imports_prometheus_client_and_the_http_front(argv: list[str]) -> None:
    _, loaded = modules_after(argv)
    daemon_only = ("prometheus_client", "emitter.daemon.metrics", "emitter.daemon.listener",
                   "emitter.daemon.front", "socketserver")
    assert sorted(m for m in daemon_only if m in loaded) == []


def test_the_daemon_does_import_prometheus_client(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\nrules:\n  - id: s\n    trigger: {type: stdin}\n"
                     "    event: {title: t, text: x}\n")
    probe = ("import json, sys\n"
             "from emitter.cli import main\n"
             "code = main(json.loads(sys.argv[1]))\n"
             "print('\\nMODULES', 'prometheus_client' in sys.modules, code)\n")
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(
        ["run", str(rules), "--stdin", "--dry-run"])], cwd=REPO, capture_output=True,
        text=True, timeout=60, input="")
    assert done.stdout.rsplit("\nMODULES ", 1)[1].split() == ["True", "0"], done.stderr
