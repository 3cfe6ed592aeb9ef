"""Template budgets (issue 9, item 4): every render and every load-time constant folding runs
under a time and size budget; over it is a typed error (BudgetExceeded) of that render. The
hostile rule files are tests/examples/invalid/budget_*.yaml; these tests hold the mechanism."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from emitter.problems import Location
from emitter.rules.budget import CEILING, DEFAULT, Budget, parse_budget, parse_size
from emitter.rules.model import ManualTrigger, Rule, Tmpl
from emitter.templates import budget
from emitter.templates.budget import BudgetExceeded
from emitter.templates.compiler import (
    CompiledRule,
    JinjaTemplate,
    compile_expression,
    compile_rule,
    compile_template,
)
from emitter.templates.render import RenderContext, RenderOutcome, render

REPO = Path(__file__).resolve().parent.parent
HERE = Location("r.yaml", 1, 1)
NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def compiled(text: str, limits: Budget = DEFAULT) -> object:
    return compile_template(Tmpl(text, HERE), limits)


def test_nested_loops_stop_at_the_deadline_with_a_typed_error() -> None:
    template = compiled(NESTED, Budget(time=0.05, size=DEFAULT.size))
    assert isinstance(template, JinjaTemplate)
    with pytest.raises(BudgetExceeded, match="time budget of 50 ms"):
        template.render({"range": range})


def test_a_loop_in_a_macro_stops_too() -> None:
    text = ("{% macro spin(n) %}{% for i in range(n) %}{{ spin(n) if false }}{% endfor %}"
            "{% endmacro %}{% for i in range(100000) %}{{ spin(100000) }}{% endfor %}")
    with pytest.raises(BudgetExceeded):
        compiled(text).render({"range": range})  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", [
    "{{ 'x' * n }}", "{{ 'x' | center(n) }}", "{{ '%*s' | format(n, 'x') }}",
    "{{ '%' ~ n ~ 's' }}", "{{ ('x' * 1000) | replace('x', 'y' * 1000) }}",
    "{{ range(1000) | join('x' * 1000) }}", "{{ 'x'.rjust(n) }}", "{{ 'x'.zfill(n) }}",
    "{{ '\t' * 1000 }}{{ ('\t' * 1000).expandtabs(1000) }}", "{{ '{:>{}}'.format('x', n) }}",
    "{{ 9 ** n }}", "{{ 'a' | indent(n) }}",
])
def test_each_amplifier_is_refused_before_it_builds(text: str) -> None:
    template = compiled(text)
    scope = {"n": 10**9, "range": range}
    if "'%' ~ n" in text:  # only builds "%1000000000s": small, allowed
        assert template.render(scope) == "%1000000000s"  # type: ignore[attr-defined]
        return
    with pytest.raises(BudgetExceeded):
        template.render(scope)  # type: ignore[attr-defined]


def test_folding_at_load_is_metered() -> None:
    # Jinja folds `'x' | center(500000000)` while compiling (it cost 12.9 s and 1.6 GB in
    # `emitter validate`): the checked filter refuses inside the fold, Jinja then leaves it
    # unfolded, and the render reports it.
    template = compiled("{{ 'x' | center(500000000) }}")
    with pytest.raises(BudgetExceeded, match="center filter"):
        template.render({})  # type: ignore[attr-defined]


def test_a_rule_may_raise_its_size_budget_within_the_ceiling() -> None:
    text = "{{ ('x' * 300000) | length }}"
    with pytest.raises(BudgetExceeded):
        compiled(text).render({})  # type: ignore[attr-defined]
    raised = Budget(time=DEFAULT.time, size=1024 * 1024)
    assert compiled(text, raised).render({}) == "300000"  # type: ignore[attr-defined]


def test_expressions_are_metered_too() -> None:
    expr = compile_expression(Tmpl("(range(100000) | join('x' * 100)) | length", HERE))
    with pytest.raises(BudgetExceeded):
        expr({"range": range})


def test_after_a_render_over_budget_the_next_render_starts_afresh() -> None:
    with pytest.raises(BudgetExceeded):
        compiled(NESTED, Budget(time=0.02, size=DEFAULT.size)).render(  # type: ignore[attr-defined]
            {"range": range})
    assert budget.current().deadline == float("inf")  # no meter left behind
    assert compiled("{{ 'a' ~ b }}").render({"b": "c"}) == "ac"  # type: ignore[attr-defined]


def test_one_threads_meter_does_not_spend_anothers() -> None:
    results: list[str] = []
    with budget.metered(Budget(time=0.0001, size=10)):
        worker = threading.Thread(
            target=lambda: results.append(compiled("{{ 'x' * 20 }}").render({})))  # type: ignore[attr-defined]
        worker.start()
        worker.join(60)
    assert results == ["x" * 20]


@pytest.mark.parametrize(("text", "size"), [
    (4096, 4096), ("64KiB", 65536), ("1MiB", 1048576), (" 10 KB ", 10000), ("7", 7)])
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_budget_values_over_the_ceiling_fall_back_with_a_problem() -> None:
    limits, problems = parse_budget({"time": "5s", "size": "8MiB"})
    assert limits == DEFAULT and [key for key, _ in problems] == ["time", "size"]
    limits, problems = parse_budget({"time": "2s", "size": "4MiB"})
    assert limits == CEILING and problems == []


def test_validate_stops_a_nested_loop_rule_as_a_subprocess() -> None:
    # The real command on the hostile example: it ends (it hung before) with exit 1, placed.
    path = REPO / "tests/examples/invalid/budget_loops.yaml"
    result = subprocess.run([sys.executable, "-m", "emitter", "validate", str(path)],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1, result.stderr
    assert "budget_loops.yaml:12:13: error: unsafe template in text: the template ran over " \
           "its time budget" in result.stdout + result.stderr


# ---- one budget per firing ------------------------------------------------------------------

NOW = datetime(2023, 11, 15, 12, 0, tzinfo=timezone.utc)


def firing_rule(tags: list[str], limits: Budget, foreach: str | None = None) -> CompiledRule:
    """A rule whose tags are the given templates (each a template of its own)."""
    event: dict[str, Any] = {"title": Tmpl("T", HERE), "text": Tmpl("X", HERE),
                             "tags": tuple(Tmpl(t, Location("r.yaml", 9, 10 + i))
                                           for i, t in enumerate(tags))}
    rule = Rule(id="r1", location=HERE, trigger=ManualTrigger(), event=event, budget=limits,
                foreach=Tmpl(foreach, HERE) if foreach else None)
    compiled, problems = compile_rule(rule)
    assert compiled is not None, problems
    return compiled


def fire(compiled: CompiledRule, **variables: Any) -> RenderOutcome:
    return render(compiled, {"range": range, **variables}, RenderContext(now=NOW))


# Builds 13 x 1,000 characters it throws away: 40% of a 1,000-character budget's total (32,000).
BUILDS = "{% for i in range(13) %}{% set y = 'x' * m %}{% endfor %}ok"
SMALL = Budget(time=CEILING.time, size=1000)


def test_what_a_firing_builds_is_counted_across_its_templates() -> None:
    assert fire(firing_rule([BUILDS, BUILDS], SMALL), m=1000).ok  # 80%: within
    outcome = fire(firing_rule([BUILDS, BUILDS, BUILDS], SMALL), m=1000)  # 120%
    assert not outcome.ok and outcome.events == ()
    assert [p.message for p in outcome.problems] == [
        "unsafe template in tags[2]: the template built more than 32000 characters in all, "
        "over its size budget"]


def _spin_seconds(n: int) -> float:
    """The fastest of three renders of one `n`-step loop, with time to spare."""
    template = compiled("{% for i in range(n) %}{% endfor %}", CEILING)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        template.render({"range": range, "n": n})  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return min(times)


def test_a_firings_templates_share_one_time_budget() -> None:
    # Each tag loops for about a tenth of the budget; ten of them are twice the budget as a
    # whole. Each alone (and the rule with one) stays well within it.
    limits = Budget(time=0.5, size=DEFAULT.size)
    n = 20_000
    while _spin_seconds(n) < limits.time / 10:
        n *= 2
    spin = "{% for i in range(n) %}{% endfor %}ok"
    assert fire(firing_rule([spin], limits), n=n).ok
    outcome = fire(firing_rule([spin] * 20, limits), n=n)
    assert not outcome.ok and outcome.events == ()
    # One problem for the firing, not one per remaining template.
    assert len(outcome.problems) == 1
    assert "ran over its time budget of 500 ms" in outcome.problems[0].message


def test_a_foreach_firing_shares_one_time_budget_too() -> None:
    limits = Budget(time=0.5, size=DEFAULT.size)
    n = 20_000
    while _spin_seconds(n) < limits.time / 10:
        n *= 2
    compiled_rule = firing_rule(["{% for i in range(n) %}{% endfor %}ok"], limits,
                                foreach="range(40)")
    outcome = fire(compiled_rule, n=n)
    assert not outcome.ok and len(outcome.events) < 40
    assert len(outcome.problems) == 1 and "time budget" in outcome.problems[0].message
