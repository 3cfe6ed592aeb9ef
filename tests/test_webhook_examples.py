"""The example webhook rules' tests run on real payloads: every webhook case in rules/*.test.yaml
that names a payload file sends that file's bytes, and every payload file is used by a case."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parent.parent / "rules"
PAYLOADS = RULES / "payloads"
_NAMED = re.compile(r"#\s*payload:\s*(\S+)")


def _cases() -> list[tuple[str, str, str]]:
    """(test file, payload file named, body sent) for each case naming a payload."""
    found = []
    for path in sorted(RULES.glob("*.test.yaml")):
        text = path.read_text(encoding="utf-8")
        names = _NAMED.findall(text)
        bodies = [case["webhook"]["body"] for case in yaml.safe_load(text)["tests"]
                  if "webhook" in case and isinstance(case["webhook"].get("body"), str)]
        assert len(names) == len(bodies), path
        found += [(path.name, name, body) for name, body in zip(names, bodies)]
    return found


def test_each_case_sends_its_payload_file_verbatim() -> None:
    cases = _cases()
    assert cases
    for test_file, name, body in cases:
        assert body == (PAYLOADS / name).read_text(encoding="utf-8"), (test_file, name)


def test_every_payload_file_is_used_and_has_its_origin_noted() -> None:
    used = {name for _, name, _ in _cases()}
    readme = (PAYLOADS / "README.md").read_text(encoding="utf-8")
    for path in PAYLOADS.glob("*.json"):
        assert path.name in used, path.name
        assert f"`{path.name}`" in readme, path.name
