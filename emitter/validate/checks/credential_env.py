"""Lint check `credential-env`: a rule that exposes a credential variable (DD_API_KEY, a
*_TOKEN, *_SECRET, *PASSWORD*...) to its templates, from where it can reach an event."""

from __future__ import annotations

from emitter.problems import Problem
from emitter.redaction import is_credential_name
from emitter.validate.checks.base import LintCheck, LintInput, Options


def check(item: LintInput, options: Options) -> list[Problem]:
    return [CHECK.problem(
        f"env: {name} looks like a credential; templates can put its value into an event, "
        "which every reader of the Datadog event stream sees: expose only what the event "
        "needs (webhook tokens and HMAC keys are read by the trigger, not through env:)",
        item.rule.location, item.rule.id) for name in item.rule.env if is_credential_name(name)]


CHECK = LintCheck(
    id="credential-env",
    description="an `env:` entry that looks like a credential (DD_API_KEY, *_KEY, *_TOKEN, "
    "*_SECRET, *PASSWORD*), so templates could send its value to Datadog",
    run=check,
)
