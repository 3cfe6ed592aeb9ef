"""Judging a case: the events it produced against its expectation, with a readable diff."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emitter.problems import Problem
from emitter.ruletest.model import Expectation

_ABSENT = "<absent>"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str = ""
    diff: str = ""


def _dump(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def unified_diff(expected: Any, rendered: Any) -> str:
    """Expected vs rendered as JSON (sorted keys, indented), in unified diff form."""
    lines = difflib.unified_diff(_dump(expected), _dump(rendered), "expected", "rendered",
                                 lineterm="", n=3)
    return "\n".join(lines)


def _project(event: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The rendered event reduced to the fields an expectation names (absent ones marked)."""
    return {k: event.get(k, _ABSENT) for k in keys}


def _field_mismatches(expected: Mapping[str, Any], actual: Mapping[str, Any],
                      exact: bool) -> list[str]:
    keys = sorted(set(expected) | set(actual)) if exact else sorted(expected)
    return [k for k in keys if expected.get(k, _ABSENT) != actual.get(k, _ABSENT)]


def _shown(expect: Expectation, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rendered events as the diff shows them: projected in subset mode, whole otherwise."""
    shown: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        if expect.exact or index >= len(expect.events):
            shown.append(dict(event))
        else:
            shown.append(_project(event, list(expect.events[index])))
    return shown


def _problem_lines(problems: Sequence[Problem]) -> str:
    return "; ".join(p.message + (f" at {p.json_path}" if p.json_path else "")
                     for p in problems)


def judge(expect: Expectation, events: Sequence[Mapping[str, Any]],
          problems: Sequence[Problem], quiet_reasons: Sequence[str] = ()) -> Verdict:
    """Compare one case's outcome with its expectation.

    `problems` are the render/check errors the case hit (an invalid event is never sent);
    `quiet_reasons` say why inputs produced nothing (when false, throttled, no match), used
    only to explain a failure.
    """
    errors = [p for p in problems if p.is_error]
    if expect.error is not None:
        if any(expect.error in p.message for p in errors):
            return Verdict(True)
        got = _problem_lines(errors) if errors else f"no problem ({len(events)} event(s))"
        return Verdict(False, f"expected a problem containing {expect.error!r}; got {got}")
    if errors:
        return Verdict(False, f"rendering failed: {_problem_lines(errors)}",
                       unified_diff(list(expect.events), _shown(expect, events)))
    if expect.no_event:
        if not events:
            return Verdict(True)
        return Verdict(False, f"expected no event, got {len(events)}",
                       unified_diff([], [dict(e) for e in events]))
    return _judge_events(expect, events, quiet_reasons)


def _judge_events(expect: Expectation, events: Sequence[Mapping[str, Any]],
                  quiet_reasons: Sequence[str]) -> Verdict:
    wanted = list(expect.events)
    message = ""
    if len(events) != len(wanted):
        message = f"expected {len(wanted)} event(s), got {len(events)}"
        if not events and quiet_reasons:
            message += f" ({'; '.join(dict.fromkeys(quiet_reasons))})"
    else:
        for index, (want, got) in enumerate(zip(wanted, events, strict=True), start=1):
            fields = _field_mismatches(want, got, expect.exact)
            if fields:
                message = f"event {index}: {', '.join(fields)} differ" if len(fields) > 1 \
                    else f"event {index}: {fields[0]} differs"
                break
    if not message:
        return Verdict(True)
    return Verdict(False, message, unified_diff(wanted, _shown(expect, events)))
