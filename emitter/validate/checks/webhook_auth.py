"""Lint check `webhook-auth`: a webhook rule that accepts unauthenticated requests (no
`auth`, `token_env` or `hmac_secret_env`), so anyone who can reach the port makes events; and
a `dedup.key` template that does not compile."""

from __future__ import annotations

from jinja2.exceptions import TemplateSyntaxError

from emitter.problems import Problem
from emitter.rules.model import Tmpl, WebhookTrigger
from emitter.templates.compiler import compile_template
from emitter.validate.checks.base import LintCheck, LintInput, Options


def check(item: LintInput, options: Options) -> list[Problem]:
    rule = item.rule
    trigger = rule.trigger
    if not isinstance(trigger, WebhookTrigger):
        return []
    problems = []
    if not trigger.schemes:
        problems.append(CHECK.problem(
            f"webhook {trigger.path} accepts unauthenticated requests: anyone who reaches the "
            "port can make events; add `auth` (a sender `preset` such as github, gitlab, "
            "alertmanager, or a `scheme` with `secret_env`)", rule.location, rule.id))
    dedup = trigger.dedup
    if dedup is not None and dedup.key is not None and dedup.key_at is not None:
        try:
            compile_template(Tmpl(dedup.key, dedup.key_at), rule.budget)
        except TemplateSyntaxError as exc:
            problems.append(CHECK.problem(f"dedup.key does not compile: {exc.message}",
                                          dedup.key_at, rule.id))
    return problems


CHECK = LintCheck(
    id="webhook-auth",
    description="a webhook rule without authentication (no `auth`, token_env or "
    "hmac_secret_env), or whose `dedup.key` template does not compile",
    run=check,
)
