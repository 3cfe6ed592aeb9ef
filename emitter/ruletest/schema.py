"""Finds the rule-test schema the way emitter.schemas finds the others (wheel, then checkout)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from emitter.errors import EmitterError

_FILENAME = "ruletest.schema.json"
_CHECKOUT = Path(__file__).resolve().parent.parent.parent / "schemas" / _FILENAME


@cache
def load_ruletest_schema() -> dict[str, Any]:
    """The parsed `ruletest.schema.json`, read once per process. Callers must not mutate it."""
    packaged = resources.files("emitter") / "_schemas" / _FILENAME
    if packaged.is_file():
        text = packaged.read_text(encoding="utf-8")
    elif _CHECKOUT.is_file():
        text = _CHECKOUT.read_text(encoding="utf-8")
    else:
        raise EmitterError(f"schema {_FILENAME} not found: the installation is incomplete")
    data: dict[str, Any] = json.loads(text)
    return data
