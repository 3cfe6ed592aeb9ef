"""A rule file is parsed once per content: the daemon's start (validate, then build) and a
reload reuse the records of unchanged files, and any change of the bytes is seen."""

from __future__ import annotations

import os
from pathlib import Path

from emitter.rules.loader import load_rules

RULE = """version: 1
rules:
  - id: {rid}
    trigger: {{type: manual}}
    event: {{title: "{title}", text: t}}
"""


def test_an_unchanged_file_gives_the_same_records(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(rid="a", title="one"), encoding="utf-8")
    first, again = load_rules([str(path)]), load_rules([str(path)])
    assert first.rules[0] is again.rules[0]  # not built twice


def test_a_change_of_the_same_size_within_the_same_instant_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(rid="a", title="one"), encoding="utf-8")
    stamp = os.stat(path)
    assert load_rules([str(path)]).rules[0].event["title"].text == "one"
    path.write_text(RULE.format(rid="b", title="two"), encoding="utf-8")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same size, same mtime
    loaded = load_rules([str(path)])
    assert [r.id for r in loaded.rules] == ["b"]
    assert loaded.rules[0].event["title"].text == "two"


def test_problems_are_reported_again_for_an_unchanged_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nrules:\n  - id: x\n    trigger: {type: nope}\n",
                    encoding="utf-8")
    first, again = load_rules([str(path)]), load_rules([str(path)])
    assert first.problems and first.problems == again.problems and not again.rules
