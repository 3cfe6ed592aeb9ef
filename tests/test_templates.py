"""The sandboxed environment, the three compiled forms, and compile-time problems."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from emitter.problems import Location
from emitter.rules.model import ManualTrigger, Rule, Throttle, Tmpl
from emitter.templates.compiler import (
    BASE_SCOPE,
    ENV,
    Constant,
    Evaluated,
    JinjaTemplate,
    Substitution,
    compile_rule,
    compile_rules,
    compile_template,
)


def tmpl(text: str, line: int = 1, col: int = 1, path: str = "r.yaml") -> Tmpl:
    return Tmpl(text, Location(path, line, col))


def rule(rule_id: str = "r", **event: object) -> Rule:
    fields = {"title": tmpl("t"), "text": tmpl("x")}
    fields.update(event)  # type: ignore[arg-type]
    return Rule(id=rule_id, location=Location("r.yaml", 1, 3), trigger=ManualTrigger(),
                event=fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("plain text", Constant),
        ("a } b { c", Constant),
        ("Deployed {{ service }} {{version}}", Substitution),
        ("{{ true }}", Evaluated),
        ("{{ loop }}", JinjaTemplate),
        ("{{ a.b }} and {{ item.labels.name }}", Substitution),
        ("{{ a.0 }}", Evaluated),
        ("{{ a['b'] }}", Evaluated),
        ("{{ a | upper }}", Evaluated),
        ("{{ a | truncate(5) }}", Evaluated),  # takes the environment: still evaluated
        ("{{- a }}", Evaluated),
        ("a\r\nb", Evaluated),
        ("{# note #}x", Evaluated),
        ("{{ 'ok' if a == 1 and not b else 'no' }}", Evaluated),
        ("{% if a %}x{% endif %}", JinjaTemplate),
        ("{{ a | map('upper') | list }}", JinjaTemplate),  # map takes the context
        ("{{ a * 2 }}", Evaluated),  # through the sandbox's call_binop, as Jinja's code does
        ("{{ range(3) }}", JinjaTemplate),
        ("{{ a if b }}", JinjaTemplate),
        ("{{ a[1:] }}", JinjaTemplate),
        ("{{ a | no_such_filter if b else c }}", JinjaTemplate),
    ],
)
def test_the_cheapest_faithful_form_is_chosen(text: str, kind: type) -> None:
    assert type(compile_template(tmpl(text))) is kind


def _jinja(text: str, scope: dict[str, object]) -> tuple[str, str]:
    try:
        return "ok", ENV.from_string(text).render(scope)
    except TemplateSyntaxError:
        return "syntax", ""
    except UndefinedError as exc:
        return "undefined", str(exc)
    except SecurityError as exc:
        return "security", str(exc)


def _ours(text: str, scope: dict[str, object]) -> tuple[str, str]:
    try:
        compiled = compile_template(tmpl(text))
    except TemplateSyntaxError:
        return "syntax", ""
    try:
        return "ok", compiled.render({**BASE_SCOPE, **scope})
    except UndefinedError as exc:
        return "undefined", str(exc)
    except SecurityError as exc:
        return "security", str(exc)


PIECES = ["{{ x }}", "{{x}}", "{{ y }}", "{{ missing }}", "{{ true }}", "{{ none }}",
          "{{ loop }}", "{{ range }}", "{", "}", "{{", "}}", "{%", "%}", "#", "{#", "-",
          "text", " ", "\n", "\r\n", "\r", "é", "\t", "{{\tx\t}}", "{{ x}}",
          "{{ d.k }}", "{{ d.missing }}", "{{ d.k.upper }}", "{{ d.items }}", "{{ x.real }}",
          "{{ d.__class__ }}", "{{ y.__len__ }}", "{{ missing.k }}", "{{ d.true }}", "."]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=8))
def test_fast_forms_render_exactly_what_jinja_renders(pieces: list[str]) -> None:
    text = "".join(pieces)
    scope = {"x": 12, "y": "s\n", "true": "shadow", "loop": "L", "d": {"k": "v", "true": 1}}
    assert _ours(text, scope) == _jinja(text, scope)


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ 'x' * 100000000 }}",
        "{{ 9 ** 9999999 }}",
        "{{ [1] * 2000000 }}",
    ],
)
def test_escapes_and_memory_bombs_raise_security_errors(text: str) -> None:
    compiled = compile_template(tmpl(text))
    with pytest.raises(SecurityError):
        compiled.render(dict(BASE_SCOPE))


def test_small_products_still_work() -> None:
    compiled = compile_template(tmpl("{{ '-' * 3 }}{{ 2 ** 10 }}{{ 3 * 4 }}"))
    assert compiled.render(dict(BASE_SCOPE)) == "---102412"


def test_the_environment_is_sandboxed_strict_and_unescaped() -> None:
    assert isinstance(ENV, jinja2.sandbox.ImmutableSandboxedEnvironment)
    assert ENV.undefined is jinja2.StrictUndefined
    assert compile_template(tmpl("{{ a }}<&>")).render({"a": "<b>"}) == "<b><&>"
    assert "lipsum" not in BASE_SCOPE
    with pytest.raises(SecurityError):  # the immutable sandbox: no list.append
        compile_template(tmpl("{{ l.append(1) }}")).render({**BASE_SCOPE, "l": []})


def test_custom_filters() -> None:
    out = compile_template(tmpl("{{ d | tojson }} {{ 1700000000.9 | timestamp }}"))
    assert out.render({**BASE_SCOPE, "d": {"b": "<é>", "a": 1}}) == (
        '{"a": 1, "b": "<é>"} 1700000000'
    )
    iso = compile_template(tmpl("{{ '2024-01-01T00:00:00Z' | timestamp }}"))
    assert iso.render(dict(BASE_SCOPE)) == "1704067200"


def test_compile_rule_keeps_the_rule_and_every_field() -> None:
    r = rule(tags=(tmpl("a:{{ b }}"), tmpl("c")), date_happened=1700000000)
    compiled, problems = compile_rule(r)
    assert problems == [] and compiled is not None
    assert compiled.rule is r
    fields = dict(compiled.fields)
    assert fields["date_happened"] == 1700000000
    assert [type(t) for t in fields["tags"]] == [Substitution, Constant]  # type: ignore[union-attr]
    assert compiled.info == {"id": "r", "description": ""}


def test_syntax_errors_in_every_kind_of_template_are_placed() -> None:
    r = Rule(
        id="bad", location=Location("r.yaml", 1, 3), trigger=ManualTrigger(),
        event={"title": tmpl("{{ x ", 4, 12), "text": tmpl("ok"),
               "tags": (tmpl("fine"), tmpl("{% if %}", 7, 9))},
        when=tmpl("x ==", 9, 11), foreach=tmpl("[1,", 10, 14),
        throttle=Throttle(key=tmpl("{{ }}", 12, 10), window=60.0),
    )
    compiled, problems = compile_rule(r)
    assert compiled is None
    places = [(p.location.line, p.location.col, p.check, p.rule_id) for p in problems
              if p.location]
    assert places == [(4, 12, "template", "bad"), (7, 9, "template", "bad"),
                      (9, 11, "template", "bad"), (10, 14, "template", "bad"),
                      (12, 10, "template", "bad")]
    assert "tags[1]" in problems[1].message and "when" in problems[2].message


def test_a_syntax_error_in_a_block_scalar_points_at_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - text: |\n      line one\n      {{ oops }\n", encoding="utf-8")
    r = rule(text=Tmpl("line one\n{{ oops }\n", Location(str(path), 2, 11)))
    _, problems = compile_rule(r)
    assert [(p.location.line, p.location.col) for p in problems if p.location] == [(4, 7)]


def test_compile_rules_keeps_the_good_and_reports_the_bad() -> None:
    good, bad = rule("good"), rule("bad", title=tmpl("{{"))
    compiled, problems = compile_rules([good, bad])
    assert [c.id for c in compiled] == ["good"]
    assert [p.rule_id for p in problems] == ["bad"]


def test_an_error_in_a_one_line_quoted_template_stays_on_that_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text('rules:\n  - text: "a\\n{{ x }\\" q"\n  - text: \'it\'\'s\n    {{ y }\'\n',
                    encoding="utf-8")
    one_line = rule(text=Tmpl('a\n{{ x }" q', Location(str(path), 2, 11)))
    _, problems = compile_rule(one_line)
    assert [(p.location.line, p.location.col) for p in problems if p.location] == [(2, 11)]
    folded = rule(text=Tmpl("it's\n{{ y }", Location(str(path), 3, 11)))
    _, problems = compile_rule(folded)
    assert [(p.location.line, p.location.col) for p in problems if p.location] == [(4, 5)]


def test_names_in_every_form() -> None:
    from emitter.templates.compiler import compile_expression, names_in

    assert names_in(compile_template(tmpl("plain"))) == frozenset()
    assert names_in(compile_template(tmpl("{{ a }}-{{ b.c }}"))) == {"a", "b"}
    assert names_in(compile_template(tmpl("{% for i in xs %}{{ i }}{{ y }}{% endfor %}"))) == {
        "xs", "y"}
    assert names_in(compile_expression(tmpl("n > limit and ok"))) == {"n", "limit", "ok"}


@pytest.mark.parametrize(
    ("text", "globals_read"),
    [
        ("{{ a | upper }}-{{ b.c }}", set()),
        ("{% for i in xs %}{{ i }}{{ y }}{{ loop.index }}{% endfor %}", set()),
        ("{% set z = a %}{{ z }}{{ w }}", set()),
        ("{% if p %}{{ q }}{% else %}{{ r | default(s) }}{% endif %}", set()),
        ("{% macro m(v) %}{{ v }}{{ outer }}{% endmacro %}{{ m(arg) }}", set()),
        ("{% with t = u %}{{ t }}{{ v }}{% endwith %}", set()),
        ("{{ 'x' if c else d }}{# {{ not_a_name }} #}", set()),
        ("{{ a.b | default(c, true) }} {{ d is defined }} {{ [e, f] ~ g[h] }}", set()),
        ("{% set ns = namespace(n=0) %}{% for k in ks %}{% set ns.n = ns.n + k %}{% endfor %}"
         "{{ ns.n }}", {"namespace"}),
        ("{% for i in range(n) %}{{ i }}{{ dict(a=1) }}{% endfor %}", {"range", "dict"}),
    ],
)
def test_recorded_names_are_what_jinja_meta_finds(text: str, globals_read: set[str]) -> None:
    from jinja2 import meta

    from emitter.templates.compiler import names_in

    compiled = compile_template(tmpl(text))
    assert isinstance(compiled, (Evaluated, JinjaTemplate))
    # meta leaves out the sandbox's globals; names_in keeps them (a param may hide them).
    assert names_in(compiled) == meta.find_undeclared_variables(ENV.parse(text)) | globals_read


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("n > limit and ok", {"n": 3, "limit": 2, "ok": True}),
        ("items | map(attribute='k') | list", {"items": [{"k": 1}, {"k": 2}]}),
        ("[1, 2][i:]", {"i": 1}),
        ("missing is defined", {}),
    ],
)
def test_expressions_evaluate_as_jinjas_compile_expression(text: str,
                                                           scope: dict[str, object]) -> None:
    from emitter.templates.compiler import compile_expression

    ours = compile_expression(tmpl(text))({**BASE_SCOPE, **scope})
    assert ours == ENV.compile_expression(text, undefined_to_none=False)(**scope)


def test_an_expression_does_not_write_into_the_scope() -> None:
    from emitter.templates.compiler import compile_expression

    scope = {**BASE_SCOPE, "a": 1}
    assert compile_expression(tmpl("a + 1"))(scope) == 2
    assert "result" not in scope


@pytest.mark.parametrize(
    ("text", "expression"),
    [("{{ x | no_such_filter }}", False), ("{{ x is no_such_test }}", False),
     ("x | no_such_filter", True), ("a b", True), ("a) or (b", True)],
)
def test_what_only_code_generation_sees_is_still_an_error_at_compile(text: str,
                                                                     expression: bool) -> None:
    """Unknown filters and tests are found while generating code, not while parsing."""
    from emitter.templates.compiler import compile_expression

    with pytest.raises(TemplateSyntaxError):
        compile_expression(tmpl(text)) if expression else compile_template(tmpl(text))


def test_what_jinja_raises_while_folding_constants_is_a_problem_not_a_crash() -> None:
    # (`~` joins through the size-checked concat filter, which Jinja does not fold when it
    # raises: `('a').k ~ 'x'` now fails at render, as a render problem.)
    r = replace(rule(title=tmpl("{{ 'x' if ('a').k else 'y' }}", 3, 12)),
                when=tmpl("('a').k and 1", 5, 11))
    compiled, problems = compile_rule(r)
    assert compiled is None
    assert [(p.location.line, p.check) for p in problems if p.location] == [
        (3, "template"), (5, "template")]
    assert "UndefinedError" in problems[0].message and "title" in problems[0].message
