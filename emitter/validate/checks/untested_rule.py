"""Lint check `untested-rule`: a rule no *.test.yaml case covers (with --require-tests)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from emitter.problems import Problem
from emitter.rules.model import Rule
from emitter.validate.checks.base import LintCheck, Options


def check(rules: Sequence[Rule], tested: Collection[str], options: Options) -> list[Problem]:
    return [CHECK.problem(f"rule {r.id!r} has no test case in any *.test.yaml file",
                          r.location, r.id) for r in rules if r.id not in tested]


CHECK = LintCheck(
    id="untested-rule",
    description="a rule that no *.test.yaml case covers (only with --require-tests)",
    run_ruleset=check,
    enabled_by="--require-tests",
)
