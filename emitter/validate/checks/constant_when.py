"""Lint check `constant-when`: a `when:` that reads no variable, so it never changes."""

from __future__ import annotations

from emitter.problems import Problem
from emitter.templates.compiler import names_in
from emitter.validate.checks.base import LintCheck, LintInput, Options, variables_of


def check(item: LintInput, options: Options) -> list[Problem]:
    when = item.rule.when
    if when is None:
        return []
    compiled = item.compiled.when if item.compiled is not None else None
    names = names_in(compiled) if compiled is not None else variables_of(when, expression=True)
    if names is None or names:  # None: a syntax error, reported by compile_rule
        return []
    return [CHECK.problem(f"when: {when.text!r} uses no variable, so it is always the same; "
                          "remove it or test a param or trigger variable", when.location,
                          item.rule.id)]


CHECK = LintCheck(
    id="constant-when",
    description="a `when:` that references no variable, so it is always true or always false",
    run=check,
)
