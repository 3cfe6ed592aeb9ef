"""What every lint check shares: the `LintCheck` declaration, the `LintInput` it reads, and
the template helpers (literal text, names read) several checks use."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError

from emitter.problems import Location, Problem, Severity
from emitter.rules.model import Rule, Tmpl
from emitter.templates.compiler import (
    ENV,
    CompiledRule,
    compile_expression,
    compile_template,
    names_in,
    split_simple,
)

_MARKERS = ("{{", "{%", "{#")
Options = Mapping[str, Any]


@dataclass(frozen=True)
class LintInput:
    """What a per-rule check sees for one rule."""

    rule: Rule
    compiled: CompiledRule | None
    examples: Sequence[Mapping[str, Any]]  # events rendered from the params' examples


RuleCheck = Callable[[LintInput, Options], list[Problem]]
RulesetCheck = Callable[[Sequence[Rule], Collection[str], Options], list[Problem]]


@dataclass(frozen=True)
class LintCheck:
    """One lint check as the registry knows it (as yamllint declares a rule: id, type, conf).

    `run` looks at one rule; `run_ruleset` at all rules together with the ids some test case
    covers (then the check only runs when `validate` is given `enabled_by`)."""

    id: str
    description: str
    severity: Severity = Severity.WARNING
    options: Options = field(default_factory=dict)
    run: RuleCheck | None = None
    run_ruleset: RulesetCheck | None = None
    enabled_by: str | None = None  # the command-line flag an opt-in check needs

    def problem(self, message: str, location: Location | None, rule_id: str,
                json_path: str | None = None) -> Problem:
        """A Problem of this check, at its declared severity."""
        return Problem(message, location, self.severity, rule_id, json_path, self.id)


def is_template(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


@lru_cache(maxsize=4096)
def _parse(text: str) -> nodes.Template | None:
    try:
        return ENV.parse(text)
    except TemplateSyntaxError:
        return None  # compile_rule reports it; lint has nothing to add


def literal_parts(text: str) -> tuple[str, ...]:
    """The literal text pieces of a template, in order (the whole text when it has no markup)."""
    if not is_template(text):
        return (text,)
    simple = split_simple(text)
    if simple is not None:  # literal text and placeholders: no parse needed
        head, pairs = simple
        return tuple(part for part in (head, *(tail for _, _, tail in pairs)) if part)
    ast = _parse(text)
    if ast is None:
        return ()
    return tuple(node.data for node in ast.find_all(nodes.TemplateData))


def variables_of(tmpl: Tmpl, *, expression: bool = False) -> frozenset[str] | None:
    """Names a template (or a bare expression such as `when:`) reads from its context; None
    when it does not compile. The compiled form comes from the compile caches, which the rule's
    own compile (when lint has no compiled rule) has usually filled."""
    try:
        return names_in(compile_expression(tmpl) if expression else compile_template(tmpl))
    except Exception:  # noqa: BLE001 - compile_rule reports why it does not compile
        return None
