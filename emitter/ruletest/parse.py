"""Reading `*.test.yaml` files into `TestFile` records, every problem with its file:line:col."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cache
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from emitter.problems import Problem
from emitter.rules.yamlload import JsonPath, YamlDoc, load_yaml
from emitter.ruletest.model import (
    DEFAULT_HOSTNAME,
    DEFAULT_NOW,
    INPUT_KINDS,
    CommandInput,
    CommandResult,
    Expectation,
    Input,
    LinesInput,
    ParamsInput,
    ScheduleInput,
    StdinInput,
    Step,
    TestCase,
    TestFile,
    WebhookInput,
)
from emitter.schemas import load_schema
from emitter.schemaverdict import Verdict, compile_verdict, message_validator

CHECK = "ruletest"
TEST_SUFFIXES = (".test.yaml", ".test.yml")


class _Bad(Exception):
    """A value that passed the schema but cannot be used (a malformed time)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def is_test_file(path: str) -> bool:
    return path.endswith(TEST_SUFFIXES)


def parse_time(value: Any) -> float:
    """POSIX seconds from an ISO 8601 string with a timezone, or a number. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a time, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a time, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time like 2026-01-01T09:30:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no timezone; add Z (UTC) or an offset like +01:00")
    return parsed.astimezone(timezone.utc).timestamp()


@cache
def _validator() -> Validator:
    return message_validator(load_schema("ruletest"))


@cache
def _valid() -> Verdict:
    """The test-file schema's verdict from jsonschema-rs: most files are valid, and the
    jsonschema walk that words the errors is only needed for the others."""
    return compile_verdict(load_schema("ruletest"), _validator)


def _schema_problem(doc: YamlDoc, error: ValidationError) -> Problem:
    where: JsonPath = tuple(error.absolute_path)
    location = doc.location(where)
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = list(schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            key = extra[0]
            location = doc.key_location((*where, key))
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(allowed)}"
            message = f"unknown key {key!r}{hint}"
    elif error.validator == "oneOf" and where and where[-1] == "expect":
        message = "`expect` needs exactly one of `events` (with optional `exact`), " \
                  "`no_event: true` or `error`"
    elif error.validator == "required":
        message = error.message.replace("is a required property", "is required")
    place = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
    return Problem(message, location, json_path=place, check=CHECK)


def schema_problems(doc: YamlDoc) -> list[Problem]:
    if _valid()(doc.data):
        return []
    errors = sorted(_validator().iter_errors(doc.data), key=lambda e: list(map(str, e.path)))
    problems = [_schema_problem(doc, e) for e in errors]
    return sorted(problems, key=lambda p: (p.location.line, p.location.col) if p.location
                  else (0, 0))


class _Reader:
    """Builds records from schema-valid data; `doc` gives places for the rare late problem."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc

    def fail(self, where: JsonPath, message: str) -> _Bad:
        return _Bad(Problem(message, self.doc.location(where), check=CHECK))

    def time(self, value: Any, where: JsonPath) -> float:
        try:
            return parse_time(value)
        except ValueError as exc:
            raise self.fail(where, str(exc)) from None

    def input(self, data: Mapping[str, Any], where: JsonPath, kind: str) -> Input:
        value = data[kind]
        if kind == "params":
            return ParamsInput(dict(value))
        if kind == "lines":
            return LinesInput(tuple(value))
        if kind == "webhook":
            return WebhookInput(value.get("body"), dict(value.get("headers", {})),
                                dict(value.get("query", {})))
        if kind == "command_results":
            return CommandInput(tuple(CommandResult(
                int(r.get("exit_code", 0)), r.get("stdout", ""), r.get("stderr", ""),
                float(r.get("duration", 0)), bool(r.get("timed_out", False))) for r in value))
        if kind == "scheduled_times":
            return ScheduleInput(tuple(self.time(t, (*where, kind, i))
                                       for i, t in enumerate(value)))
        return StdinInput(tuple(dict(o) for o in value))

    def only_kind(self, data: Mapping[str, Any], where: JsonPath, what: str) -> str:
        kinds = [k for k in INPUT_KINDS if k in data]
        if len(kinds) == 1:
            return kinds[0]
        if not kinds:
            raise self.fail(where, f"{what} gives no input; add one of: "
                            + ", ".join(INPUT_KINDS) + (" or inputs" if what == "case" else ""))
        raise self.fail(where, f"{what} gives several inputs ({', '.join(kinds)}); give one "
                        "kind, or use `inputs:` with one kind per step")

    def steps(self, case: Mapping[str, Any], where: JsonPath, now: float) -> tuple[Step, ...]:
        if "inputs" in case:
            if any(k in case for k in INPUT_KINDS):
                raise self.fail(where, "a case gives either `inputs:` or one input kind, "
                                "not both")
            steps: list[Step] = []
            at = now
            for i, step in enumerate(case["inputs"]):
                here = (*where, "inputs", i)
                if "at" in step:
                    at = self.time(step["at"], (*here, "at"))
                kind = self.only_kind(step, here, "step")
                steps.append(Step(at, self.input(step, here, kind), self.doc.location(here)))
            return tuple(steps)
        kind = self.only_kind(case, where, "case")
        return (Step(now, self.input(case, where, kind), self.doc.location((*where, kind))),)

    def expect(self, data: Mapping[str, Any], where: JsonPath) -> Expectation:
        return Expectation(
            events=tuple(dict(e) for e in data.get("events", ())),
            exact=bool(data.get("exact", False)),
            error=data.get("error"),
            location=self.doc.location(where),
        )

    def case(self, data: Mapping[str, Any], where: JsonPath, file_now: float) -> TestCase:
        now = self.time(data["now"], (*where, "now")) if "now" in data else file_now
        until = self.time(data["until"], (*where, "until")) if "until" in data else None
        return TestCase(
            name=data["name"],
            rule_id=data["rule"],
            now=now,
            steps=self.steps(data, where, now),
            expect=self.expect(data["expect"], (*where, "expect")),
            location=self.doc.location(where),
            until=until,
        )


def _rule_files(doc: YamlDoc, problems: list[Problem]) -> tuple[str, ...]:
    base = os.path.dirname(doc.path)
    resolved: list[str] = []
    for i, name in enumerate(doc.data["rule_files"]):
        path = os.path.normpath(os.path.join(base, name))
        if not os.path.exists(path):
            problems.append(Problem(f"rule file {name!r} not found (looked for {path})",
                                    doc.location(("rule_files", i)), check=CHECK))
        resolved.append(path)
    return tuple(resolved)


def read_test_file(path: str) -> tuple[TestFile | None, list[Problem]]:
    """Load, schema-check and convert one test file; (None, problems) when it is broken."""
    doc, problems = load_yaml(path)
    if doc is None:
        return None, problems
    problems = schema_problems(doc)
    if problems:
        return None, problems
    data = doc.data
    reader = _Reader(doc)
    rule_files = _rule_files(doc, problems)
    cases: list[TestCase] = []
    try:
        file_now = reader.time(data.get("now", DEFAULT_NOW), ("now",))
    except _Bad as bad:
        problems.append(bad.problem)
        file_now = parse_time(DEFAULT_NOW)
    for i, case in enumerate(data["tests"]):
        try:
            cases.append(reader.case(case, ("tests", i), file_now))
        except _Bad as bad:
            problems.append(bad.problem)
    if problems:
        return None, problems
    return TestFile(path, rule_files, tuple(cases), data.get("hostname", DEFAULT_HOSTNAME),
                    dict(data.get("env", {}))), []


def find_test_files(paths: list[str]) -> tuple[list[str], list[str]]:
    """Test files named or found below directories (sorted), and the paths that do not exist."""
    found: list[str] = []
    missing: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(os.path.join(root, f) for f in sorted(files) if is_test_file(f))
        elif os.path.isfile(path):
            found.append(path)
        else:
            missing.append(path)
    return found, missing



def find_tests_near(rule_paths: list[str]) -> list[str]:
    """Test files that belong with these rule paths: below a directory, or beside a file."""
    dirs = [p if os.path.isdir(p) else os.path.dirname(p) or "." for p in rule_paths]
    found: list[str] = []
    for path, folder in zip(rule_paths, dirs, strict=True):
        if os.path.isdir(path):
            found.extend(find_test_files([path])[0])
        elif os.path.isdir(folder):
            found.extend(os.path.join(folder, f) for f in sorted(os.listdir(folder))
                         if is_test_file(f))
    return list(dict.fromkeys(found))


def covered_rule_ids(test_paths: list[str]) -> set[str]:
    """Ids of the rules some case in these test files names (broken files count for nothing)."""
    covered: set[str] = set()
    for path in test_paths:
        doc, _ = load_yaml(path)
        tests = doc.data.get("tests") if doc is not None and isinstance(doc.data, dict) else None
        for case in tests if isinstance(tests, list) else ():
            if isinstance(case, dict) and isinstance(case.get("rule"), str):
                covered.add(case["rule"])
    return covered
