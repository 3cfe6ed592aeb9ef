"""Turning a test case's inputs into `Firing`s, the way each trigger turns the world into them.

Each input kind goes through the trigger's own code where that code is a pure function (the
file trigger's `LineMatcher`), so a case exercises what the daemon runs. A mismatch between
the input kind and the rule's trigger type is a `CaseError` (the case cannot run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emitter.errors import UsageError
from emitter.firing import Firing
from emitter.problems import Problem
from emitter.rules.model import (
    CommandTrigger,
    FileTrigger,
    ManualTrigger,
    Rule,
    ScheduleTrigger,
    StdinTrigger,
    WebhookTrigger,
)
from emitter.rules.params import coerce_vars
from emitter.ruletest.model import (
    CommandInput,
    Input,
    LinesInput,
    ParamsInput,
    ScheduleInput,
    StdinInput,
    Step,
    WebhookInput,
)
from emitter.triggers.command import RunResult
from emitter.triggers.command import _fires as command_fires
from emitter.triggers.command import _variables as command_variables
from emitter.triggers.linematch import LineHit, LineMatcher, LineRule
from emitter.triggers.schedule import _Schedule as Schedule
from emitter.triggers.webhook import _HIDDEN as HIDDEN_HEADERS

_KIND_FOR_TRIGGER: Mapping[type, str] = {
    ManualTrigger: "params",
    FileTrigger: "lines",
    WebhookTrigger: "webhook",
    CommandTrigger: "command_results",
    ScheduleTrigger: "scheduled_times",
    StdinTrigger: "stdin",
}


class CaseError(Exception):
    """The case cannot run as written (wrong input kind for the rule's trigger)."""


@dataclass
class InputState:
    """What a trigger remembers between inputs of one case (line numbers, last command)."""

    next_line: int = 1
    last_command: str = "ok"  # the command trigger's state before any run is known
    matcher: LineMatcher | None = None
    problems: list[Problem] = field(default_factory=list)  # inputs the trigger refused
    quiet: list[str] = field(default_factory=list)  # why inputs fired nothing


def expected_kind(rule: Rule) -> str:
    return _KIND_FOR_TRIGGER[type(rule.trigger)]


def file_variables(hit: LineHit, path: str) -> dict[str, Any]:
    """What the file trigger gives templates for one matching line (as filetail does)."""
    variables: dict[str, Any] = dict(hit.groups)
    variables.update(line=hit.line, path=path, line_number=hit.line_number)
    return variables


def _manual(rule: Rule, given: ParamsInput, at: float, state: InputState) -> list[Firing]:
    try:
        variables = coerce_vars(rule, {}, dict(given.values))
    except UsageError as exc:
        state.problems.append(Problem(str(exc), rule_id=rule.id, check="params"))
        return []
    return [Firing(rule.id, "manual", variables, at)]


def _lines(rule: Rule, given: LinesInput, at: float, state: InputState) -> list[Firing]:
    trigger = rule.trigger
    assert isinstance(trigger, FileTrigger)
    if state.matcher is None:
        state.matcher = LineMatcher([LineRule(rule.id, trigger.match, trigger.exclude)])
    chunk = b"".join(line.encode("utf-8") + b"\n" for line in given.lines)
    hits = state.matcher.scan(chunk, state.next_line)
    state.next_line += len(given.lines)
    if len(hits) < len(given.lines):
        state.quiet.append(f"{len(given.lines) - len(hits)} line(s) did not match")
    return [Firing(rule.id, "file", file_variables(hit, trigger.path), at) for hit in hits]


def webhook_variables(trigger: WebhookTrigger, payload: Any, headers: Mapping[str, str],
                      query: Mapping[str, str]) -> dict[str, Any]:
    """What the webhook trigger gives templates for one accepted request (as webhook.py:
    lower-cased header names without credentials or the signature, first query values)."""
    hidden = {*HIDDEN_HEADERS, trigger.signature_header.lower()}
    lowered = {k.lower(): v for k, v in headers.items()}
    return {"payload": payload, "headers": {k: v for k, v in lowered.items() if k not in hidden},
            "query": dict(query), "path": trigger.path, "method": "POST"}


def _webhook(rule: Rule, given: WebhookInput, at: float, state: InputState) -> list[Firing]:
    trigger = rule.trigger
    assert isinstance(trigger, WebhookTrigger)
    body = given.body
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            state.problems.append(Problem(
                f"malformed JSON: {exc.msg} (the webhook answers 400 and fires nothing)",
                rule_id=rule.id, check="webhook"))
            return []
    variables = webhook_variables(trigger, body, given.headers, given.query)
    return [Firing(rule.id, "webhook", variables, at)]


def _command(rule: Rule, given: CommandInput, at: float, state: InputState) -> list[Firing]:
    trigger = rule.trigger
    assert isinstance(trigger, CommandTrigger)
    firings = []
    for given_result in given.results:
        result = RunResult(given_result.exit_code, given_result.stdout, given_result.stderr,
                           given_result.duration, given_result.timed_out)
        previous, state.last_command = state.last_command, result.state
        if not command_fires(trigger.on, result.state, previous):
            state.quiet.append(f"command state {result.state} (on: {trigger.on})")
            continue
        firings.append(Firing(rule.id, "command", command_variables(trigger, result, previous),
                              at))
    return firings


def _schedule(rule: Rule, given: ScheduleInput, at: float, state: InputState) -> list[Firing]:
    schedule = Schedule(rule)
    return [Firing(rule.id, "schedule", schedule.variables(t), t) for t in given.times]


def _stdin(rule: Rule, given: StdinInput, at: float, state: InputState) -> list[Firing]:
    return [Firing(rule.id, "stdin", {"payload": dict(o)}, at) for o in given.objects]


def firings_for(rule: Rule, step: Step, state: InputState) -> list[Firing]:
    """The firings one step produces for `rule` (several for several lines or times)."""
    given: Input = step.input
    want = expected_kind(rule)
    if given.kind != want:
        kind = getattr(rule.trigger, "type", "?")
        raise CaseError(f"rule {rule.id!r} has a {kind} trigger: give `{want}:`, "
                        f"not `{given.kind}:`")
    if isinstance(given, ParamsInput):
        return _manual(rule, given, step.at, state)
    if isinstance(given, LinesInput):
        return _lines(rule, given, step.at, state)
    if isinstance(given, WebhookInput):
        return _webhook(rule, given, step.at, state)
    if isinstance(given, CommandInput):
        return _command(rule, given, step.at, state)
    if isinstance(given, ScheduleInput):
        return _schedule(rule, given, step.at, state)
    return _stdin(rule, given, step.at, state)
