"""Compiling every template of a rule when it loads, in the sandbox of templates.sandbox.

Each template string becomes one of four compiled forms, chosen by what the text needs:
`Constant` (no Jinja markup at all), `Substitution` (only literal text and `{{ name }}`
placeholders), `Evaluated` (plain expressions such as filters, comparisons and `a if b else c`,
evaluated from Jinja's parse tree by templates.fastjinja) and `JinjaTemplate` (anything else).
The first three skip Jinja's code generation; tests/test_templates.py and
tests/test_fastjinja.py prove they render exactly what Jinja renders. `when`/`foreach`
expressions take the evaluated form too when they can. A template is parsed once; the names
it reads come from that parse or from its one code generation, so lint never parses it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from types import TracebackType
from typing import Any, TypeAlias, TypeVar

import jinja2
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError, UndefinedError
from jinja2.parser import Parser

from emitter.problems import Problem
from emitter.rules.budget import DEFAULT as DEFAULT_BUDGET
from emitter.rules.budget import Budget
from emitter.rules.model import FieldValue, Rule, Tmpl
from emitter.templates import budget, codegen, fastjinja
from emitter.templates.places import location_in as location_in  # re-exported for callers
from emitter.templates.places import syntax_problem
from emitter.templates.sandbox import BASE_SCOPE as BASE_SCOPE  # re-exported for callers
from emitter.templates.sandbox import ENV as ENV

_MARKERS = ("{{", "{%", "{#")
_OUTPUT_CHUNK = 256  # pieces of output read between two size checks
# `{{ name }}` or `{{ name.attr.attr }}`: attributes go through the sandbox's getattr, as
# Jinja's generated code does.
_SIMPLE_PLACEHOLDER = re.compile(
    r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*\}\}"
)
# Names Jinja treats as literals, operators or special objects: never a plain variable.
_NOT_PLAIN_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is",
     "if", "else", "elif", "for", "endfor", "self", "loop", "caller", "varargs", "kwargs",
     "super", "recursive", "import", "from", "as", "with", "without", "context"}
)




# ---- compiled forms -----------------------------------------------------------------------


@dataclass(frozen=True)
class Constant:
    source: Tmpl
    text: str

    def render(self, scope: dict[str, Any]) -> str:
        return self.text


@dataclass(frozen=True)
class Substitution:
    """Literal text with `{{ name }}` / `{{ name.attr }}` placeholders: `head`, then for each
    placeholder (name, attributes, literal text after it)."""

    source: Tmpl
    head: str
    pairs: tuple[tuple[str, tuple[str, ...], str], ...]

    def render(self, scope: dict[str, Any]) -> str:
        parts = [self.head]
        for name, attrs, tail in self.pairs:
            try:
                value = scope[name]
            except KeyError:
                raise UndefinedError(f"{name!r} is undefined") from None
            for attr in attrs:
                value = ENV.getattr(value, attr)
            parts.append(value if type(value) is str else str(value))
            parts.append(tail)
        return "".join(parts)


@dataclass(frozen=True)
class Evaluated:
    """Plain expressions between literal text, rendered from the parse tree (fastjinja)."""

    source: Tmpl
    pieces: tuple[fastjinja.Piece, ...]
    names: frozenset[str] = frozenset()  # context names it reads (see names_in)

    budget: Budget = DEFAULT_BUDGET
    metered: bool = True  # False when nothing in it can grow (codegen.can_grow)

    def render(self, scope: dict[str, Any]) -> str:
        if not self.metered:
            return fastjinja.render(self.pieces, scope)
        meter = budget.start(self.budget)
        try:
            text = fastjinja.render(self.pieces, scope)
            if len(text) > self.budget.size:
                budget.allow_text(len(text), "the rendered text")
            return text
        finally:
            if meter is not None:  # None: inside a firing's meter, which goes on
                budget.stop(meter)

    def failing_line(self, scope: dict[str, Any]) -> int:
        """The template line whose expression fails with `scope` (after render raised)."""
        return fastjinja.failing_line(self.pieces, scope)


@dataclass(frozen=True)
class JinjaTemplate:
    source: Tmpl
    template: jinja2.Template
    names: frozenset[str] = frozenset()  # context names it reads (see names_in)

    budget: Budget = DEFAULT_BUDGET

    def render(self, scope: dict[str, Any]) -> str:
        meter = budget.start(self.budget)
        try:
            # A shared context reads `scope` directly instead of copying it for every template.
            context = self.template.new_context(scope, shared=True)
            output = self.template.root_render_func(context)
            parts = list(islice(output, _OUTPUT_CHUNK))
            while len(parts) % _OUTPUT_CHUNK == 0 and parts:  # a loop writing output:
                budget.allow_text(sum(map(len, parts)), "the rendered text")  # stop early
                more = list(islice(output, _OUTPUT_CHUNK))
                if not more:
                    break
                parts += more
            text = "".join(parts)
            if len(text) > self.budget.size:
                budget.allow_text(len(text), "the rendered text")
            return text
        finally:
            if meter is not None:  # None: inside a firing's meter, which goes on
                budget.stop(meter)

    def template_line(self, tb: TracebackType | None) -> int:
        """The template's own line number of the innermost template frame in `tb` (1-based)."""
        line = 1
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<template>":
                line = self.template.get_corresponding_lineno(tb.tb_lineno)
            tb = tb.tb_next
        return line


@dataclass(frozen=True)
class Expression:
    """A Jinja expression (`when`, `foreach`) evaluated to a Python value."""

    source: Tmpl
    evaluate: fastjinja.Evaluator
    names: frozenset[str] = frozenset()  # context names it reads (see names_in)

    budget: Budget = DEFAULT_BUDGET
    metered: bool = True  # False when nothing in it can grow (codegen.can_grow)

    def __call__(self, scope: dict[str, Any]) -> Any:
        if not self.metered:
            return self.evaluate(scope)
        meter = budget.start(self.budget)
        try:
            return self.evaluate(scope)
        finally:
            if meter is not None:  # None: inside a firing's meter, which goes on
                budget.stop(meter)


CompiledTemplate: TypeAlias = Constant | Substitution | Evaluated | JinjaTemplate
_TEMPLATE_FORMS = (Constant, Substitution, Evaluated, JinjaTemplate)
CompiledField: TypeAlias = CompiledTemplate | tuple[CompiledTemplate, ...] | int
_Form = TypeVar("_Form", CompiledTemplate, "Expression")


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    fields: tuple[tuple[str, CompiledField], ...]  # event field name -> compiled value, in order
    when: Expression | None = None
    foreach: Expression | None = None
    throttle_key: CompiledTemplate | None = None
    info: Mapping[str, str] | None = None  # `rule` in the template context: id, description
    # Whether a firing renders two or more metered forms (then render() runs them all under
    # one meter of the rule's budget; with one, that form's own meter is the firing's).
    shared_meter: bool = True

    @property
    def id(self) -> str:
        return self.rule.id


# ---- compiling ----------------------------------------------------------------------------


def split_simple(text: str) -> tuple[str, tuple[tuple[str, tuple[str, ...], str], ...]] | None:
    """Split literal-and-placeholder text, or None when only Jinja can render it faithfully."""
    if "\r" in text:  # Jinja normalises newlines in literal text
        return None
    pieces = _SIMPLE_PLACEHOLDER.split(text)
    literals, paths = pieces[0::2], [p.split(".") for p in pieces[1::2]]
    if any(path[0] in _NOT_PLAIN_NAMES for path in paths):
        return None
    for i, literal in enumerate(literals):
        if any(marker in literal for marker in _MARKERS):
            return None
        # "{" right before a placeholder would make Jinja see "{{{" and lex it differently.
        if i < len(paths) and literal.endswith("{"):
            return None
    pairs = tuple((path[0], tuple(path[1:]), tail)
                  for path, tail in zip(paths, literals[1:], strict=True))
    return literals[0], pairs


# The body, the names it reads, and whether anything in it can grow (else it runs unmetered).
_Compiled = tuple[tuple[fastjinja.Piece, ...] | jinja2.Template, frozenset[str], bool]
_CompiledExpression = tuple[fastjinja.Evaluator, frozenset[str], bool]


@lru_cache(maxsize=4096)
def _compile_text(text: str, limits: Budget) -> _Compiled:
    # Rules often repeat one template ("service:{{ service }}"); compiled forms are
    # immutable, so one compile serves every rule that uses the text. Jinja folds constants
    # while compiling (`{{ 'x' | center(9) }}` runs the filter): that is metered like a render.
    with budget.metered(limits):
        ast = codegen.metered(ENV.parse(text))
        fast = fastjinja.template_pieces(ast, ENV)
        if fast is not None:
            return (*fast, codegen.can_grow(ast))
        return (*codegen.build(ast), True)


@lru_cache(maxsize=4096)
def _compile_expression_text(text: str, limits: Budget) -> _CompiledExpression:
    with budget.metered(limits):
        # Parsed as Environment.compile_expression parses it; Jinja builds `result = <expr>`.
        parser = Parser(ENV, text, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
        expr = codegen.metered(expr)
        fast = fastjinja.expression(expr, ENV)
        if fast is not None:
            return (*fast, codegen.can_grow(expr))
        assign = nodes.Assign(nodes.Name("result", "store", lineno=1), expr, lineno=1)
        template, names = codegen.build(nodes.Template([assign], lineno=1))

    def evaluate(scope: dict[str, Any]) -> Any:
        context = template.new_context(scope, shared=True)  # `result` lands in its vars
        for _ in template.root_render_func(context):
            pass
        return context.vars["result"]

    return evaluate, names, True


def names_in(compiled: CompiledTemplate | Expression) -> frozenset[str]:
    """Every name a compiled template or expression reads from its context (the sandbox's
    globals such as `range` included: a param of that name would hide them). Free for
    every form: no form is parsed again."""
    if isinstance(compiled, Constant):
        return frozenset()
    if isinstance(compiled, Substitution):
        return frozenset(name for name, _, _ in compiled.pairs)
    return compiled.names


def compile_template(tmpl: Tmpl, limits: Budget = DEFAULT_BUDGET) -> CompiledTemplate:
    """Compile one template; raises jinja2's TemplateSyntaxError on bad syntax, BudgetExceeded
    when folding its constants runs over `limits`."""
    text = tmpl.text
    if not any(marker in text for marker in _MARKERS) and "\r" not in text:
        return Constant(tmpl, text)
    simple = split_simple(text)
    if simple is not None:
        return Substitution(tmpl, simple[0], simple[1])
    body, names, grows = _compile_text(text, limits)
    if isinstance(body, tuple):
        return Evaluated(tmpl, body, names, limits, grows)
    return JinjaTemplate(tmpl, body, names, limits)


def compile_expression(tmpl: Tmpl, limits: Budget = DEFAULT_BUDGET) -> Expression:
    """Compile a `when`/`foreach` expression (no `{{ }}` around it)."""
    evaluate, names, grows = _compile_expression_text(tmpl.text, limits)
    return Expression(tmpl, evaluate, names, limits, grows)


def _attempt(compile_one: Callable[[Tmpl, Budget], _Form], tmpl: Tmpl, what: str,
             rule: Rule, problems: list[Problem]) -> _Form | None:
    """`compile_one(tmpl)`, or None with the problem recorded: a syntax error, or what Jinja's
    constant folding raises while compiling (`{{ ('a').x ~ 'b' }}` is undefined at once,
    `{{ 'x' | center(10**9) }}` is over the rule's budget)."""
    try:
        return compile_one(tmpl, rule.budget)
    except TemplateSyntaxError as exc:
        problems.append(syntax_problem(tmpl, exc, rule.id, what))
    except budget.BudgetExceeded as exc:
        problems.append(Problem(f"unsafe template in {what}: {exc}", tmpl.location,
                                rule_id=rule.id, check="security"))
    except Exception as exc:  # noqa: BLE001 - a user's template must not end in a traceback
        problems.append(Problem(f"template error in {what}: {type(exc).__name__}: {exc}",
                                tmpl.location, rule_id=rule.id, check="template"))
    return None


def _compile_field(name: str, value: FieldValue, rule: Rule,
                   problems: list[Problem]) -> CompiledField | None:
    if isinstance(value, Tmpl):
        return _attempt(compile_template, value, name, rule, problems)
    if isinstance(value, tuple):
        items: list[CompiledTemplate] = []
        for index, item in enumerate(value):
            compiled = _compile_field(f"{name}[{index}]", item, rule, problems)
            if isinstance(compiled, _TEMPLATE_FORMS):
                items.append(compiled)
        return tuple(items)
    return value


def _compile_expr(tmpl: Tmpl | None, what: str, rule: Rule,
                  problems: list[Problem]) -> Expression | None:
    if tmpl is None:
        return None
    return _attempt(compile_expression, tmpl, what, rule, problems)


def compile_rule(rule: Rule) -> tuple[CompiledRule | None, list[Problem]]:
    """Compile every template of `rule` under its budget; (None, problems) when any does not
    compile."""
    problems: list[Problem] = []
    fields: list[tuple[str, CompiledField]] = []
    for name, value in rule.event.items():
        compiled = _compile_field(name, value, rule, problems)
        if compiled is not None:
            fields.append((name, compiled))
    when = _compile_expr(rule.when, "when", rule, problems)
    foreach = _compile_expr(rule.foreach, "foreach", rule, problems)
    key: CompiledTemplate | None = None
    if rule.throttle is not None:
        compiled_key = _compile_field("throttle.key", rule.throttle.key, rule, problems)
        if isinstance(compiled_key, _TEMPLATE_FORMS):
            key = compiled_key
    if problems:
        return None, problems
    info = {"id": rule.id, "description": rule.description}
    shared = _shared_meter(fields, when, foreach)
    return CompiledRule(rule, tuple(fields), when, foreach, key, info, shared), problems


def _shared_meter(fields: list[tuple[str, CompiledField]], when: Expression | None,
                  foreach: Expression | None) -> bool:
    def metered(form: object) -> bool:
        return isinstance(form, JinjaTemplate) or bool(getattr(form, "metered", False))

    per_item = sum(metered(f) for _, value in fields
                   for f in (value if isinstance(value, tuple) else (value,)))
    once = metered(when) + metered(foreach)
    return per_item + once >= 2 or (foreach is not None and per_item >= 1)


def compile_rules(rules: Sequence[Rule]) -> tuple[tuple[CompiledRule, ...], list[Problem]]:
    """Compile every rule; rules with template syntax errors are left out, their problems kept."""
    compiled: list[CompiledRule] = []
    problems: list[Problem] = []
    for rule in rules:
        result, found = compile_rule(rule)
        problems.extend(found)
        if result is not None:
            compiled.append(result)
    return tuple(compiled), problems
