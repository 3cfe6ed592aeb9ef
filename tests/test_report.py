"""Problem reports: text lines and summary, JSON document, GitHub workflow commands."""

from __future__ import annotations

import json

from emitter.problems import Location, Problem, Severity
from emitter.validate.report import default_format, format_problems, summary

ERR = Problem("unknown key 'titel' in event (did you mean 'title'?)",
              Location("rules/a.yaml", 8, 7), rule_id="deploy", check="schema")
WARN = Problem("unknown source_type_name 'myapp'", Location("rules/b.yaml", 3, 20),
               severity=Severity.WARNING, rule_id="x", check="source")
EVENT = Problem("'x' * 101 is too long", None, rule_id="deploy", json_path="$.title",
                check="event")


def test_text_lines_then_one_summary() -> None:
    text = format_problems([ERR, WARN], "text", files_checked=3)
    assert text.splitlines() == [
        "rules/a.yaml:8:7: error: unknown key 'titel' in event (did you mean 'title'?) [deploy]",
        "rules/b.yaml:3:20: warning: unknown source_type_name 'myapp' [x]",
        "1 error, 1 warning in 3 files",
    ]


def test_summary_wording() -> None:
    assert summary([], 1) == "ok: no problems in 1 file"
    assert summary([ERR, ERR], 2) == "2 errors in 2 files"
    assert summary([WARN, WARN], 12) == "no errors, 2 warnings in 12 files"
    assert format_problems([], "text", files_checked=4) == "ok: no problems in 4 files"


def test_json_document() -> None:
    document = json.loads(format_problems([ERR, EVENT], "json", files_checked=1))
    assert document["summary"] == {"ok": False, "errors": 2, "warnings": 0, "files": 1,
                                   "text": "2 errors in 1 file"}
    first, second = document["problems"]
    assert first == {"path": "rules/a.yaml", "line": 8, "col": 7, "severity": "error",
                     "check": "schema", "rule_id": "deploy", "json_path": None,
                     "message": ERR.message}
    assert second["path"] is None and second["json_path"] == "$.title"
    assert json.loads(format_problems([], "json", files_checked=0))["summary"]["ok"] is True


def test_github_commands_and_escaping() -> None:
    odd = Problem("50% done\nnext line\r", Location("dir,with:odd/a.yaml", 2, 5), check="yaml")
    lines = format_problems([ERR, WARN, odd, EVENT], "github", files_checked=2).splitlines()
    assert lines[0] == (
        "::error file=rules/a.yaml,line=8,col=7,title=emitter [schema]::"
        "unknown key 'titel' in event (did you mean 'title'?) [deploy]"
    )
    assert lines[1].startswith("::warning file=rules/b.yaml,line=3,col=20,title=emitter [source]::")
    assert lines[2] == (
        "::error file=dir%2Cwith%3Aodd/a.yaml,line=2,col=5,title=emitter [yaml]::"
        "50%25 done%0Anext line%0D"
    )
    assert lines[3] == "::error title=emitter [event]::'x' * 101 is too long at $.title [deploy]"
    assert lines[4] == "3 errors, 1 warning in 2 files"


def test_default_format_follows_github_actions() -> None:
    assert default_format({"GITHUB_ACTIONS": "true"}) == "github"
    assert default_format({"GITHUB_ACTIONS": "false"}) == "text"
    assert default_format({}) == "text"
