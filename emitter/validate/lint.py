"""Running the lint checks: warnings about things that are valid but probably not meant.

Each check is a module of emitter.validate.checks with a stable id (the `check` of its
Problems), registered in its CHECKS, in the style of yamllint. `emitter validate` runs them all
through `lint_rules`; `--strict` turns their warnings into errors. Checks look at the rule as
written (literal parts of templates) and at the events rendered from the params' examples,
because a template alone rarely tells what Datadog will receive.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from emitter.problems import Problem
from emitter.rules.model import Rule
from emitter.templates.compiler import CompiledRule
from emitter.validate.checks import CHECKS
from emitter.validate.checks.base import LintInput, Options

Examples = Mapping[str, Sequence[Mapping[str, Any]]]
Overrides = Mapping[str, Options]  # check id -> option values that replace its defaults
_DEFAULTS: Overrides = MappingProxyType({})


def _options(check_id: str, overrides: Overrides) -> Options:
    return {**CHECKS[check_id].options, **overrides.get(check_id, {})}


def ruleset_problems(rules: Sequence[Rule], tested: Collection[str] | None, *,
                     disabled: Collection[str] = (),
                     overrides: Overrides = _DEFAULTS) -> list[Problem]:
    """The problems of the checks that look at all rules at once (`untested-rule`); none
    when `tested` is None (no --require-tests)."""
    if tested is None:
        return []
    problems: list[Problem] = []
    for check in CHECKS.values():
        if check.run_ruleset is not None and check.id not in disabled:
            problems.extend(check.run_ruleset(rules, tested, _options(check.id, overrides)))
    return problems


def lint_rules(
    rules: Sequence[Rule],
    compiled: Iterable[CompiledRule] | Mapping[str, CompiledRule],
    rendered_examples: Examples,
    *,
    tested: Collection[str] | None = None,
    disabled: Collection[str] = (),
    overrides: Overrides = _DEFAULTS,
) -> list[Problem]:
    """Every lint warning for `rules`, in rule order, then by check.

    `rendered_examples` maps a rule id to the events rendered from its params' examples (as
    `validate` renders them); `tested` is the set of rule ids some test case covers, or None
    to skip the `untested-rule` check; `disabled` lists check ids to skip.
    """
    by_id = dict(compiled) if isinstance(compiled, Mapping) else {c.id: c for c in compiled}
    per_rule = [(check.run, _options(check.id, overrides)) for check in CHECKS.values()
                if check.run is not None and check.id not in disabled]
    problems: list[Problem] = []
    for rule in rules:
        item = LintInput(rule, by_id.get(rule.id), rendered_examples.get(rule.id, ()))
        for run, options in per_rule:
            problems.extend(run(item, options))
    problems.extend(ruleset_problems(rules, tested, disabled=disabled, overrides=overrides))
    return problems
