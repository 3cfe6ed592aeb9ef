"""The pre-commit hooks as a user runs them: a temporary git repository whose
`.pre-commit-config.yaml` points at a local clone of this repository, with rule files, a test
file and other YAML (a CI workflow, the pre-commit config itself) that the hooks must leave
alone. pre-commit installs emitter into its own environment from the clone, as it would from
a tag on the forge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit is not installed (.[test])"),
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout to clone"),
]

RULES = """\
version: 1
rules:
  - id: deployed
    trigger: {type: manual}
    params:
      service: {type: string, example: api}
    event:
      title: "Deployed {{ service }}"
      text: "done"
"""

RULE_TEST = """\
version: 1
rule_files: [deploy.yaml]
tests:
  - name: renders
    rule: deployed
    params: {service: api}
    expect:
      events:
        - {title: Deployed api}
"""

# Valid YAML that is not a rule file: the old default (every *.yaml) ran validate on these.
WORKFLOW = "name: ci\non: [push]\njobs: {}\n"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def _hook_repo(tmp_path: Path) -> tuple[Path, str]:
    clone = tmp_path / "hooks"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    # The working tree's hook definitions are what is under test, committed or not.
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", clone / ".pre-commit-hooks.yaml")
    _git(clone, "add", ".pre-commit-hooks.yaml")
    _git(clone, "commit", "--quiet", "--allow-empty", "-m", "hooks under test")
    return clone, _git(clone, "rev-parse", "HEAD")


def _user_repo(tmp_path: Path, clone: Path, rev: str, rules_text: str) -> Path:
    repo = tmp_path / "user"
    (repo / "rules").mkdir(parents=True)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / "rules" / "deploy.yaml").write_text(rules_text)
    (repo / "rules" / "deploy.test.yaml").write_text(RULE_TEST)
    (repo / ".github" / "workflows" / "ci.yaml").write_text(WORKFLOW)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {clone}\n    rev: {rev}\n    hooks:\n"
        "      - id: emitter-validate\n      - id: emitter-test\n")
    _git(repo, "init", "--quiet")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "init")
    return repo


def _run_hooks(repo: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pc-home")}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(PRE_COMMIT), "run", "--all-files", "--verbose"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=600)


def test_hooks_check_rule_files_and_leave_other_yaml_alone(tmp_path: Path) -> None:
    clone, rev = _hook_repo(tmp_path)
    repo = _user_repo(tmp_path, clone, rev, RULES)
    done = _run_hooks(repo, tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "emitter validate" in out and "Passed" in out
    # validate saw the rule file, not the workflow or the pre-commit config
    assert "ci.yaml" not in out and ".pre-commit-config.yaml" not in out

    # a broken rule file fails the hook with its place
    (repo / "rules" / "deploy.yaml").write_text(RULES.replace("title:", "titel:"))
    _git(repo, "commit", "--quiet", "-am", "break it")
    broken = _run_hooks(repo, tmp_path)
    assert broken.returncode != 0
    assert "rules/deploy.yaml:" in broken.stdout + broken.stderr
