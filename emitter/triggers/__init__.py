"""Triggers: each turns one kind of outside event into `Firing`s for `dispatch`.

Each trigger type is declared once in `kinds/` (its variables, runner, rule-test feed) and
registered in `registry`; `units` groups rules into runners; `base` holds the interface
every runner implements.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from emitter.rules.model import Rule
from emitter.triggers.base import Dispatch, Firing, OnError, TriggerHealth, TriggerRunner

if TYPE_CHECKING:
    from emitter.state.store import StateStore

__all__ = ["Dispatch", "Firing", "OnError", "TriggerHealth", "TriggerRunner", "make_runners"]


def make_runners(
    rules: Sequence[Rule],
    dispatch: Dispatch,
    on_error: OnError,
    store: StateStore,
    *,
    listen: str | None = None,
    environ: Mapping[str, str] | None = None,
    metrics: Callable[[], str] | None = None,
    stdin: bool = False,
    secret_names: Collection[str] = (),
) -> list[TriggerRunner]:
    """One runner per unit of `rules` (not started). Manual rules need none; stdin rules get
    a reader only when `stdin` is true."""
    from emitter.triggers.units import group_units, make_runner

    return [make_runner(kind, unit_rules, dispatch, on_error, store=store, listen=listen,
                        environ=environ, metrics=metrics, secret_names=secret_names)
            for (kind, _), unit_rules in group_units(rules, stdin=stdin).items()]
