"""The `webhook` trigger's declaration: an authenticated JSON POST, its variables, and the
one table of credentials a sender may send, removed before templates see a request.

A header or query parameter is a credential when its lower-cased name is in
`CREDENTIAL_NAMES`, when one of its words (split at '-', '_' and '.') is in
`CREDENTIAL_WORDS`, or when it contains one of `CREDENTIAL_PARTS` (camelCase `apiKey`,
`accessToken`). Every header and query parameter a rule's own authentication reads
(`hidden_names`) is always removed too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from emitter.firing import Dispatch, Firing, OnError
from emitter.problems import Problem
from emitter.rules.model import Rule, Trigger, WebhookTrigger
from emitter.triggers.spec import FeedState, RunnerOptions, TriggerType, Variable

CREDENTIAL_NAMES = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-emitter-token",
    "x-api-key", "x-gitlab-token", "x-hub-signature", "x-hub-signature-256",
    "x-gitea-signature", "x-gogs-signature", "x-slack-signature", "x-twilio-signature",
    "x-shopify-hmac-sha256", "stripe-signature", "x-line-signature", "dd-api-key",
    "dd-application-key", "x-amz-security-token", "key", "sig",
})
CREDENTIAL_WORDS = frozenset({
    "auth", "authorization", "bearer", "cookie", "credential", "credentials", "hmac", "jwt",
    "key", "pass", "passwd", "password", "pwd", "secret", "session", "sessionid", "sig",
    "signature", "token",
})
CREDENTIAL_PARTS = ("apikey", "token", "secret", "passw", "signature", "credential")
_WORDS = re.compile(r"[-_.]+")


def is_credential(name: str) -> bool:
    """Whether a header or query parameter named `name` may carry a credential."""
    lowered = name.lower()
    if lowered in CREDENTIAL_NAMES or any(part in lowered for part in CREDENTIAL_PARTS):
        return True
    return any(word in CREDENTIAL_WORDS for word in _WORDS.split(lowered))


def hidden_names(trigger: WebhookTrigger) -> tuple[frozenset[str], frozenset[str]]:
    """The headers (lower-cased) and query parameters the trigger's authentication reads."""
    headers = {h.lower() for s in trigger.schemes for h in s.credential_headers}
    query = {q for s in trigger.schemes for q in s.credential_query}
    return frozenset(headers), frozenset(query)


def request_variables(payload: Any, headers: Mapping[str, str], query: Mapping[str, str],
                      path: str, signature_headers: Collection[str] = (),
                      query_names: Collection[str] = ()) -> dict[str, Any]:
    """What one accepted request gives templates: header names lower-cased, every credential
    header and query parameter (and those the rules' authentication reads) removed."""
    hidden = {h.lower() for h in signature_headers}
    lowered = {k.lower(): v for k, v in headers.items()}
    return {
        "payload": payload,
        "headers": {k: v for k, v in lowered.items() if k not in hidden and not is_credential(k)},
        "query": {k: v for k, v in query.items()
                  if k not in query_names and not is_credential(k)},
        "path": path,
        "method": "POST",
    }


def _path(trigger: Trigger, now: object) -> str:
    assert isinstance(trigger, WebhookTrigger)
    return trigger.path


def _runner(rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: Any,
            options: RunnerOptions) -> Any:
    from emitter.triggers.webhook import WebhookServer

    return WebhookServer(rules, dispatch, on_error, environ=options.environ, store=store,
                         count=options.count)


def _feed(rule: Rule, given: Any, at: float, state: FeedState) -> list[Firing]:
    """`given` has `body` (JSON value, or text to parse), `headers` and `query` mappings."""
    trigger = rule.trigger
    assert isinstance(trigger, WebhookTrigger)
    body = given.body
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            state.problems.append(Problem(
                f"malformed JSON: {reason} (the webhook answers 400 and fires nothing)",
                rule_id=rule.id, check="webhook"))
            return []
    hidden, hidden_query = hidden_names(trigger)
    variables = request_variables(body, given.headers, given.query, trigger.path,
                                  (*hidden, trigger.signature_header), hidden_query)
    return [Firing(rule.id, "webhook", variables, at)]


WEBHOOK = TriggerType(
    name="webhook",
    fired_by="Fired by an HTTP POST to the daemon at `path`.",
    options="`path`, `auth` (a `preset` or a `scheme`, `secret_env`), `dedup`; version 1: "
            "`token_env` and/or `hmac_secret_env`, `signature_header`",
    variables=(
        Variable("payload", "JSON", "the parsed JSON body", lambda t, now: {}, open=True),
        Variable("headers", "object",
                 "header names lower-cased; credentials and signatures removed",
                 lambda t, now: {}, open=True),
        Variable("query", "object", "each query parameter's first value; credentials removed",
                 lambda t, now: {}, open=True),
        Variable("path", "string", "the request's URL path", _path),
        Variable("method", "string", 'always "POST"', "POST"),
    ),
    test_input="webhook",
    runner=_runner,
    feed=_feed,
)
