"""Rendering one firing of a compiled rule into zero or more event dicts, ready to check.

The template context is the firing's variables plus `rule` (id, description), `now`,
`hostname` and `env` (only the environment variables the rule names in `env:`). `when`
is evaluated first; `foreach` then yields one event per item, with the item as `item`.
A template failure, a missing key in `when` or `foreach` included, is a placed Problem of
that firing in the outcome, never a raw exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2.exceptions import SecurityError, UndefinedError

from emitter.errors import InvalidError
from emitter.problems import Location, Problem, did_you_mean
from emitter.rules.model import Tmpl
from emitter.templates import budget
from emitter.templates.compiler import (
    BASE_SCOPE,
    CompiledField,
    CompiledRule,
    CompiledTemplate,
    Evaluated,
    Expression,
    JinjaTemplate,
    location_in,
)

MAX_FOREACH_ITEMS = 1000
_UNIFIED_KEYS = ("env:", "service:", "version:")  # one value each, so a rule's own tag wins
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")
_PLAIN_INT = re.compile(r"^\s*-?[0-9]+\s*$")
_QUOTED_INT = re.compile(r"""^\s*(['"])\s*-?\d+\s*\1\s*$""")


@dataclass(frozen=True)
class RenderContext:
    """What a render sees besides the firing's variables. `now` must be timezone-aware."""

    now: datetime
    hostname: str = ""
    unified_tags: tuple[str, ...] = ()  # from DD_ENV/DD_SERVICE/DD_VERSION/DD_TAGS
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderOutcome:
    events: tuple[dict[str, Any], ...] = ()
    skipped: str | None = None  # why no event was produced on purpose, e.g. "when is false"
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(p.is_error for p in self.problems)


class RenderError(InvalidError):
    """A firing could not be rendered (e.g. `foreach` over a key its data lacks); carries the
    placed problems. `render` returns them in its outcome; `render_throttle_key` raises."""


class _Failed(Exception):
    """Carries one render problem out of a nested helper."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


# ---- the context --------------------------------------------------------------------------


def _scope(compiled: CompiledRule, variables: Mapping[str, Any],
           ctx: RenderContext) -> dict[str, Any]:
    scope = dict(BASE_SCOPE)
    scope.update(variables)
    scope["rule"] = compiled.info
    scope["now"] = ctx.now
    scope["hostname"] = ctx.hostname
    names = compiled.rule.env
    scope["env"] = {n: ctx.environ[n] for n in names if n in ctx.environ} if names else {}
    return scope


# ---- turning exceptions into problems -----------------------------------------------------


def _problem_for(exc: Exception, tmpl: Tmpl, where: Location, rule_id: str,
                 scope: Mapping[str, Any], what: str) -> Problem:
    if isinstance(exc, SecurityError):
        return Problem(f"unsafe template in {what}: {exc}", where, rule_id=rule_id,
                       check="security")
    if isinstance(exc, UndefinedError):
        match = _UNDEFINED_NAME.match(str(exc))
        if match:
            name = match.group(1)
            known = [k for k in scope if k not in BASE_SCOPE]
            hint = did_you_mean(name, known)
            message = f"undefined variable {name!r} in {what}{hint}"
        else:
            message = f"undefined value in {what}: {exc}"
        return Problem(message, where, rule_id=rule_id, check="undefined")
    return Problem(f"template error in {what}: {type(exc).__name__}: {exc}", where,
                   rule_id=rule_id, check="template")


def _render_one(template: CompiledTemplate, scope: dict[str, Any], rule_id: str,
                what: str) -> str:
    try:
        return template.render(scope)
    except Exception as exc:  # noqa: BLE001 - any template failure becomes a placed problem
        raise _placed(exc, template, scope, rule_id, what) from None


def _placed(exc: Exception, template: CompiledTemplate, scope: dict[str, Any], rule_id: str,
            what: str) -> _Failed:
    line = 1
    if isinstance(template, JinjaTemplate):
        line = template.template_line(exc.__traceback__)
    elif isinstance(template, Evaluated):
        line = template.failing_line(scope)
    where = location_in(template.source, line)
    return _Failed(_problem_for(exc, template.source, where, rule_id, scope, what))


def _evaluate(expr: Expression, scope: dict[str, Any], rule_id: str, what: str) -> Any:
    try:
        value = expr(scope)
        if what == "when":
            return bool(value)  # a StrictUndefined result raises here, inside the try
        return value
    except Exception as exc:  # noqa: BLE001 - as above
        src = expr.source
        raise _Failed(_problem_for(exc, src, src.location, rule_id, scope, what)) from None


# ---- fields -------------------------------------------------------------------------------


def _date_value(text: str, tmpl: Tmpl, rule_id: str) -> int:
    stripped = text.strip()
    if _PLAIN_INT.match(stripped):
        return int(stripped)
    if _QUOTED_INT.match(stripped):
        message = (f"date_happened rendered to {stripped}, a quoted number: remove the quotes "
                   "inside the template (the API needs an integer)")
    else:
        message = f"date_happened must render to an integer (POSIX seconds), got {stripped!r}"
        if re.fullmatch(r"-?\d+\.\d*", stripped):
            message += "; drop the fraction, e.g. with `| int`"
    raise _Failed(Problem(message, tmpl.location, rule_id=rule_id,
                          json_path="$.date_happened", check="event"))


def _field(name: str, value: CompiledField, scope: dict[str, Any], rule_id: str) -> Any:
    if isinstance(value, tuple):
        return [_render_one(t, scope, rule_id, f"{name}[{i}]") for i, t in enumerate(value)]
    if isinstance(value, int):
        return value
    text = _render_one(value, scope, rule_id, name)
    if name == "date_happened":
        return _date_value(text, value.source, rule_id)
    return text


def _fast_event(compiled: CompiledRule, scope: dict[str, Any]) -> dict[str, Any]:
    """Render every field, raising at the first problem (then `_careful_event` takes over).
    Spending the firing's budget (its time or its total size) is placed here, where it
    happened: redoing the firing carefully would only blame the first template."""
    event: dict[str, Any] = {}
    template: CompiledTemplate | None = None
    what = ""
    try:
        for what, value in compiled.fields:
            if isinstance(value, tuple):
                parts = event[what] = []
                for template in value:
                    parts.append(template.render(scope))
            elif isinstance(value, int):
                event[what] = value
            elif what == "date_happened":
                template = value
                text = value.render(scope)
                if not _PLAIN_INT.match(text):
                    raise ValueError(text)
                event[what] = int(text)
            else:
                template = value
                event[what] = value.render(scope)
    except budget.BudgetExceeded as exc:
        if not budget.spent():
            raise  # one value over the size bound: the careful pass places it, and goes on
        assert template is not None
        field = what if not isinstance(event.get(what), list) else f"{what}[{len(event[what])}]"
        raise _placed(exc, template, scope, compiled.rule.id, field) from None
    return event


def _careful_event(compiled: CompiledRule, scope: dict[str, Any],
                   problems: list[Problem]) -> dict[str, Any] | None:
    """Render field by field, collecting every problem instead of stopping at the first."""
    event: dict[str, Any] = {}
    failed = False
    for name, value in compiled.fields:
        try:
            event[name] = _field(name, value, scope, compiled.rule.id)
        except _Failed as exc:
            problems.append(exc.problem)
            failed = True
            if budget.spent():
                break  # one "over its budget" per firing, not one per field
    return None if failed else event


def _add_unified_tags(event: dict[str, Any], tags: tuple[str, ...]) -> None:
    present: list[str] = event.setdefault("tags", [])
    existing = set(present)
    keys = {t.split(":", 1)[0] + ":" for t in present if t.startswith(_UNIFIED_KEYS)}
    for tag in tags:
        if tag in existing or (tag.startswith(_UNIFIED_KEYS) and
                               tag.split(":", 1)[0] + ":" in keys):
            continue
        present.append(tag)
        existing.add(tag)


def _event(compiled: CompiledRule, scope: dict[str, Any], ctx: RenderContext,
           problems: list[Problem]) -> dict[str, Any] | None:
    try:
        event: dict[str, Any] | None = _fast_event(compiled, scope)
    except _Failed as exc:
        problems.append(exc.problem)
        event = None
    except Exception:  # noqa: BLE001 - redone carefully below to place every problem
        event = _careful_event(compiled, scope, problems)
    if event is not None and ctx.unified_tags and compiled.rule.unified_tags:
        _add_unified_tags(event, ctx.unified_tags)
    return event


# ---- rendering ----------------------------------------------------------------------------


def _items(compiled: CompiledRule, scope: dict[str, Any]) -> list[Any] | None:
    expr = compiled.foreach
    if expr is None:
        return None
    value = _evaluate(expr, scope, compiled.rule.id, "foreach")
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _Failed(Problem(f"foreach must give a list, not {type(value).__name__}",
                              expr.source.location, rule_id=compiled.rule.id, check="template"))
    items: list[Any] = []
    try:
        for item in value:  # a missing key (StrictUndefined) raises here, when iterated
            if len(items) == MAX_FOREACH_ITEMS:
                raise _Failed(Problem(f"foreach gave more than {MAX_FOREACH_ITEMS} items",
                                      expr.source.location, rule_id=compiled.rule.id,
                                      check="template"))
            items.append(item)
    except _Failed:
        raise
    except Exception as exc:  # noqa: BLE001 - the firing's error, placed at `foreach`
        src = expr.source
        raise _Failed(_problem_for(exc, src, src.location, compiled.rule.id, scope,
                                   "foreach")) from None
    return items


def render(compiled: CompiledRule, variables: Mapping[str, Any],
           ctx: RenderContext) -> RenderOutcome:
    """Render one firing. Never raises for a template problem: it comes back as a Problem.

    The whole firing (`when`, `foreach`, every field of every item) runs under one meter of the
    rule's budget: each template's own meter finds it running and spends from it, so a rule
    with N templates cannot take N times its time budget. (A rule with at most one metered
    template needs no meter of its own: that template's is the firing's.)"""
    if not compiled.shared_meter:
        return _render(compiled, variables, ctx)
    meter = budget.start(compiled.rule.budget)  # not `with metered()`: 2 us a firing
    try:
        return _render(compiled, variables, ctx)
    finally:
        budget.stop(meter)


def _render(compiled: CompiledRule, variables: Mapping[str, Any],
            ctx: RenderContext) -> RenderOutcome:
    scope = _scope(compiled, variables, ctx)
    try:
        if compiled.when is not None and not _evaluate(compiled.when, scope,
                                                       compiled.rule.id, "when"):
            return RenderOutcome(skipped="when is false")
        items = _items(compiled, scope)
    except _Failed as exc:
        return RenderOutcome(problems=(exc.problem,))
    problems: list[Problem] = []
    if items is None:
        event = _event(compiled, scope, ctx, problems)
        return RenderOutcome((event,) if event is not None else (), None, tuple(problems))
    if not items:
        return RenderOutcome(skipped="foreach gave no items")
    events = []
    for item in items:
        scope["item"] = item
        event = _event(compiled, scope, ctx, problems)
        if event is not None:
            events.append(event)
        elif budget.spent():
            break  # the firing's budget is spent: the next items would only say so again
    return RenderOutcome(tuple(events), None, tuple(dict.fromkeys(problems)))


def render_throttle_key(compiled: CompiledRule, variables: Mapping[str, Any],
                        ctx: RenderContext) -> str:
    """The rule's throttle key for this firing (the rule id when it has no throttle).

    Raises RenderError (an InvalidError, with the placed problem) when the key template fails.
    """
    if compiled.throttle_key is None:
        return compiled.rule.id
    scope = _scope(compiled, variables, ctx)
    try:
        return _render_one(compiled.throttle_key, scope, compiled.rule.id, "throttle.key")
    except _Failed as exc:
        raise RenderError(exc.problem.format_text(), [exc.problem]) from None
