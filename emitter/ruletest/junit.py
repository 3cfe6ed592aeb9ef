"""JUnit XML for `emitter test`: one <testsuite> per test file, one <testcase> per case.

The layout is the common denominator CI systems read (Jenkins, GitLab, GitHub test-report
actions): <testsuites> with totals, <testsuite name tests failures errors skipped time>,
<testcase name classname file line time> holding <failure> or <error> with the diff as text.
A test file that cannot be loaded becomes a suite with one errored case, so CI shows it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from emitter.ruletest.model import CaseResult, FileResult, RunResult, Status

# XML 1.0 forbids most C0 controls even escaped; ElementTree would write them verbatim and
# produce a document no parser accepts, so they are spelled out instead.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(value: float) -> str:
    return f"{value:.6f}"


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


def _suite_element(result: FileResult) -> ET.Element:
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
        },
    )
    suite.extend(cases)
    return suite


def to_junit_xml(run: RunResult) -> str:
    """The whole run as a JUnit XML document (a str with an XML declaration)."""
    suites = [_suite_element(f) for f in run.files]
    root = ET.Element(
        "testsuites",
        {
            "name": "emitter test",
            "tests": str(sum(int(s.get("tests", "0")) for s in suites)),
            "failures": str(sum(int(s.get("failures", "0")) for s in suites)),
            "errors": str(sum(int(s.get("errors", "0")) for s in suites)),
            "time": _seconds(sum(f.duration for f in run.files)),
        },
    )
    root.extend(suites)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
