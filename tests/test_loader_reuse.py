"""A rule file is parsed once per content: the daemon's start (validate, then build) and a
reload reuse the records of unchanged files, and any change of the bytes is seen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


def test_the_daemon_compiles_each_rule_once(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`emitter run` checks its rules as `validate` does and runs the rules that check
    compiled: they are not compiled a second time (start-up cost, issue 13 target 7)."""
    from emitter.daemon import reload
    from emitter.templates.compiler import compile_rules as real
    from emitter.validate import pipeline

    for n in range(3):
        (tmp_path / f"r{n}.yaml").write_text(RULE.format(rid=f"r{n}", title=f"t{n}"),
                                             encoding="utf-8")
    compiled: list[str] = []

    def counting(rules, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.extend(rule.id for rule in rules)
        return real(rules, *args, **kwargs)

    for module in (pipeline, reload):  # wherever the start would call it
        monkeypatch.setattr(module, "compile_rules", counting, raising=False)
    ruleset, problems, files = reload.check_rules([str(tmp_path)], {})
    assert ruleset is not None and files == 3 and not [p for p in problems if p.is_error]
    assert sorted(ruleset.rules) == ["r0", "r1", "r2"]
    assert sorted(compiled) == ["r0", "r1", "r2"]  # once each
