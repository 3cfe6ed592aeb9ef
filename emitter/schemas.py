"""Finds and loads the JSON Schemas: package data in a wheel, `schemas/` in a checkout."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from emitter.errors import EmitterError

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:  # pragma: no cover - Python 3.10
        from importlib.abc import Traversable

SchemaName = Literal["rules", "event", "ruletest"]
_NAMES = ("rules", "event", "ruletest")
# A checkout keeps the schemas at the top of the repository, where editors point at them.
_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_DIR = _PACKAGE_DIR.parent / "schemas"


def schema_path(name: SchemaName) -> Path | Traversable:
    """Where `<name>.schema.json` lives: the wheel's `emitter/_schemas` first, then the checkout."""
    if name not in _NAMES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(_NAMES)}")
    filename = f"{name}.schema.json"
    # An installed package is a directory: its files are plain paths, found without
    # importlib.resources (a few ms at every start). A zipped one needs the resource API.
    plain = _PACKAGE_DIR / "_schemas" / filename
    if plain.is_file():
        return plain
    if not _PACKAGE_DIR.is_dir():
        from importlib import resources

        packaged = resources.files("emitter") / "_schemas" / filename
        if packaged.is_file():
            return packaged
    local = _CHECKOUT_DIR / filename
    if local.is_file():
        return local
    raise EmitterError(
        f"schema {filename} not found in the package or in {_CHECKOUT_DIR}: "
        "the installation is incomplete"
    )


@cache
def load_schema(name: SchemaName) -> dict[str, Any]:
    """The parsed schema, read once per process. Callers must not mutate it."""
    text = schema_path(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
