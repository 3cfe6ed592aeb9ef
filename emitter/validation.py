"""The `validate` pipeline: load every file, compile every template, render every rule with
its example variable sets, check every event, lint. All problems of all files in one run.

What validate assumes when it renders (so a rule can be checked without its trigger firing):
- params take their `example`, then every combination of `enum` values (at most 64 sets per
  rule); a param with neither example, default nor enum makes the rule unrenderable
  (a warning, the rule's templates are still compiled);
- variables a trigger provides get sample values (emitter.params.trigger_variables: a file
  line is "example", a webhook payload is {}, a command exited 0 with empty output...);
  a param's example with the same name overrides the sample;
- `now` is the time of the run, `hostname` is "validate.example" and `env` holds the
  variables the rule names, from the environment validate runs in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emitter.eventcheck import check_event
from emitter.lint import lint_rules
from emitter.loader import load_rules
from emitter.params import example_variable_sets, trigger_variables
from emitter.problems import Problem, Severity
from emitter.render import RenderContext, render
from emitter.settings import unified_tags
from emitter.templates import CompiledRule, compile_rules

EXAMPLE_SETS_PER_RULE = 64
VALIDATE_HOSTNAME = "validate.example"


@dataclass(frozen=True)
class ValidationReport:
    problems: tuple[Problem, ...]
    files: tuple[str, ...]
    rules_checked: int
    events_rendered: int

    @property
    def files_checked(self) -> int:
        return len(self.files)

    @property
    def ok(self) -> bool:
        return not any(p.is_error for p in self.problems)


def _render_examples(compiled: CompiledRule, ctx: RenderContext,
                     problems: list[Problem]) -> list[dict[str, Any]]:
    """Render one rule with every example set; check each event. Returns the events."""
    rule = compiled.rule
    sets, found = example_variable_sets(rule, EXAMPLE_SETS_PER_RULE)
    problems.extend(found)
    samples = trigger_variables(rule, ctx.now)
    events: list[dict[str, Any]] = []
    for variables in sets:
        outcome = render(compiled, {**samples, **variables}, ctx)
        problems.extend(outcome.problems)
        for event in outcome.events:
            events.append(event)
            problems.extend(check_event(event, now=ctx.now, rule=rule))
    return events


def _place(problem: Problem) -> tuple[int, str, int, int]:
    where = problem.location
    return (0, where.path, where.line, where.col) if where else (1, "", 0, 0)


def _strictly(problems: Iterable[Problem]) -> list[Problem]:
    return [p._replace(severity=Severity.ERROR) if not p.is_error else p for p in problems]


def validate_paths(
    paths: Sequence[str],
    *,
    now: datetime,
    environ: Mapping[str, str],
    strict: bool = False,
    tested: Collection[str] | None = None,
    disabled_checks: Collection[str] = (),
) -> ValidationReport:
    """Validate every rule under `paths`. Raises UsageError only for a path that does not exist.

    `strict` turns warnings into errors. `tested` (rule ids some test case covers) enables the
    lint check for untested rules; `disabled_checks` names lint checks to skip.
    """
    loaded = load_rules(paths)
    compiled, problems = compile_rules(loaded.rules)
    problems = [*loaded.problems, *problems]
    ctx = RenderContext(now=now, hostname=VALIDATE_HOSTNAME, unified_tags=unified_tags(environ),
                        environ=environ)
    rendered: dict[str, list[dict[str, Any]]] = {}
    for rule in compiled:
        rendered[rule.id] = _render_examples(rule, ctx, problems)
    problems.extend(lint_rules(loaded.rules, compiled, rendered, tested=tested,
                               disabled=disabled_checks))
    unique = sorted(dict.fromkeys(problems), key=_place)  # example sets repeat problems
    return ValidationReport(
        problems=tuple(_strictly(unique) if strict else unique),
        files=loaded.files,
        rules_checked=len(loaded.rules),
        events_rendered=sum(len(events) for events in rendered.values()),
    )
