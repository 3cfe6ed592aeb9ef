"""Building emitter's wheel in a test: from a copy of the checkout (a test never writes into
it), with hatchling from the test extras (--no-build-isolation, so no index is needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("emitter", "schemas", "rules"):
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(wheels), str(source)],
        check=True, cwd=tmp_path, timeout=300,
    )
    (wheel,) = wheels.glob("dd_event_emitter-*.whl")
    return wheel
