"""Lint check `source-type-name`: a source_type_name missing from Datadog's list of sources
(the list is package data, emitter/data/source_type_names.json)."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources

from emitter.problems import Problem
from emitter.rules.model import Tmpl
from emitter.validate.checks.base import LintCheck, LintInput, Options, is_template


@cache
def known_source_type_names() -> frozenset[str]:
    text = (resources.files("emitter") / "data" / "source_type_names.json").read_text("utf-8")
    return frozenset(json.loads(text)["names"])


def source_type_issue(name: str) -> str | None:
    known = known_source_type_names()
    if name in known:
        return None
    close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.6)
    if name.lower() in known:
        return f"source_type_name {name!r} is not a known Datadog source; did you mean " \
               f"{name.lower()!r}?"
    hint = f"; did you mean {close[0]!r}?" if close else \
        "; Datadog will show it as a custom source"
    return f"source_type_name {name!r} is not a known Datadog source{hint}"


def check(item: LintInput, options: Options) -> list[Problem]:
    value = item.rule.event.get("source_type_name")
    if not isinstance(value, Tmpl):
        return []
    names = [value.text] if not is_template(value.text) else sorted(
        {e["source_type_name"] for e in item.examples
         if isinstance(e.get("source_type_name"), str)})
    problems = []
    for name in names:
        issue = source_type_issue(name)
        if issue is not None:
            problems.append(CHECK.problem(issue, value.location, item.rule.id,
                                          "$.source_type_name"))
    return problems


CHECK = LintCheck(
    id="source-type-name",
    description="a source_type_name that is not in Datadog's list of known sources",
    run=check,
)
