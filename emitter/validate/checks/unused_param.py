"""Lint check `unused-param`: a declared param that nothing of the rule reads."""

from __future__ import annotations

from collections.abc import Iterable

from emitter.problems import Problem
from emitter.rules.model import FieldValue, Rule, Tmpl
from emitter.templates.compiler import CompiledRule, CompiledTemplate, Expression, names_in
from emitter.validate.checks.base import LintCheck, LintInput, Options, variables_of


def _field_templates(value: FieldValue) -> Iterable[Tmpl]:
    if isinstance(value, Tmpl):
        yield value
    elif isinstance(value, tuple):
        yield from value


def _compiled_parts(compiled: CompiledRule) -> Iterable[CompiledTemplate | Expression]:
    for _, value in compiled.fields:
        if isinstance(value, tuple):
            yield from value
        elif not isinstance(value, int):
            yield value
    yield from (p for p in (compiled.when, compiled.foreach, compiled.throttle_key) if p)


def used_names(rule: Rule, compiled: CompiledRule | None = None) -> frozenset[str]:
    """Every variable name any template, `when`, `foreach` or throttle key of `rule` reads,
    from the names recorded when it was compiled (`compiled`, when the rule compiled)."""
    if compiled is not None:
        return frozenset().union(*(names_in(part) for part in _compiled_parts(compiled)))
    found: list[frozenset[str] | None] = []
    for value in rule.event.values():
        found.extend(variables_of(tmpl) for tmpl in _field_templates(value))
    found.extend(variables_of(e, expression=True) for e in (rule.when, rule.foreach) if e)
    if rule.throttle is not None:
        found.append(variables_of(rule.throttle.key))
    return frozenset().union(*(names for names in found if names is not None))


def check(item: LintInput, options: Options) -> list[Problem]:
    used = used_names(item.rule, item.compiled)
    return [CHECK.problem(f"param {p.name!r} is declared but no template uses it",
                          p.location or item.rule.location, item.rule.id)
            for p in item.rule.params if p.name not in used]


CHECK = LintCheck(
    id="unused-param",
    description="a declared param that no template, `when`, `foreach` or throttle key uses",
    run=check,
)
