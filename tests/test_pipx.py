"""`pipx install` works as a user runs it, from a checkout and from a built wheel: the
`dd-event-emitter` distribution gives the `emitter` command, which runs from pipx's own
environment (not this checkout) and validates the example rules.

pipx fetches the dependencies from the package index (and, for the checkout, the build
backend), as it does for a user; everything pipx writes stays under tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import emitter
from tests.wheel import build_wheel

REPO = Path(__file__).resolve().parent.parent
DIST = "dd-event-emitter"

pytest.importorskip("pipx", reason="pipx comes with the test extras")


def _pipx_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PIPX_")}
    return {**env, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
            "PIPX_MAN_DIR": str(tmp_path / "man")}


def _pipx(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pipx", *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=env["PIPX_HOME"])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _installed_works(env: dict[str, str], tmp_path: Path, source: str) -> None:
    listing = json.loads(_pipx(env, "list", "--json"))["venvs"]
    assert list(listing) == [DIST]
    main = listing[DIST]["metadata"]["main_package"]
    assert (main["package_or_url"], main["apps"]) == (source, ["emitter"])

    command = tmp_path / "bin" / "emitter"
    # Run from elsewhere, with pipx's environment only: the checkout is not on any path.
    shebang = command.read_text(errors="replace").splitlines()[0]
    assert shebang.startswith(f"#!{tmp_path / 'pipx' / 'venvs' / DIST}"), shebang
    version = subprocess.run([str(command), "--version"], env=env, capture_output=True,
                             text=True, timeout=60, cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"emitter {emitter.__version__}")
    valid = subprocess.run([str(command), "validate", str(REPO / "rules")], env=env,
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert valid.stdout.startswith("ok: no problems"), valid.stdout


@pytest.mark.slow
def test_pipx_installs_from_a_checkout_and_from_a_wheel(tmp_path: Path) -> None:
    env = _pipx_env(tmp_path)
    (tmp_path / "pipx").mkdir()
    python = ("--python", sys.executable)

    _pipx(env, "install", *python, str(REPO))
    _installed_works(env, tmp_path, str(REPO))
    _pipx(env, "uninstall", DIST)
    assert not (tmp_path / "bin" / "emitter").exists()

    wheel = build_wheel(tmp_path)
    _pipx(env, "install", *python, str(wheel))
    _installed_works(env, tmp_path, str(wheel))
