"""JUnit XML: parses, counts right, escapes what XML cannot hold, carries the diff, and has
the attributes pytest writes (compared with a report the installed pytest itself writes)."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

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
    assert cases[0].get("time") == "0.250"


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


# Local time with its UTC offset, as pytest writes it: 2026-01-01T01:00:00.250000+01:00
ISO_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d")
SECONDS = re.compile(r"\d+\.\d{3}")
# Beyond what pytest's root carries, ours sums the suites up (readers that look only at the
# root, and people, see the totals at once).
ROOT_TOTALS = {"tests", "failures", "errors", "time"}


def test_suites_carry_timestamp_hostname_and_time() -> None:
    started = 1767225600.25  # 2026-01-01T00:00:00.25Z
    root = ET.fromstring(to_junit_xml(_run(), started=started, hostname="ci-runner-7"))
    assert root.get("time") is not None and SECONDS.fullmatch(root.get("time") or "")
    first, second = root.findall("testsuite")
    for suite in (first, second):
        assert suite.get("hostname") == "ci-runner-7"
        assert ISO_WITH_OFFSET.fullmatch(suite.get("timestamp") or ""), suite.get("timestamp")
        assert SECONDS.fullmatch(suite.get("time") or "")
    assert first.get("time") == "1.000"
    begun = datetime.fromisoformat(first.get("timestamp") or "")
    assert begun.utcoffset() is not None
    assert begun == datetime.fromtimestamp(started, timezone.utc)
    # files run one after another: the second starts when the first (1 s) has ended
    assert datetime.fromisoformat(second.get("timestamp") or "") == datetime.fromtimestamp(
        started + 1.0, timezone.utc)
    for case in root.iter("testcase"):
        assert SECONDS.fullmatch(case.get("time") or "")


def test_hostname_defaults_to_the_machines_name_as_pytest_writes_it() -> None:
    root = ET.fromstring(to_junit_xml(_run()))
    assert {s.get("hostname") for s in root.findall("testsuite")} == {platform.node()}


def _pytest_report(tmp_path: Path) -> ET.Element:
    """A JUnit report written by the installed pytest for a tiny test file of its own."""
    (tmp_path / "pytest.ini").write_text("[pytest]\njunit_family = xunit1\n")
    (tmp_path / "test_tiny.py").write_text(
        "def test_passes():\n    assert True\n\n\ndef test_fails():\n    assert 1 == 2\n")
    target = tmp_path / "pytest.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), f"--junitxml={target}", "test_tiny.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # one test fails, on purpose
    return ET.parse(target).getroot()


def test_attribute_names_match_what_pytest_writes(tmp_path: Path) -> None:
    theirs = _pytest_report(tmp_path)
    ours = ET.fromstring(to_junit_xml(_run()))
    assert set(ours.attrib) == set(theirs.attrib) | ROOT_TOTALS
    their_suite = theirs.find("testsuite")
    assert their_suite is not None
    for suite in ours.findall("testsuite"):
        assert set(suite.attrib) == set(their_suite.attrib)
    their_cases = {frozenset(c.attrib) for c in theirs.iter("testcase")}
    assert len(their_cases) == 1
    for case in ours.iter("testcase"):
        if case.get("name") != "load test file":  # a file that cannot load has no line
            assert frozenset(case.attrib) in their_cases
    # and the formats are theirs too
    assert ISO_WITH_OFFSET.fullmatch(their_suite.get("timestamp") or "")
    assert SECONDS.fullmatch(their_suite.get("time") or "")
    assert their_suite.get("hostname") == platform.node()
