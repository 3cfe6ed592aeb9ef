"""Lint checks: each warns on what it should, at the right place, and stays quiet otherwise."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from emitter.problems import Location, Severity
from emitter.rules.loader import load_rules
from emitter.rules.model import ManualTrigger, Param, Rule, Tmpl
from emitter.rules.params import example_variable_sets
from emitter.ruletest.parse import covered_rule_ids, find_tests_near
from emitter.templates.compiler import compile_rules
from emitter.templates.render import RenderContext, render
from emitter.validate.checks import CHECKS
from emitter.validate.checks.base import literal_parts
from emitter.validate.checks.source_type_name import known_source_type_names, source_type_issue
from emitter.validate.checks.tag_format import tag_issue
from emitter.validate.checks.unused_param import used_names
from emitter.validate.lint import lint_rules

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _lint(tmp_path: Path, body: str, **kwargs: Any) -> list[Any]:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules:\n" + body, encoding="utf-8")
    loaded = load_rules([str(path)])
    assert loaded.ok, [p.format_text() for p in loaded.problems]
    compiled, problems = compile_rules(loaded.rules)
    assert not problems
    examples: dict[str, list[dict[str, Any]]] = {}
    for c in compiled:
        sets, _ = example_variable_sets(c.rule)
        examples[c.id] = [e for s in sets for e in render(c, s, RenderContext(NOW)).events]
    return lint_rules(loaded.rules, compiled, examples, **kwargs)


def _rule(event: str, params: str = "", when: str = "") -> str:
    text = "  - id: r1\n    trigger: {type: manual}\n"
    if params:
        text += "    params:\n" + params
    if when:
        text += f"    when: {when!r}\n"
    return text + "    event:\n" + event


CLEAN_PARAMS = "      service: {type: string, example: payments}\n"
CLEAN_EVENT = ('      title: "Deployed {{ service }}"\n      text: "done"\n'
               '      tags: ["service:{{ service }}", "team:platform"]\n'
               "      source_type_name: jenkins\n")


def test_a_clean_rule_gets_no_warning(tmp_path: Path) -> None:
    assert _lint(tmp_path, _rule(CLEAN_EVENT, CLEAN_PARAMS, "service != 'x'")) == []


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ("Team:platform", "capitals"),
        ("env prod", "space"),
        ("team:", "ends with ':'"),
        ("9lives", "start with a letter"),
        ("team:a#b", "'#'"),
        ("Service:{{ service }}", "literal text 'Service:'"),
        ("{{ service }}:", "ends with ':'"),
        ("_x:{{ service }}", "start with a letter"),
        ("a" * 201, "201 characters"),
    ],
)
def test_tag_format_warns_with_place(tmp_path: Path, tag: str, words: str) -> None:
    event = f'      title: "t {{{{ service }}}}"\n      text: "x"\n      tags: ["ok:1", "{tag}"]\n'
    problems = _lint(tmp_path, _rule(event, CLEAN_PARAMS))
    assert [p.check for p in problems] == ["tag-format"]
    problem = problems[0]
    assert words in problem.message
    assert problem.severity is Severity.WARNING
    assert problem.json_path == "$.tags[1]"
    assert problem.location is not None and problem.location.line == 10
    assert problem.rule_id == "r1"


def test_rendered_example_tags_are_checked_too(tmp_path: Path) -> None:
    params = "      service: {type: string, example: Payments Service}\n"
    event = ('      title: "t {{ service }}"\n      text: "x"\n'
             '      tags: ["service:{{ service }}"]\n')
    problems = _lint(tmp_path, _rule(event, params))
    assert [p.check for p in problems] == ["tag-format"]
    assert "'service:Payments Service' (rendered from the examples)" in problems[0].message


def test_host_and_device_tags_keep_their_case() -> None:
    assert tag_issue("host:Web-01") is None
    assert tag_issue("device:SDA") is None
    assert tag_issue("hostname:Web") is not None


def test_literal_parts() -> None:
    assert literal_parts("a:{{ x }}-b{% if y %}c{% endif %}") == ("a:", "-b", "c")
    assert literal_parts("plain") == ("plain",)


def test_unknown_source_type_name_suggests_the_closest(tmp_path: Path) -> None:
    event = '      title: "t"\n      text: "x"\n      source_type_name: jenkin\n'
    problems = _lint(tmp_path, _rule(event))
    assert [p.check for p in problems] == ["source-type-name"]
    assert "did you mean 'jenkins'?" in problems[0].message
    assert problems[0].location is not None and problems[0].location.line == 8


def test_source_type_names_come_from_the_reference_list() -> None:
    names = known_source_type_names()
    for known in ("my_apps", "nagios", "amazon ec2", "github", "my apps"):
        assert known in names
    assert source_type_issue("github") is None
    assert "did you mean 'github'" in (source_type_issue("GitHub") or "")
    assert "custom source" in (source_type_issue("zzzqqq") or "")


def test_templated_source_type_name_is_checked_on_examples(tmp_path: Path) -> None:
    params = "      src: {type: string, example: nagois}\n"
    event = '      title: "t"\n      text: "x"\n      source_type_name: "{{ src }}"\n'
    problems = _lint(tmp_path, _rule(event, params))
    assert [p.check for p in problems] == ["source-type-name"]
    assert "'nagios'" in problems[0].message


@pytest.mark.parametrize(("extra", "warned"), [(86, False), (89, False), (90, True),
                                               (100, True)])
def test_title_near_its_limit(tmp_path: Path, extra: int, warned: bool) -> None:
    # "{{ s }}" renders to one character; the literal fills the rest
    literal = "x" * (extra - 1)
    params = "      s: {type: string, example: a}\n"
    event = f'      title: "{literal}{{{{ s }}}}"\n      text: "x"\n'
    problems = _lint(tmp_path, _rule(event, params))
    assert [p.check for p in problems] == (["field-length"] if warned else [])
    if warned:
        assert f"renders to {extra} of at most 100" in problems[0].message


def test_a_constant_title_is_left_to_the_schema(tmp_path: Path) -> None:
    event = f'      title: "{"x" * 99}"\n      text: "x"\n'
    assert _lint(tmp_path, _rule(event)) == []


def test_constant_when(tmp_path: Path) -> None:
    event = '      title: "t {{ s }}"\n      text: "x"\n'
    params = "      s: {type: string, example: a}\n"
    problems = _lint(tmp_path, _rule(event, params, "1 + 1 == 2"))
    assert [p.check for p in problems] == ["constant-when"]
    assert _lint(tmp_path, _rule(event, params, "s == 'a'")) == []
    assert _lint(tmp_path, _rule(event, params, "now.year > 2000")) == []


def test_unused_param(tmp_path: Path) -> None:
    params = ("      s: {type: string, example: a}\n      spare: {type: string, example: b}\n"
              "      in_when: {type: integer, example: 1}\n")
    event = '      title: "t {{ s }}"\n      text: "x"\n'
    problems = _lint(tmp_path, _rule(event, params, "in_when > 0"))
    assert [(p.check, p.location.line if p.location else 0) for p in problems] == [
        ("unused-param", 7)]
    assert "'spare'" in problems[0].message


def test_untested_rule_only_when_asked(tmp_path: Path) -> None:
    body = _rule(CLEAN_EVENT, CLEAN_PARAMS, "service != 'x'")
    assert _lint(tmp_path, body) == []
    problems = _lint(tmp_path, body, tested=set())
    assert [p.check for p in problems] == ["untested-rule"]
    assert _lint(tmp_path, body, tested={"r1"}) == []


def test_disabled_checks_are_skipped(tmp_path: Path) -> None:
    event = '      title: "t"\n      text: "x"\n      source_type_name: jenkin\n'
    assert _lint(tmp_path, _rule(event), disabled={"source-type-name"}) == []


def test_hand_built_rule_record() -> None:
    here = Location("x.yaml", 3, 5)
    rule = Rule(
        id="hand",
        location=here,
        trigger=ManualTrigger(),
        event={"title": Tmpl("{{ a }} {{ b }}", here), "text": Tmpl("t", here),
               "tags": (Tmpl("Env:{{ a }}", Location("x.yaml", 9, 3)),)},
        params=(Param("a", example="x"), Param("b", example="y"), Param("c", example="z")),
    )
    assert used_names(rule) == {"a", "b"}
    problems = lint_rules([rule], [], {})
    assert sorted(p.check for p in problems) == ["tag-format", "unused-param"]
    assert all(p.check in CHECKS for p in problems)


def test_covered_rule_ids_reads_test_files_beside_rules(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("version: 1\nrules: []\n")
    (tmp_path / "r.test.yaml").write_text(
        "version: 1\nrule_files: [r.yaml]\ntests:\n  - {name: a, rule: one, params: {},"
        " expect: {no_event: true}}\n  - {name: b, rule: two, params: {},"
        " expect: {no_event: true}}\n")
    found = find_tests_near([str(tmp_path / "r.yaml")])
    assert found == [str(tmp_path / "r.test.yaml")]
    assert covered_rule_ids(found) == {"one", "two"}
    assert find_tests_near([str(tmp_path)]) == found
