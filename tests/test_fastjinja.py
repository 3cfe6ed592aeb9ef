"""The evaluated form (templates.fastjinja) against Jinja itself: random expressions built from
every construct it evaluates, rendered in templates and evaluated as `when` expressions, must
give Jinja's text, value or exception (type and message)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined, Undefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from emitter.problems import Location
from emitter.rules.model import Tmpl
from emitter.templates import fastjinja
from emitter.templates.compiler import (
    BASE_SCOPE,
    ENV,
    Evaluated,
    JinjaTemplate,
    compile_expression,
    compile_template,
    names_in,
)

HERE = Location("r.yaml", 1, 1)
SCOPE: dict[str, Any] = {
    "n": 3, "z": 0, "f": 2.5, "s": "Ab c", "e": "", "t": True, "no": None,
    "lst": [1, "x", None], "d": {"k": "v", "n": 2}, "obj": Location("p", 1, 2),
}
NAMES = [*SCOPE, "missing"]
CONSTANTS = ["'a'", '"B c"', "0", "1", "-2", "2.5", "true", "false", "none", "''"]
UNARY = ["({}) | lower", "({}) | upper", "({}) | default('dflt')", "({}) | default('x', true)",
         "({}) | length", "({}) | string", "({}) | int", "({}) | first", "({}) | trim",
         "({}) | truncate(4)", "({}) | tojson", "({}) | d", "({}) is defined",
         "({}) is none", "({}) is string", "({}) is divisibleby(2)", "not ({})", "-({})",
         "({}).k", "({})['n']", "({})[0]", "({}).real", "({}).__class__", "[{}]"]
BINARY = ["({}) == ({})", "({}) != ({})", "({}) < ({})", "({}) >= ({})", "({}) in ({})",
          "({}) not in ({})", "({}) and ({})", "({}) or ({})", "({}) ~ ({})", "({}) + ({})",
          "({}) - ({})", "({}) % ({})", "({}) / ({})", "({}) // ({})", "[{}, {}]",
          "({}, {})", "({}) | default({})", "({}) < ({}) <= 3", "({}) * ({})", "({}) ** ({})"]


def _expressions() -> st.SearchStrategy[str]:
    atoms = st.sampled_from(NAMES + CONSTANTS)
    return st.recursive(atoms, lambda inner: st.one_of(
        st.builds(lambda form, a: form.format(a), st.sampled_from(UNARY), inner),
        st.builds(lambda form, a, b: form.format(a, b), st.sampled_from(BINARY), inner, inner),
        st.builds(lambda a, b, c: f"({a}) if ({b}) else ({c})", inner, inner, inner),
    ), max_leaves=6)


def _plain(value: Any) -> Any:
    """A value that can be compared: undefined values (which raise on ==) become markers."""
    if isinstance(value, Undefined):
        return ("undefined", value._undefined_name)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_plain(v) for v in value])
    return value


def _outcome(run: Any) -> tuple[Any, ...]:
    try:
        return ("ok", _plain(run()))
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return ("raised", type(exc).__name__, str(exc))


@settings(max_examples=500, deadline=None)
@given(_expressions())
def test_templates_render_what_jinja_renders(expr: str) -> None:
    text = f"a {{{{ {expr} }}}} b\n{{{{ n }}}}-{{{{ {expr} }}}}"
    # Compiling is inside the comparison: Jinja's constant folding can raise at compile time.
    assert _outcome(lambda: compile_template(Tmpl(text, HERE)).render(
        {**BASE_SCOPE, **SCOPE})) == _outcome(lambda: ENV.from_string(text).render(SCOPE))


@settings(max_examples=500, deadline=None)
@given(_expressions())
def test_expressions_give_what_jinja_gives(expr: str) -> None:
    assert _outcome(lambda: compile_expression(Tmpl(expr, HERE))(
        {**BASE_SCOPE, **SCOPE})) == _outcome(
        lambda: ENV.compile_expression(expr, undefined_to_none=False)(**SCOPE))
    names = _outcome(lambda: sorted(names_in(compile_expression(Tmpl(expr, HERE)))))
    jinja_names = _outcome(lambda: sorted(meta.find_undeclared_variables(
        ENV.parse("{{ " + expr + " }}"))))
    if names[0] == jinja_names[0] == "ok":
        assert names == jinja_names


@pytest.mark.parametrize("form", UNARY + BINARY + ["({}) if ({}) else ({})"])
def test_every_construct_of_the_grammar_is_evaluated_not_compiled(form: str) -> None:
    """So the two tests above compare the evaluated form, not Jinja with itself."""
    expr = form.format(*(["n"] * form.count("{}")))
    assert type(compile_template(Tmpl("{{ " + expr + " }}", HERE))) is Evaluated
    assert compile_expression(Tmpl(expr, HERE)).evaluate.__module__ == "emitter.templates.fastjinja"


@pytest.mark.parametrize("text", [
    "{{ lst | map('string') | join(',') }}", "{{ range(n) | list }}",
    "{% for i in lst %}{{ i }}{% endfor %}", "{{ s if t }}", "{{ lst[1:] }}",
    "{{ d.items() }}", "{{ self }}", "{{ lst | join }}"])
def test_what_the_evaluated_form_leaves_to_jinja_still_renders(text: str) -> None:
    compiled = compile_template(Tmpl(text, HERE))
    assert type(compiled) is JinjaTemplate
    assert _outcome(lambda: compiled.render({**BASE_SCOPE, **SCOPE})) == _outcome(
        lambda: ENV.from_string(text).render(SCOPE))


def test_the_failing_expression_gives_its_line() -> None:
    compiled = compile_template(Tmpl("ok {{ n }}\n{{ s | lower }}\n\n{{ missing | upper }}", HERE))
    assert isinstance(compiled, Evaluated)
    assert compiled.failing_line({**BASE_SCOPE, **SCOPE}) == 4


@pytest.mark.parametrize("expr", ["x", "x.k", "true or x", "x and false", "[] or y",
                                  "(1, x) | first", "'a' if true else x.k",
                                  "('a').k is defined or z"])
def test_names_are_what_jinja_meta_finds_even_where_constants_fold(expr: str) -> None:
    expected = meta.find_undeclared_variables(ENV.parse("{{ " + expr + " }}"))
    assert names_in(compile_expression(Tmpl(expr, HERE))) == expected
    assert names_in(compile_template(Tmpl("{{ " + expr + " }}", HERE))) == expected


class _Counting(ImmutableSandboxedEnvironment):
    """A sandbox intercepting `+` and unary `-` too: the evaluator must route them through it."""

    intercepted_binops = frozenset({"+", "*"})
    intercepted_unops = frozenset({"-"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined)
        self.seen: list[str] = []

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.seen.append(operator)
        return super().call_binop(context, operator, left, right)

    def call_unop(self, context: Any, operator: str, arg: Any) -> Any:
        self.seen.append("unary" + operator)
        return super().call_unop(context, operator, arg)


@pytest.mark.parametrize("expr", ["n + 1", "-n", "n * 2 - 1", "n - -n + n // 2"])
def test_the_operators_the_sandbox_intercepts_come_from_the_environment(expr: str) -> None:
    env, jinja_env = _Counting(), _Counting()
    built = fastjinja.expression(jinja_env.parse("{{ " + expr + " }}").body[0].nodes[0], env)
    assert built is not None
    evaluate, _ = built
    expected = jinja_env.compile_expression(expr)(n=3)
    assert evaluate({"n": 3}) == expected
    assert env.seen == jinja_env.seen and env.seen  # the same hooks, in the same order
