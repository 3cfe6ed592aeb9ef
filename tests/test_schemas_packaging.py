"""The schemas are found from a checkout and from an installed wheel run elsewhere."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from emitter.schemas import load_schema, schema_path
from tests.wheel import build_wheel

REPO = Path(__file__).resolve().parent.parent


def test_checkout_finds_both_schemas() -> None:
    for name in ("rules", "event"):
        assert Path(str(schema_path(name))).name == f"{name}.schema.json"
        assert load_schema(name)["$schema"].endswith("2020-12/schema")
    assert load_schema("rules") is load_schema("rules")  # read once


def test_unknown_schema_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schema 'nope'"):
        schema_path("nope")  # type: ignore[arg-type]


@pytest.mark.slow
def test_installed_wheel_finds_its_schemas_from_another_directory(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # Dependencies come from the test venv through a path entry; a path entry does not run
    # that venv's .pth files, so the editable checkout stays invisible to the new venv.
    Path(target, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--target", target, str(wheel)],
        check=True,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import emitter, emitter.schemas as s; "
        "print(emitter.__file__); print(s.schema_path('rules')); "
        "print(s.load_schema('rules')['title']); print(len(s.load_schema('event')['properties']))"
    )
    result = subprocess.run(
        [str(python), "-c", probe], cwd=elsewhere, check=True, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    package_file, rules_path, title, event_fields = result.stdout.splitlines()
    assert package_file.startswith(target), "the wheel, not the checkout, must be imported"
    assert rules_path.startswith(target) and rules_path.endswith("_schemas/rules.schema.json")
    assert title == "emitter rule file (version 1)"
    assert event_fields == "9"


def test_a_zipped_package_finds_its_schemas_through_the_resource_api(tmp_path: Path) -> None:
    # Plain paths serve a package that is a directory; a zipped one must still work.
    archive = tmp_path / "emitter.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in (REPO / "emitter").rglob("*.py"):
            zipped.write(file, str(file.relative_to(REPO)))
        for name in ("rules", "event"):
            zipped.write(REPO / "schemas" / f"{name}.schema.json",
                         f"emitter/_schemas/{name}.schema.json")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import emitter.schemas as s; "
        "print(s.__file__); print(s.schema_path('event')); print(s.load_schema('rules')['title'])"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(archive)], cwd=tmp_path,
                            check=True, capture_output=True, text=True)
    module_file, event_path, title = result.stdout.splitlines()
    assert module_file.startswith(str(archive))
    assert event_path.endswith("_schemas/event.schema.json") and str(archive) in event_path
    assert title == "emitter rule file (version 1)"
