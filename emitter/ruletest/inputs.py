"""Turning a test case's inputs into `Firing`s, through each trigger's own declaration.

Each input kind is fed to the rule's trigger declaration (emitter.triggers.kinds.*), which
builds the variables with the same functions its runner uses, so a case exercises what the
daemon runs. A mismatch between the input kind and the rule's trigger type is a `CaseError`.
"""

from __future__ import annotations

from typing import Any

from emitter.firing import Firing
from emitter.rules.model import Rule
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
from emitter.triggers.registry import declaration
from emitter.triggers.spec import FeedState

InputState = FeedState  # what a trigger remembers between the inputs of one case


class CaseError(Exception):
    """The case cannot run as written (wrong input kind for the rule's trigger)."""


def expected_kind(rule: Rule) -> str:
    return declaration(rule).test_input


def _given(given: Input) -> Any:
    """The input's own value, in the form the trigger declaration's `feed` takes."""
    if isinstance(given, ParamsInput):
        return given.values
    if isinstance(given, LinesInput):
        return given.lines
    if isinstance(given, WebhookInput):
        return given
    if isinstance(given, CommandInput):
        return given.results
    if isinstance(given, ScheduleInput):
        return given.times
    assert isinstance(given, StdinInput)
    return given.objects


def firings_for(rule: Rule, step: Step, state: InputState) -> list[Firing]:
    """The firings one step produces for `rule` (several for several lines or times)."""
    given: Input = step.input
    want = expected_kind(rule)
    if given.kind != want:
        raise CaseError(f"rule {rule.id!r} has a {rule.trigger.type} trigger: give `{want}:`, "
                        f"not `{given.kind}:`")
    return declaration(rule).feed(rule, _given(given), step.at, state)
