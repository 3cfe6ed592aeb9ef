"""The `stdin` trigger's declaration: one JSON object per line of standard input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emitter.firing import Dispatch, Firing, OnError
from emitter.rules.model import Rule
from emitter.triggers.spec import FeedState, RunnerOptions, TriggerType, Variable


def line_variables(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {"payload": payload}


def _runner(rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: Any,
            options: RunnerOptions) -> Any:
    from emitter.triggers.units import stdin_unit

    return stdin_unit(rules, dispatch, on_error, options.stdin)


def _feed(rule: Rule, objects: Sequence[Mapping[str, Any]], at: float,
          state: FeedState) -> list[Firing]:
    return [Firing(rule.id, "stdin", line_variables(dict(o)), at) for o in objects]


STDIN = TriggerType(
    name="stdin",
    fired_by="Fired once per line of standard input holding a JSON object "
             "(`emitter run --stdin`).",
    options="",
    variables=(Variable("payload", "object", "the line's JSON object", lambda t, now: {},
                        open=True),),
    test_input="stdin",
    runner=_runner,
    feed=_feed,
)
