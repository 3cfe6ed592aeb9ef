"""Environment values never appear in messages (names do): `validate` in every format,
`render`, `run` at start-up and CLI errors, as real processes; a rule file that is a dotenv
file; the lint warning for a credential a rule exposes; the redaction pass itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emitter.problems import Location, Problem
from emitter.redaction import QUOTE_MAX, Redactor, exposed_by, is_credential_name
from emitter.rules.loader import load_rules

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "abcdef0123456789abcdef0123456789"
APP_KEY = "fedcba9876543210fedcba9876543210"
REGION = "eu-west-region-7"  # not a credential, but a rule exposes it: masked too
HOOK_SECRET = "hunter2-hunter2-hunter2"

LEAKY = """version: 1
rules:
  - id: leak
    trigger: {type: manual}
    env: [DD_API_KEY, DEPLOY_REGION]
    params: {n: {type: integer, example: 1}}
    event:
      title: "deploy"
      text: "{{ n }}"
      date_happened: "{{ env.DD_API_KEY }}"
      tags: ["region:{{ env.DEPLOY_REGION * 20 }}", "k:{{ env.DD_API_KEY | upper }}"]
      aggregation_key: "{{ env.DEPLOY_REGION * 10 }}"
"""
SECRETS = (API_KEY, APP_KEY, REGION, HOOK_SECRET, API_KEY.upper())


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "EMITTER_"))}
    env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY, DEPLOY_REGION=REGION,
               ALERT_HOOK_SECRET=HOOK_SECRET, GITHUB_ACTIONS="false", **extra)
    return env


def _emitter(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emitter", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=_env())


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def leaky(tmp_path: Path) -> Path:
    path = tmp_path / "leak.yaml"
    path.write_text(LEAKY, encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_validate_masks_exposed_values_in_every_format(leaky: Path, fmt: str) -> None:
    done = _emitter("validate", "--format", fmt, str(leaky), cwd=leaky.parent)
    assert done.returncode == 1, done.stderr
    _assert_no_secret(done.stdout + done.stderr)
    assert "<redacted $DD_API_KEY>" in done.stdout  # the name says where the value came from
    assert "date_happened must render to an integer" in done.stdout
    if fmt == "json":
        json.loads(done.stdout)


def test_render_masks_exposed_values(leaky: Path) -> None:
    done = _emitter("render", str(leaky), "--rule", "leak", "--var", "n=1", cwd=leaky.parent)
    assert done.returncode == 1
    assert "date_happened" in done.stderr and "<redacted $DD_API_KEY>" in done.stderr
    _assert_no_secret(done.stdout + done.stderr)


@pytest.mark.parametrize("option", [("--var", f"n={API_KEY}"), ("--now", API_KEY)],
                         ids=["usage-error", "argparse-error"])
def test_a_cli_error_quoting_a_value_masks_it(leaky: Path, option: tuple[str, str]) -> None:
    done = _emitter("render", str(leaky), "--rule", "leak", *option, cwd=leaky.parent)
    assert done.returncode == 2, done.stderr
    assert "<redacted $DD_API_KEY>" in done.stderr
    _assert_no_secret(done.stdout + done.stderr)


def _dotenv(tmp_path: Path) -> Path:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"DD_API_KEY={API_KEY}\nDD_APP_KEY={APP_KEY}\n"
                      f"ALERT_HOOK_SECRET={HOOK_SECRET}\nDB_PASSWORD=not-in-the-environment\n"
                      f"NOTES={'x' * 300}\n", encoding="utf-8")
    link = tmp_path / "rules.yaml"
    link.symlink_to(dotenv)
    return link


def test_a_rule_file_that_is_a_dotenv_file_is_not_echoed(tmp_path: Path) -> None:
    link = _dotenv(tmp_path)
    done = _emitter("validate", str(link), cwd=tmp_path)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    _assert_no_secret(out)
    assert "not-in-the-environment" not in out  # a credential-named assignment, masked
    assert "x" * (QUOTE_MAX + 1) not in out and "cut at 200 characters" in out
    assert "rules.yaml:1:1: error:" in out


def test_run_does_not_echo_a_dotenv_rule_file_at_start(tmp_path: Path) -> None:
    link = _dotenv(tmp_path)
    done = _emitter("run", "--dry-run", "--state-dir", str(tmp_path / "state"), str(link),
                    cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "rules.yaml:1:1: error:" in done.stderr
    _assert_no_secret(done.stdout + done.stderr)
    assert "not-in-the-environment" not in done.stderr


def test_lint_warns_when_a_rule_exposes_a_credential(leaky: Path) -> None:
    done = _emitter("validate", "--format", "json", str(leaky), cwd=leaky.parent)
    found = [(p["check"], p["message"]) for p in json.loads(done.stdout)["problems"]
             if p["check"] == "credential-env"]
    assert len(found) == 1 and "DD_API_KEY looks like a credential" in found[0][1]
    assert "DEPLOY_REGION" not in found[0][1]


@pytest.mark.parametrize(("name", "credential"), [
    ("DD_API_KEY", True), ("DD_APP_KEY", True), ("GITHUB_TOKEN", True),
    ("WEBHOOK_SECRET", True), ("DB_PASSWORD", True), ("mypassword", True), ("TOKEN", True),
    ("DEPLOY_REGION", False), ("KEYBOARD", False), ("TOKENIZERS_PARALLELISM", False),
    ("HOME", False),
])
def test_credential_names(name: str, credential: bool) -> None:
    assert is_credential_name(name) is credential


def test_the_redactor_masks_every_written_form_and_cuts_long_quotes() -> None:
    value = "line one\n'quoted' secret"
    redactor = Redactor.of({"X_TOKEN": value, "HOME": "/root", "SHORT_KEY": "abc"})
    assert "X_TOKEN" in repr(redactor) and value not in repr(redactor)
    for text in (value, repr(value), json.dumps(value)):
        assert redactor.text(f"got {text} here") == "got " + (
            "<redacted $X_TOKEN>" if text == value else
            f"{text[0]}<redacted $X_TOKEN>{text[-1]}") + " here"
    assert redactor.text("in /root") == "in /root"  # only secrets
    assert redactor.text("abc") == "abc"  # too short to mask without masking words
    multi = Redactor.of({}).text("got " + repr("first line\nsecond line"))
    assert multi == "got 'first line…' (first line)"


def test_a_problem_keeps_its_place_when_redacted() -> None:
    problem = Problem(f"got {API_KEY!r}", Location("r.yaml", 3, 4), rule_id="r")
    masked = Redactor.of({"DD_API_KEY": API_KEY}).problem(problem)
    assert masked == problem._replace(message="got '<redacted $DD_API_KEY>'")


def test_exposed_names_include_webhook_secrets(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nrules:\n  - id: w\n    env: [DEPLOY_REGION]\n"
                    "    trigger: {type: webhook, path: /w, hmac_secret_env: ALERT_HOOK_SECRET}\n"
                    "    event: {title: t, text: x}\n", encoding="utf-8")
    loaded = load_rules([str(path)])
    assert exposed_by(loaded.rules) == {"DEPLOY_REGION", "ALERT_HOOK_SECRET"}
