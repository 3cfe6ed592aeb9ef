"""Children (command triggers, `emitter exec`) get emitter's environment without its
credentials unless the rule names a variable in `env:` (issue 9 item 9). Tested with real
children printing their environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from emitter.firing import Firing
from emitter.problems import Location
from emitter.redaction import is_credential_name as looks_secret
from emitter.rules.model import CommandTrigger, Rule, WebhookTrigger
from emitter.state.store import StateStore
from emitter.triggers.childenv import child_environ, secret_names
from emitter.triggers.command import CommandRunner

PRINT_ENV = (sys.executable, "-c", "import os; print('\\n'.join(sorted(os.environ)))")
SECRETS = {
    "DD_API_KEY": "k-dd", "DD_APP_KEY": "k-app", "DATADOG_API_KEY": "k-dd2",
    "GITHUB_HOOK": "named-by-a-webhook-rule", "DEPLOY_TOKEN": "t", "AWS_SECRET": "s",
    "DB_PASSWORD_FILE_X": "p", "SIGNING_KEY": "sk",
}
PLAIN = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
         "KEYBOARD": "us", "TOKENIZER": "x"}


def rule(rule_id: str, trigger: object, env: tuple[str, ...] = ()) -> Rule:
    return Rule(id=rule_id, location=Location("r.yaml", 1, 1), trigger=trigger,  # type: ignore[arg-type]
                event={}, env=env)


def test_the_scrub() -> None:
    hooks = [rule("h", WebhookTrigger(path="/h", token_env="GITHUB_HOOK"))]
    got = child_environ({**SECRETS, **PLAIN}, keep=("DEPLOY_TOKEN",),
                        secrets=secret_names(hooks))
    assert got == {**PLAIN, "DEPLOY_TOKEN": "t"}
    assert not looks_secret("KEYBOARD") and looks_secret("dd_api_key")


def test_a_command_triggers_child_sees_no_credentials(tmp_path: Path) -> None:
    cmd = rule("c", CommandTrigger(command=PRINT_ENV), env=("AWS_SECRET",))
    fired: list[Firing] = []

    def dispatch(firings: Sequence[Firing]) -> None:
        fired.extend(firings)

    with StateStore(tmp_path / "s.db") as store:
        runner = CommandRunner([cmd], dispatch, lambda r, m: None, store,
                               environ={**SECRETS, **PLAIN}, secret_names={"GITHUB_HOOK"})
        result = runner.run_once(cmd)
    assert result is not None and result.exit_code == 0, result
    names = set(result.stdout.split())
    assert set(PLAIN) <= names and "AWS_SECRET" in names  # asked for by name
    assert not names & (set(SECRETS) - {"AWS_SECRET"}), names


def test_emitter_exec_child_sees_no_credentials(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("""version: 1
rules:
  - id: job
    trigger: {type: manual}
    env: [DEPLOY_TOKEN]
    event: {title: "job {{ exit_code }}", text: x}
  - id: hook
    trigger: {type: webhook, path: /h, hmac_secret_env: GITHUB_HOOK}
    event: {title: t, text: x}
""")
    env = {**os.environ, **SECRETS, **PLAIN, "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "emitter", "exec", str(rules), "--rule", "job",
                           "--dry-run", "-q", "--", *PRINT_ENV], capture_output=True,
                          env=env, timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr.decode()
    names = set(proc.stdout.decode().split())
    assert set(PLAIN) <= names and "DEPLOY_TOKEN" in names
    assert not names & (set(SECRETS) - {"DEPLOY_TOKEN"}), names


def test_emitter_run_command_child_sees_no_webhook_secret_of_another_rule(
        tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""version: 1
rules:
  - id: envdump
    trigger: {{type: command, command: {list(PRINT_ENV)!r}, every: 1h}}
    event: {{title: env, text: "{{{{ stdout | replace('\\\\n', ' ') }}}}"}}
  - id: hook
    trigger: {{type: webhook, path: /h, hmac_secret_env: GITHUB_HOOK}}
    event: {{title: t, text: x}}
""")
    env = {**os.environ, **SECRETS, **PLAIN, "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(rules), "--dry-run",
                           "--listen", "127.0.0.1:0", "--exit-after", "3"],
                          capture_output=True, env=env, timeout=60, cwd=str(tmp_path))
    events = [line for line in proc.stdout.decode().splitlines() if '"env"' in line]
    assert events, proc.stderr.decode()
    names = set(events[0].split('"text":', 1)[1].strip(' "}').split())
    assert "PATH" in names and "LANG" in names
    assert not names & set(SECRETS), names
