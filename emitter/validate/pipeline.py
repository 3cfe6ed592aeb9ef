"""The `validate` pipeline: load every file, compile every template, render every rule with
its example variable sets, check every event, lint. All problems of all files in one run.

What validate assumes when it renders (so a rule can be checked without its trigger firing):
- params take their `example`, then every combination of `enum` values (at most 64 sets per
  rule); a param with neither example, default nor enum makes the rule unrenderable
  (a warning, the rule's templates are still compiled);
- variables a trigger provides get the sample values its declaration gives
  (emitter.triggers.kinds: a file line is "example", a webhook payload is {}, a command
  exited 0 with empty output...);
  a param's example with the same name overrides the sample; a key missing from a stand-in
  sample (a webhook `payload` without an example) is a warning saying so, not an error;
- `now` is the time of the run, `hostname` is "validate.example" and `env` holds the
  variables the rule names, from the environment validate runs in.

Everything after loading is per rule, so a large rule set can be checked by several processes
(`jobs`): contiguous runs of rules, each in a forked child, joined stage by stage so the
report is the same, in the same order, as one process would give.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from emitter.events.check import check_event
from emitter.problems import Problem, Severity
from emitter.redaction import Redactor, exposed_by
from emitter.rules.loader import load_rules
from emitter.rules.model import Rule
from emitter.rules.params import example_variable_sets
from emitter.settings import unified_tags
from emitter.templates.compiler import CompiledRule, compile_rules, names_in
from emitter.templates.render import RenderContext, render
from emitter.triggers.registry import sample_variables, stand_ins
from emitter.validate.lint import lint_rules, ruleset_problems

EXAMPLE_SETS_PER_RULE = 64
VALIDATE_HOSTNAME = "validate.example"
MAX_JOBS = 4
RULES_PER_JOB = 100  # fewer rules than this per process and a fork costs more than it saves


@dataclass(frozen=True)
class ValidationReport:
    problems: tuple[Problem, ...]
    files: tuple[str, ...]
    rules_checked: int
    events_rendered: int
    jobs: int = 1  # processes that checked rules
    # The rules as compiled by the check, for `emitter run` (keep_compiled=True), which then
    # does not compile them a second time; None otherwise.
    compiled: tuple[CompiledRule, ...] | None = field(default=None, compare=False, repr=False)

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
    samples = sample_variables(rule, ctx.now)
    guessed = [n for n in stand_ins(rule) if n in _names_read(compiled)]
    events: list[dict[str, Any]] = []
    for variables in sets:
        outcome = render(compiled, {**samples, **variables}, ctx)
        problems.extend(_about_stand_ins(p, guessed) for p in outcome.problems)
        for event in outcome.events:
            events.append(event)
            problems.extend(check_event(event, now=ctx.now, rule=rule))
    return events


def _names_read(compiled: CompiledRule) -> frozenset[str]:
    parts: list[Any] = [compiled.when, compiled.foreach, compiled.throttle_key]
    for _, value in compiled.fields:
        parts.extend(value if isinstance(value, tuple) else (value,))
    return frozenset().union(*(names_in(p) for p in parts
                               if p is not None and not isinstance(p, int)))


def _about_stand_ins(problem: Problem, guessed: Sequence[str]) -> Problem:
    """A key missing from a stand-in sample (a webhook payload is {}) says nothing about the
    rule: a warning saying how to give validate the data's shape, not an error."""
    if not guessed or problem.check != "undefined" or not problem.message.startswith(
            "undefined value"):
        return problem
    names = ", ".join(f"`{n}`" for n in guessed)
    return problem._replace(severity=Severity.WARNING, message=(
        f"{problem.message} (validate's stand-in for {names} is {{}}: give the one used an "
        "example under `params` to check this)"))


def _place(problem: Problem) -> tuple[int, str, int, int]:
    where = problem.location
    return (0, where.path, where.line, where.col) if where else (1, "", 0, 0)


def _strictly(problems: Iterable[Problem]) -> list[Problem]:
    return [p._replace(severity=Severity.ERROR) if not p.is_error else p for p in problems]


@dataclass(frozen=True)
class _Checked:
    """What checking a run of rules found, stage by stage (so runs join in rule order)."""

    compiled: tuple[Problem, ...]
    rendered: tuple[Problem, ...]
    linted: tuple[Problem, ...]
    events: int
    rules: tuple[CompiledRule, ...] | None = None  # kept only when asked (not pickled then)


def _check(rules: Sequence[Rule], ctx: RenderContext,
           disabled_checks: Collection[str], keep: bool = False) -> _Checked:
    """Compile, render with the examples, check each event and lint: everything per rule
    (`keep`: with the compiled rules)."""
    compiled, compile_problems = compile_rules(rules)
    render_problems: list[Problem] = []
    rendered = {rule.id: _render_examples(rule, ctx, render_problems) for rule in compiled}
    linted = lint_rules(rules, compiled, rendered, disabled=disabled_checks)
    return _Checked(tuple(compile_problems), tuple(render_problems), tuple(linted),
                    sum(len(events) for events in rendered.values()),
                    tuple(compiled) if keep else None)


def usable_jobs(rules: int, jobs: int | None) -> int:
    """How many processes check `rules` rules: `jobs` (None: one per CPU, at most MAX_JOBS,
    with RULES_PER_JOB rules each or more), never more than the rules, and 1 without fork or
    with other threads running (a forked child would hold any lock they held, forever)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    if jobs is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        jobs = min(cpus or os.cpu_count() or 1, MAX_JOBS, rules // RULES_PER_JOB)
    return max(1, min(jobs, rules))


_Child = tuple[int, int]  # pid, read end of its pipe


def _fork(work: Callable[[], _Checked]) -> _Child | None:
    """Run `work` in a forked child that sends the pickled result back through a pipe."""
    try:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid:
        os.close(write_fd)
        return pid, read_fd
    code = 1
    try:  # the child: never returns into the caller's code, whatever happens
        os.close(read_fd)
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL))
        code = 0
    finally:
        os._exit(code)


def _collect(child: _Child | None, *, stop: bool = False) -> _Checked | None:
    """The child's result (None when it failed); with `stop`, end it unread."""
    if child is None:
        return None
    pid, read_fd = child
    if stop:
        os.kill(pid, signal.SIGKILL)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if stop or status != 0:
        return None
    try:
        result = pickle.loads(data)  # noqa: S301 - our own child's output, through our pipe
    except Exception:  # noqa: BLE001 - a truncated result: the chunk is checked again here
        return None
    return result if isinstance(result, _Checked) else None


def _check_in_parallel(rules: Sequence[Rule], jobs: int,
                       check: Callable[[Sequence[Rule]], _Checked]) -> list[_Checked]:
    """`check` on `jobs` contiguous runs of `rules`: the first here, the others in forked
    children. A child that fails has its run checked here, so the report never depends on
    fork working."""
    runs = [rules[i * len(rules) // jobs:(i + 1) * len(rules) // jobs] for i in range(jobs)]
    children: list[_Child | None] = []
    try:
        for run in runs[1:]:
            children.append(_fork(partial(check, run)))
        results = [check(runs[0])]
    except BaseException:
        for child in children:
            _collect(child, stop=True)
        raise
    for run, child in zip(runs[1:], children, strict=True):
        results.append(_collect(child) or check(run))
    return results


def validate_paths(
    paths: Sequence[str],
    *,
    now: datetime,
    environ: Mapping[str, str],
    strict: bool = False,
    tested: Collection[str] | None = None,
    disabled_checks: Collection[str] = (),
    jobs: int | None = 1,
    keep_compiled: bool = False,
) -> ValidationReport:
    """Validate every rule under `paths`. Raises UsageError only for a path that does not exist.

    `strict` turns warnings into errors. `tested` (rule ids some test case covers) enables the
    lint check for untested rules; `disabled_checks` names lint checks to skip. `jobs` is the
    number of processes checking rules (see `usable_jobs`); the report does not depend on it.
    `keep_compiled` (one process) returns the compiled rules with the report.
    """
    loaded = load_rules(paths)
    ctx = RenderContext(now=now, hostname=VALIDATE_HOSTNAME, unified_tags=unified_tags(environ),
                        environ=environ)
    rules = loaded.rules
    jobs = 1 if keep_compiled else usable_jobs(len(rules), jobs)

    def check(run: Sequence[Rule]) -> _Checked:
        return _check(run, ctx, disabled_checks, keep_compiled)

    results = _check_in_parallel(rules, jobs, check) if jobs > 1 else [check(rules)]
    problems = [*loaded.problems]
    for stage in ("compiled", "rendered", "linted"):  # the order one process would give
        problems.extend(p for result in results for p in getattr(result, stage))
    problems.extend(ruleset_problems(rules, tested, disabled=disabled_checks))
    unique = sorted(dict.fromkeys(problems), key=_place)  # example sets repeat problems
    unique = Redactor.of(environ, exposed_by(rules)).problems(unique)  # before any output
    return ValidationReport(
        problems=tuple(_strictly(unique) if strict else unique),
        files=loaded.files,
        rules_checked=len(rules),
        events_rendered=sum(result.events for result in results),
        jobs=jobs,
        compiled=results[0].rules if keep_compiled else None,
    )
