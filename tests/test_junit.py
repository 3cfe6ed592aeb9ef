"""JUnit XML: parses, counts right, escapes what XML cannot hold, carries the diff."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from emitter.problems import Location, Problem
from emitter.ruletest.junit import to_junit_xml
from emitter.ruletest.model import CaseResult, FileResult, RunResult, Status


def _case(name: str, status: Status, line: int, message: str = "", diff: str = "") -> CaseResult:
    return CaseResult(name, "r1", Location("rules/a.test.yaml", line, 5), status, message, diff,
                      duration=0.25)


def _run() -> RunResult:
    good = FileResult(
        "rules/a.test.yaml",
        (
            _case("passes", Status.PASSED, 4),
            _case('fails <&> "quoted"', Status.FAILED, 9, "event 1: title differs",
                  "--- expected\n+++ rendered\n-  \"title\": \"a <b>\"\n+  \"title\": \"c\""),
            _case("errors", Status.ERROR, 14, "unknown rule 'nope'"),
            _case("control \x01\x1b chars", Status.FAILED, 20, "bad \x00 byte"),
        ),
        duration=1.0,
    )
    broken = FileResult(
        "rules/b.test.yaml",
        problems=(Problem("unknown key 'tset'", Location("rules/b.test.yaml", 3, 1),
                          check="ruletest"),),
    )
    return RunResult((good, broken))


def test_parses_with_the_right_counts() -> None:
    root = ET.fromstring(to_junit_xml(_run()).encode("utf-8"))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "2")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["rules/a.test.yaml", "rules/b.test.yaml"]
    first, second = suites
    assert (first.get("tests"), first.get("failures"), first.get("errors")) == ("4", "2", "1")
    assert (second.get("tests"), second.get("failures"), second.get("errors")) == ("1", "0", "1")
    cases = first.findall("testcase")
    assert len(cases) == 4
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    assert cases[0].get("line") == "4" and cases[0].get("classname") == "a"
    assert cases[0].get("time") == "0.250000"


def test_failure_carries_message_place_and_diff_escaped() -> None:
    root = ET.fromstring(to_junit_xml(_run()))
    case = root.findall("testsuite/testcase")[1]
    assert case.get("name") == 'fails <&> "quoted"'
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "event 1: title differs"
    assert failure.text is not None
    assert failure.text.startswith("rules/a.test.yaml:9:5: event 1: title differs\n--- expected")
    assert '-  "title": "a <b>"' in failure.text


def test_error_and_broken_file() -> None:
    root = ET.fromstring(to_junit_xml(_run()))
    error = root.findall("testsuite")[0].findall("testcase")[2].find("error")
    assert error is not None and error.get("message") == "unknown rule 'nope'"
    load = root.findall("testsuite")[1].find("testcase")
    assert load is not None and load.get("name") == "load test file"
    load_error = load.find("error")
    assert load_error is not None and load_error.text is not None
    assert "rules/b.test.yaml:3:1: error: unknown key 'tset'" in load_error.text


def test_control_characters_never_break_the_document() -> None:
    text = to_junit_xml(_run())
    root = ET.fromstring(text)
    case = root.findall("testsuite/testcase")[3]
    assert case.get("name") == "control \\x01\\x1b chars"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "bad \\x00 byte"


def test_empty_run() -> None:
    root = ET.fromstring(to_junit_xml(RunResult(())))
    assert root.get("tests") == "0" and root.findall("testsuite") == []
