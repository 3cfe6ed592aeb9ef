"""The `manual` trigger: fired by `emitter fire` and `emitter exec`; templates see the params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emitter.errors import UsageError
from emitter.firing import Firing
from emitter.problems import Problem
from emitter.rules.model import Rule
from emitter.triggers.spec import FeedState, TriggerType


def _feed(rule: Rule, values: Mapping[str, Any], at: float, state: FeedState) -> list[Firing]:
    from emitter.rules.params import coerce_vars

    try:
        variables = coerce_vars(rule, {}, dict(values))
    except UsageError as exc:
        state.problems.append(Problem(str(exc), rule_id=rule.id, check="params"))
        return []
    return [Firing(rule.id, "manual", variables, at)]


MANUAL = TriggerType(
    name="manual",
    fired_by="Fired by `emitter fire` or `emitter exec`.",
    options="",
    variables=(),
    test_input="params",
    runner=None,  # fired from the command line, not by the daemon
    feed=_feed,
    extra_note="the params only",
)
