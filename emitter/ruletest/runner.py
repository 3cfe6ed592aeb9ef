"""Running rule tests through the daemon's own pipeline, with nothing sent and no state kept.

Each case gets a fresh `Pipeline` (the daemon's render -> check -> throttle -> outbox path)
whose outbox is a list in memory, a `Throttler` on an in-memory SQLite `StateStore`, and a
clock that is the case's `now` or the `at` of its current input. What the pipeline would have
committed to the outbox is what the case produced.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emitter.counters import Metrics
from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
from emitter.delivery.throttle import Throttler
from emitter.firing import Firing
from emitter.problems import Problem
from emitter.rules.loader import load_rules
from emitter.rules.model import Rule
from emitter.ruletest.compare import judge
from emitter.ruletest.inputs import CaseError, InputState, firings_for
from emitter.ruletest.model import (
    CaseResult,
    FileResult,
    RunResult,
    Status,
    TestCase,
    TestFile,
)
from emitter.ruletest.parse import read_test_file
from emitter.settings import unified_tags
from emitter.state.store import StateStore
from emitter.templates.compiler import CompiledRule, compile_rules


class MemoryOutbox:
    """Stands in for the durable outbox: keeps what the pipeline commits, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []

    def enqueue(self, items: Sequence[tuple[str, bytes]]) -> None:
        self.items.extend(items)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.items]


class _Problems:
    """The pipeline's invalid firings and events of one case, as Problems with the rule id
    (its `on_invalid` observer)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def __call__(self, rule_id: str, trigger: str, problem: Problem) -> None:
        self.problems.append(problem._replace(rule_id=rule_id))


@dataclass(frozen=True)
class LoadedRules:
    rules: Mapping[str, Rule]
    compiled: Mapping[str, CompiledRule]
    problems: tuple[Problem, ...]


def load_for_tests(rule_files: Sequence[str]) -> LoadedRules:
    """Load and compile the rule files a test file names (never raises for user errors)."""
    result = load_rules(list(rule_files))
    compiled, problems = compile_rules(result.rules)
    all_problems = tuple(p for p in (*result.problems, *problems) if p.is_error)
    return LoadedRules({r.id: r for r in result.rules}, {c.id: c for c in compiled},
                       all_problems)


class CaseRunner:
    """Runs the cases of one test file against its loaded rules."""

    def __init__(self, loaded: LoadedRules, hostname: str, env: Mapping[str, str]) -> None:
        self.loaded = loaded
        self.ruleset = RuleSet.of(list(loaded.compiled.values()))
        env = dict(env)
        self.context = context_factory(hostname, unified_tags(env), env)

    def run(self, case: TestCase) -> CaseResult:
        started = time.perf_counter()
        try:
            outcome = self._outcome(case)
        except CaseError as exc:
            return CaseResult(case.name, case.rule_id, case.location, Status.ERROR, str(exc),
                              duration=time.perf_counter() - started)
        events, problems, quiet = outcome
        verdict = judge(case.expect, events, problems, quiet)
        status = Status.PASSED if verdict.ok else Status.FAILED
        return CaseResult(case.name, case.rule_id, case.location, status, verdict.message,
                          verdict.diff, tuple(events), time.perf_counter() - started)

    def _rule(self, rule_id: str) -> Rule:
        rule = self.loaded.rules.get(rule_id)
        if rule is None or rule_id not in self.loaded.compiled:
            known = ", ".join(sorted(self.loaded.rules)) or "none"
            raise CaseError(f"unknown rule {rule_id!r} (rules loaded: {known})")
        return rule

    def _outcome(self, case: TestCase) -> tuple[list[dict[str, Any]], list[Problem], list[str]]:
        rule = self._rule(case.rule_id)
        clock = _Clock(case.now)
        store = StateStore(":memory:")
        outbox = MemoryOutbox()
        metrics = Metrics()
        found = _Problems()
        # The pipeline's event log lines are a daemon's: a test run keeps them off and hears
        # of invalid events through its observer.
        pipeline = Pipeline(self.ruleset, outbox, metrics=metrics, context=self.context,
                            throttler=Throttler(store, clock), store=store,
                            on_invalid=found, log_events=False)
        state = InputState()
        try:
            for step in case.steps:
                for firing in firings_for(rule, step, state):
                    self._dispatch(pipeline, clock, firing)
            if case.until is not None:
                clock.now = case.until
                pipeline.flush_summaries(case.until)
        finally:
            store.close()
        quiet = [*state.quiet, *_quiet_from(metrics, rule.id)]
        return outbox.events(), [*state.problems, *found.problems], quiet

    @staticmethod
    def _dispatch(pipeline: Pipeline, clock: _Clock, firing: Firing) -> None:
        clock.now = firing.at
        pipeline.flush_summaries(firing.at)  # windows that ended before this input
        pipeline.dispatch([firing])


class _Clock:
    """The case's clock: set to each input's time; the throttler reads it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _quiet_from(metrics: Metrics, rule_id: str) -> list[str]:
    reasons = []
    if (n := metrics.get(rule_id, "skipped")):
        reasons.append(f"{n} firing(s) skipped by when/foreach")
    if (n := metrics.get(rule_id, "throttled")):
        reasons.append(f"{n} event(s) throttled")
    return reasons


def run_test_file(path: str, cache: dict[tuple[str, ...], LoadedRules] | None = None) -> FileResult:
    """Run every case of one test file; a broken file or rule file gives a FileResult with
    problems and no cases."""
    started = time.perf_counter()
    test_file, problems = read_test_file(path)
    if test_file is None:
        return FileResult(path, problems=tuple(problems),
                          duration=time.perf_counter() - started)
    loaded = _loaded(test_file, cache)
    if loaded.problems:
        return FileResult(path, problems=loaded.problems,
                          duration=time.perf_counter() - started)
    runner = CaseRunner(loaded, test_file.hostname, test_file.env)
    results = tuple(runner.run(case) for case in test_file.cases)
    return FileResult(path, results, duration=time.perf_counter() - started)


def _loaded(test_file: TestFile, cache: dict[tuple[str, ...], LoadedRules] | None) -> LoadedRules:
    key = test_file.rule_files
    if cache is not None and key in cache:
        return cache[key]
    loaded = load_for_tests(key)
    if cache is not None:
        cache[key] = loaded
    return loaded


def run_tests(paths: Sequence[str]) -> RunResult:
    """Run every test file in `paths` (already found; see parse.find_test_files)."""
    cache: dict[tuple[str, ...], LoadedRules] = {}
    return RunResult(tuple(run_test_file(p, cache) for p in paths))
