"""The `command` trigger's declaration: a command run every `every`, when a run fires, and
what a run gives templates. `state` is the result's class; `on: change` compares it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from emitter.firing import Dispatch, Firing, OnError
from emitter.rules.model import CommandTrigger, Rule, Trigger
from emitter.triggers.spec import FeedState, RunnerOptions, TriggerType, Variable


class Result(Protocol):
    """One run's outcome (the runner's RunResult; a rule test's `command_results` item)."""

    @property
    def exit_code(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def duration(self) -> float: ...
    @property
    def timed_out(self) -> bool: ...


def result_state(exit_code: int, timed_out: bool) -> str:
    """The result's class: "ok" (exit 0), "failed" (non-zero) or "timed_out"."""
    if timed_out:
        return "timed_out"
    return "ok" if exit_code == 0 else "failed"


def fires(on: str, state: str, previous: str) -> bool:
    """Whether a run in `state` fires under `on`, after a run in `previous`."""
    if on == "always":
        return True
    if on == "failure":
        return state != "ok"
    return state != previous


def result_variables(argv: Sequence[str], result: Result, previous: str) -> dict[str, Any]:
    return {
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "duration": round(result.duration, 6),
        "timed_out": result.timed_out,
        "command": " ".join(argv),
        "state": result_state(result.exit_code, result.timed_out),
        "previous_state": previous,
    }


def _command(trigger: Trigger, now: object) -> str:
    assert isinstance(trigger, CommandTrigger)
    return " ".join(trigger.command)


def _runner(rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: Any,
            options: RunnerOptions) -> Any:
    from emitter.triggers.command import CommandRunner

    return CommandRunner(rules, dispatch, on_error, store, environ=options.environ,
                         secret_names=options.secret_names)


def _feed(rule: Rule, results: Sequence[Result], at: float,
          state: FeedState) -> list[Firing]:
    trigger = rule.trigger
    assert isinstance(trigger, CommandTrigger)
    firings = []
    for result in results:
        now_state = result_state(result.exit_code, result.timed_out)
        previous, state.last_command = state.last_command, now_state
        if not fires(trigger.on, now_state, previous):
            state.quiet.append(f"command state {now_state} (on: {trigger.on})")
            continue
        variables = result_variables(trigger.command, result, previous)
        firings.append(Firing(rule.id, "command", variables, at))
    return firings


COMMAND = TriggerType(
    name="command",
    fired_by="Runs `command` every `every` and fires according to `on`.",
    options="`command` (argv list), `every`, `timeout`, `on: always\\|change\\|failure`",
    variables=(
        Variable("exit_code", "integer", "-9 after a timeout, -N when signal N ended it", 0),
        Variable("stdout", "string", "the last 4 KiB, UTF-8 with replacements", ""),
        Variable("stderr", "string", "the last 4 KiB, UTF-8 with replacements", ""),
        Variable("duration", "number", "seconds", 0.0),
        Variable("timed_out", "boolean", "killed at `timeout`", False),
        Variable("command", "string", "the argv joined with spaces", _command),
        Variable("state", "string",
                 "`ok`, `failed` or `timed_out`: what `on: change` compares, output does "
                 "not count", "ok"),
        Variable("previous_state", "string", "the last run's state, `ok` before any", "ok"),
    ),
    test_input="command_results",
    runner=_runner,
    unit=lambda rule: rule.id,
    feed=_feed,
)
