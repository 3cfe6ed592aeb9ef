"""The registry of trigger types: name -> its one declaration (emitter.triggers.kinds.*).

Everything that needs to know what a trigger gives templates asks here: validate's samples
(`sample_variables`), `emitter render`, `emitter test`, `emitter replay`, the runners, and
the documentation check (emitter.triggers.docs).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from emitter.rules.model import Rule
from emitter.triggers.kinds.command import COMMAND
from emitter.triggers.kinds.file import FILE
from emitter.triggers.kinds.manual import MANUAL
from emitter.triggers.kinds.schedule import SCHEDULE
from emitter.triggers.kinds.stdin import STDIN
from emitter.triggers.kinds.webhook import WEBHOOK
from emitter.triggers.spec import TriggerType

TRIGGER_TYPES: Mapping[str, TriggerType] = {
    t.name: t for t in (MANUAL, SCHEDULE, FILE, WEBHOOK, COMMAND, STDIN)
}
_DEFAULT_NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)


def declaration(rule: Rule) -> TriggerType:
    return TRIGGER_TYPES[rule.trigger.type]


def sample_variables(rule: Rule, now: datetime | None = None) -> dict[str, Any]:
    """Sample values for every variable the rule's trigger gives, so validate can render it
    (callers let a param's example of the same name override a sample)."""
    return declaration(rule).samples(rule.trigger, now or _DEFAULT_NOW)


def stand_ins(rule: Rule) -> tuple[str, ...]:
    """The rule's trigger variables whose sample is only a stand-in for data of the sender's
    shape (a webhook's `payload` is {}), unless a param's example gives the shape."""
    return tuple(v.name for v in declaration(rule).variables
                 if v.open and rule.param(v.name) is None)


def variable_names(rule: Rule) -> frozenset[str]:
    """Every name the rule's trigger gives templates."""
    return declaration(rule).names(rule.trigger)
