"""JUnit XML for `emitter test`: one <testsuite> per test file, one <testcase> per case.

The layout is the one pytest writes (junit_family xunit1), which CI systems read (Jenkins,
GitLab, GitHub test-report actions): <testsuites> with totals, <testsuite name tests failures
errors skipped time timestamp hostname>, <testcase classname name file line time> holding
<failure> or <error> with the diff as text. Times are seconds with 3 decimals, `timestamp` is
the suite's start as local time with its UTC offset, `hostname` is platform.node(), as pytest
writes them. A test file that cannot be loaded becomes a suite with one errored case.
"""

from __future__ import annotations

import platform
import re
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from emitter.ruletest.model import CaseResult, FileResult, RunResult, Status

# XML 1.0 forbids most C0 controls even escaped; ElementTree would write them verbatim and
# produce a document no parser accepts, so they are spelled out instead.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _timestamp(posix: float) -> str:
    # pytest: the session start as a UTC datetime, shown in the local zone with its offset.
    return datetime.fromtimestamp(posix, timezone.utc).astimezone().isoformat()


def _classname(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    for suffix in (".test.yaml", ".test.yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _case_element(case: CaseResult, path: str) -> ET.Element:
    element = ET.Element(
        "testcase",
        {
            "name": _clean(case.name),
            "classname": _clean(_classname(path)),
            "file": _clean(path),
            "line": str(case.location.line),
            "time": _seconds(case.duration),
        },
    )
    if case.status is Status.PASSED:
        return element
    tag = "failure" if case.status is Status.FAILED else "error"
    child = ET.SubElement(element, tag, {"message": _clean(case.message), "type": tag})
    body = f"{case.location}: {case.message}"
    if case.diff:
        body += "\n" + case.diff
    child.text = _clean(body)
    return element


def _load_error_element(result: FileResult) -> ET.Element:
    element = ET.Element(
        "testcase",
        {"name": "load test file", "classname": _clean(_classname(result.path)),
         "file": _clean(result.path), "time": _seconds(0.0)},
    )
    errors = [p for p in result.problems if p.is_error]
    first = errors[0] if errors else None
    child = ET.SubElement(
        element, "error", {"message": _clean(first.message if first else "cannot load"),
                           "type": "error"}
    )
    child.text = _clean("\n".join(p.format_text() for p in errors))
    return element


def _suite_element(result: FileResult, started: float, hostname: str) -> ET.Element:
    cases = [_case_element(c, result.path) for c in result.cases]
    errors = result.count(Status.ERROR)
    if result.broken:
        cases.append(_load_error_element(result))
        errors += 1
    suite = ET.Element(
        "testsuite",
        {
            "name": _clean(result.path),
            "tests": str(len(cases)),
            "failures": str(result.count(Status.FAILED)),
            "errors": str(errors),
            "skipped": "0",
            "time": _seconds(result.duration),
            "timestamp": _timestamp(started),
            "hostname": hostname,
        },
    )
    suite.extend(cases)
    return suite


def to_junit_xml(run: RunResult, started: float | None = None,
                 hostname: str | None = None) -> str:
    """The whole run as a JUnit XML document (a str with an XML declaration).

    `started` is when the run began (POSIX seconds; default: now less the run's duration);
    files run one after another, so each suite starts when the ones before it have ended.
    """
    total = sum(f.duration for f in run.files)
    start = time.time() - total if started is None else started
    host = platform.node() if hostname is None else hostname
    suites = []
    for result in run.files:
        suites.append(_suite_element(result, start, host))
        start += result.duration
    root = ET.Element(
        "testsuites",
        {
            "name": "emitter test",
            "tests": str(sum(int(s.get("tests", "0")) for s in suites)),
            "failures": str(sum(int(s.get("failures", "0")) for s in suites)),
            "errors": str(sum(int(s.get("errors", "0")) for s in suites)),
            "time": _seconds(total),
        },
    )
    root.extend(suites)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
