"""Triggers: each module turns one kind of outside event into `Firing`s for `dispatch`.

`make_runners` builds the runners for a set of rules (one per schedule set, followed file,
command rule, webhook server, stdin); `base` holds the interface every runner implements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emitter.rules.model import Rule
from emitter.state.store import StateStore
from emitter.triggers.base import Dispatch, Firing, OnError, TriggerHealth, TriggerRunner

__all__ = ["Dispatch", "Firing", "OnError", "TriggerHealth", "TriggerRunner", "make_runners"]


def make_runners(
    rules: Sequence[Rule],
    dispatch: Dispatch,
    on_error: OnError,
    store: StateStore,
    *,
    listen: str | None = None,
    environ: Mapping[str, str] | None = None,
    metrics: Any = None,
    stdin: bool = False,
) -> list[TriggerRunner]:
    """One runner per unit of work for `rules` (not started). Manual rules need none; stdin
    rules get a reader only when `stdin` is true."""
    from emitter.triggers import command, schedule, webhook
    from emitter.triggers import stdin as stdin_mod
    from emitter.triggers.filetail import FileTailRunner

    by_type: dict[str, list[Rule]] = {}
    for rule in rules:
        by_type.setdefault(rule.trigger.type, []).append(rule)
    runners: list[TriggerRunner] = []
    if "schedule" in by_type:
        runners.append(schedule.make_runner(by_type["schedule"], dispatch, on_error, store))
    files: dict[str, list[Rule]] = {}
    for rule in by_type.get("file", []):
        files.setdefault(str(getattr(rule.trigger, "path", "")), []).append(rule)
    runners.extend(FileTailRunner(group, dispatch, on_error, store) for group in files.values())
    runners.extend(command.make_runner([r], dispatch, on_error, store)
                   for r in by_type.get("command", []))
    if "webhook" in by_type:
        runners.append(webhook.make_runner(by_type["webhook"], dispatch, on_error, store,
                                           listen=listen, environ=environ, metrics=metrics))
    if stdin and "stdin" in by_type:
        runners.append(stdin_mod.make_runner(by_type["stdin"], dispatch, on_error, store))
    return runners
