"""Render + check throughput of rules/deploy.yaml through emitter's real pipeline
(render() then check_event()), against rendering the same templates with a plain
jinja2.Environment in the same run (no sandbox, no checks: the floor a template tool pays).
Also shown: emitter with its constant/substitution fast forms off (every template through
the sandbox), and a naive pipeline (plain Jinja2, then a prebuilt jsonschema validator).

Template budget rows (issue 9): the same pipeline with every template compiled against Jinja's
plain immutable sandbox (no meter, no size checks, no metered loops) against emitter's metered
one, on deploy-finished and on a loop-and-filter heavy rule. Target: budget on / off >= 0.90.
"Off" also skips the meter render() starts for a whole firing (rules/budget.py: one budget per
firing). Measured on a shared 2-core machine, 12 rounds, three runs each, before and after the
cheaper hooks: deploy-finished 1.14/0.75/0.71 -> 1.08/1.00/1.07, alerts-digest
0.76/0.65/0.75 -> 0.89/0.92/0.90.

Run: .venv/bin/python benchmarks/bench_render.py [--seconds 0.3] [--rounds 7]
Target: ours / plain >= 0.8.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
from jinja2.sandbox import ImmutableSandboxedEnvironment

from emitter.events.check import check_event
from emitter.rules.loader import load_rules
from emitter.rules.model import Rule, Tmpl
from emitter.rules.params import example_variable_sets
from emitter.schemas import load_schema
from emitter.templates import fastjinja
from emitter.templates import render as render_module
from emitter.templates.compiler import (
    ENV,
    CompiledRule,
    Constant,
    Evaluated,
    Expression,
    JinjaTemplate,
    Substitution,
    compile_rule,
)
from emitter.templates.render import RenderContext, render

DEPLOY = Path(__file__).resolve().parent.parent / "rules" / "deploy.yaml"


def _load() -> tuple[Rule, dict[str, Any]]:
    loaded = load_rules([str(DEPLOY)])
    rule = loaded.rule("deploy-finished")
    assert rule is not None, loaded.problems
    sets, _ = example_variable_sets(rule)
    return rule, sets[0]  # the params' examples


def ours(rule: Rule, variables: dict[str, Any]) -> Callable[[], None]:
    compiled, problems = compile_rule(rule)
    assert compiled is not None, problems
    now = datetime.now(timezone.utc)
    ctx = RenderContext(now=now, hostname="bench")

    def once() -> None:
        outcome = render(compiled, variables, ctx)
        for event in outcome.events:
            if check_event(event, now=now, rule=rule):
                raise AssertionError("the example event should be valid")

    return once


def ours_all_jinja(rule: Rule, variables: dict[str, Any]) -> Callable[[], None]:
    """The same pipeline with the constant/substitution fast forms turned off: every template
    goes through the sandboxed Jinja2 environment (shows what those forms are worth)."""
    compiled, _ = compile_rule(rule)
    assert compiled is not None

    def jinja(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(jinja(v) for v in value)
        if isinstance(value, int):
            return value
        return JinjaTemplate(value.source, ENV.from_string(value.source.text))

    slow = replace(compiled, fields=tuple((n, jinja(v)) for n, v in compiled.fields))
    now = datetime.now(timezone.utc)
    ctx = RenderContext(now=now, hostname="bench")

    def once() -> None:
        for event in render(slow, variables, ctx).events:
            if check_event(event, now=now, rule=rule):
                raise AssertionError("the example event should be valid")

    return once


HEAVY = textwrap.dedent("""\
    version: 1
    rules:
      - id: alerts-digest
        trigger: {type: manual}
        params:
          alerts:
            type: list
            example: [{name: disk, value: 91}, {name: cpu, value: 77}, {name: mem, value: 64},
                      {name: net, value: 12}, {name: io, value: 55}, {name: swap, value: 3}]
          host: {type: string, example: Web-1}
        when: "alerts | length > 0"
        event:
          title: "{{ alerts | length }} alerts on {{ host | lower }}"
          text: >-
            {% for a in alerts %}{{ a.name | upper }} at {{ a.value ~ '%' }}
            {%- if a.value > 50 %} (high){% endif %}{{ ', ' if not loop.last }}{% endfor %}
          tags: ["host:{{ host | lower }}",
                 "worst:{{ (alerts | sort(attribute='value') | last).name }}"]
    """)


def _heavy() -> tuple[Rule, dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(HEAVY)
    loaded = load_rules([handle.name])
    Path(handle.name).unlink()
    rule = loaded.rule("alerts-digest")
    assert rule is not None, loaded.problems
    sets, _ = example_variable_sets(rule)
    return rule, sets[0]


class _Unmetered:
    """A compiled form rebuilt against Jinja's plain immutable sandbox: what rendering cost
    before template budgets (no meter started, no hooks, loops and `~` as Jinja writes them)."""

    PLAIN = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                          keep_trailing_newline=True)

    def __init__(self, form: Any) -> None:
        self.source, text, env = form.source, form.source.text, self.PLAIN
        if isinstance(form, Expression):
            built = fastjinja.expression(env.parse("{{ " + text + " }}").body[0].nodes[0], env)
            self.run = built[0] if built else env.compile_expression(text)
        elif isinstance(form, Evaluated):
            built_pieces = fastjinja.template_pieces(env.parse(text), env)
            assert built_pieces is not None
            pieces = built_pieces[0]
            self.run = lambda scope: fastjinja.render(pieces, scope)
        else:
            template = env.from_string(text)
            self.run = lambda scope: "".join(
                template.root_render_func(template.new_context(scope, shared=True)))

    def render(self, scope: dict[str, Any]) -> str:
        return str(self.run(scope))

    def __call__(self, scope: dict[str, Any]) -> Any:
        return self.run(scope)


def _off(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_off(v) for v in value)
    if isinstance(value, (int, Constant, Substitution)) or value is None:
        return value  # never metered: nothing in them can grow
    return _Unmetered(value)


def pipeline(rule: Rule, variables: dict[str, Any], budget: bool) -> Callable[[], None]:
    """render() then check_event(), with template budgets on (emitter as built) or off."""
    compiled, problems = compile_rule(rule)
    assert compiled is not None, problems
    if not budget:
        compiled = CompiledRule(compiled.rule, tuple((n, _off(v)) for n, v in compiled.fields),
                                _off(compiled.when), _off(compiled.foreach),
                                _off(compiled.throttle_key), compiled.info)
    now = datetime.now(timezone.utc)
    ctx = RenderContext(now=now, hostname="bench")
    # Off also skips the meter render() starts for the whole firing.
    render_firing = render if budget else render_module._render

    def once() -> None:
        outcome = render_firing(compiled, variables, ctx)
        assert outcome.events and not outcome.problems, outcome.problems
        for event in outcome.events:
            if check_event(event, now=now, rule=rule):
                raise AssertionError("the example event should be valid")

    return once


def _plain_templates(env: jinja2.Environment, rule: Rule) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = []
    for name, value in rule.event.items():
        if isinstance(value, Tmpl):
            fields.append((name, env.from_string(value.text)))
        elif isinstance(value, tuple):
            fields.append((name, [env.from_string(t.text) for t in value]))
    return fields


def plain(rule: Rule, variables: dict[str, Any], validate: bool = False) -> Callable[[], None]:
    """Every template precompiled once; each call renders them all the usual way."""
    env = jinja2.Environment()
    fields = _plain_templates(env, rule)
    when = env.compile_expression(rule.when.text) if rule.when else None
    validator = jsonschema.Draft202012Validator(load_schema("event"))  # built once
    context = {**variables, "rule": {"id": rule.id}, "hostname": "bench"}

    def once() -> None:
        if when is not None and not when(**context):
            return
        event = {name: [t.render(context) for t in tmpl] if isinstance(tmpl, list)
                 else tmpl.render(context) for name, tmpl in fields}
        if validate:
            validator.validate(event)

    return once


def rate(fn: Callable[[], None], seconds: float) -> float:
    """Calls per second over about `seconds` (the loop is batched to keep timing overhead low)."""
    batch, calls = 200, 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.3, help="per measurement")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; best kept")
    args = parser.parse_args()
    rule, variables = _load()
    runs = {"emitter (render + check)": ours(rule, variables),
            "emitter, every template through Jinja2": ours_all_jinja(rule, variables),
            "plain jinja2 (render only)": plain(rule, variables),
            "naive (plain jinja2 + jsonschema validator)": plain(rule, variables, validate=True)}
    best = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits all alike
        for name, fn in runs.items():
            best[name] = max(best[name], rate(fn, args.seconds))
    base = best["plain jinja2 (render only)"]
    print(f"rule deploy-finished from {DEPLOY.name}, examples {variables}")
    for name, value in best.items():
        print(f"  {name:45s} {value:10,.0f} events/s   ratio {value / base:.2f}")
    ratio = best["emitter (render + check)"] / base
    print(f"ratio emitter / plain jinja2 = {ratio:.2f} (target >= 0.80)")
    budget_rows(rule, variables, args)


def budget_rows(rule: Rule, variables: dict[str, Any], args: argparse.Namespace) -> None:
    heavy, heavy_vars = _heavy()
    cases = {"deploy-finished": (rule, variables), "alerts-digest (loops, filters)":
             (heavy, heavy_vars)}
    runs = {(case, on): pipeline(r, v, budget=on)
            for case, (r, v) in cases.items() for on in (True, False)}
    best = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):
        for key, fn in runs.items():
            best[key] = max(best[key], rate(fn, args.seconds))
    print("template budget (render + check, events/s):")
    for case in cases:
        on, off = best[(case, True)], best[(case, False)]
        print(f"  {case:32s} budget on {on:10,.0f}   off {off:10,.0f}   "
              f"on / off {on / off:.2f} (target >= 0.90)")


if __name__ == "__main__":
    main()
