"""The `file` trigger's declaration: matching lines of a followed file and their variables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emitter.firing import Dispatch, Firing, OnError
from emitter.rules.model import FileTrigger, Rule, Trigger
from emitter.triggers.spec import FeedState, RunnerOptions, TriggerType, Variable


def line_variables(groups: Mapping[str, Any], line: str, path: str,
                   line_number: int) -> dict[str, Any]:
    """What one matching line gives templates: the named groups, then the fixed names (which
    win over groups of the same name)."""
    variables = dict(groups)
    variables.update(line=line, path=path, line_number=line_number)
    return variables


def _groups(trigger: Trigger) -> tuple[str, ...]:
    assert isinstance(trigger, FileTrigger)
    return tuple(trigger.match.groupindex)


def _path(trigger: Trigger, now: object) -> str:
    assert isinstance(trigger, FileTrigger)
    return trigger.path


def _runner(rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: Any,
            options: RunnerOptions) -> Any:
    from emitter.triggers.filetail import FileTailRunner

    return FileTailRunner(rules, dispatch, on_error, store)


def _feed(rule: Rule, lines: Sequence[str], at: float, state: FeedState) -> list[Firing]:
    from emitter.triggers.linematch import LineMatcher, LineRule

    trigger = rule.trigger
    assert isinstance(trigger, FileTrigger)
    if state.matcher is None:
        state.matcher = LineMatcher([LineRule(rule.id, trigger.match, trigger.exclude)])
    chunk = b"".join(line.encode("utf-8") + b"\n" for line in lines)
    hits = state.matcher.scan(chunk, state.next_line)
    state.next_line += len(lines)
    if len(hits) < len(lines):
        state.quiet.append(f"{len(lines) - len(hits)} line(s) did not match")
    return [Firing(rule.id, "file", line_variables(h.groups, h.line, trigger.path,
                                                   h.line_number), at) for h in hits]


FILE = TriggerType(
    name="file",
    fired_by="Fired for each new line of a file that matches `match` (like tail -F).",
    options="`path`, `match` (regex, named groups), `exclude`, `from_beginning`",
    variables=(
        Variable("line", "string", "the line, without its newline", "example"),
        Variable("path", "string", "the trigger's `path`, as written", _path),
        Variable("line_number", "integer", "1-based", 1),
    ),
    test_input="lines",
    runner=_runner,
    unit=lambda rule: _path(rule.trigger, None),  # a file is read once for all its rules
    feed=_feed,
    extra_note="the named groups of `match`",
    extra_names=_groups,
)
