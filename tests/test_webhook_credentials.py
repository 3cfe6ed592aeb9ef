"""Every credential a sender may send, in a header or the query string, is removed before
templates see `headers`/`query` (issue 9 item 10: `x-api-key`, `x-gitlab-token`,
`x-hub-signature` and `?token=` reached templates). Through the real webhook server."""

from __future__ import annotations

import http.client
import json
from collections.abc import Sequence
from urllib.parse import urlencode

import pytest

from emitter.daemon.front import Front
from emitter.daemon.listener import Listener
from emitter.firing import Firing
from emitter.problems import Location
from emitter.rules.model import Rule, WebhookTrigger
from emitter.ruletest.inputs import InputState, firings_for
from emitter.ruletest.model import Step, WebhookInput
from emitter.triggers.kinds.webhook import is_credential
from emitter.triggers.webhook import WebhookServer

CREDENTIAL_HEADERS = {
    "Authorization": "Bearer a", "Proxy-Authorization": "Basic b", "Cookie": "sid=c",
    "X-Emitter-Token": "d", "X-Api-Key": "e", "X-Gitlab-Token": "f",
    "X-Hub-Signature": "sha1=g", "X-Hub-Signature-256": "sha256=h", "X-Gitea-Signature": "i",
    "X-Slack-Signature": "v0=j", "Stripe-Signature": "t=k", "X-Shopify-Hmac-Sha256": "l",
    "DD-API-KEY": "m", "X-Auth-Token": "n", "X-Custom-Sig": "o", "X-Webhook-Secret": "p",
}
PLAIN_HEADERS = {"X-GitHub-Event": "push", "X-Request-Id": "42", "User-Agent": "hook/1",
                 "X-Gitlab-Event": "Push Hook", "X-Author": "bob"}
CREDENTIAL_QUERY = {"token": "q1", "access_token": "q2", "api_key": "q3", "apiKey": "q4",
                    "key": "q5", "sig": "q6", "signature": "q7", "secret": "q8",
                    "password": "q9", "auth": "q10", "X-Amz-Security-Token": "q11"}
PLAIN_QUERY = {"env": "prod", "author": "bob", "monkey": "1", "page": "2"}


def rule() -> Rule:
    return Rule(id="r", location=Location("r.yaml", 1, 1), event={},
                trigger=WebhookTrigger(path="/hooks/x", signature_header="X-Custom-Sig"))


@pytest.mark.parametrize("name", [*CREDENTIAL_HEADERS, *CREDENTIAL_QUERY])
def test_credential_names(name: str) -> None:
    assert is_credential(name) or name == "X-Custom-Sig"  # that one: the rule's own header


@pytest.mark.parametrize("name", [*PLAIN_HEADERS, *PLAIN_QUERY])
def test_plain_names(name: str) -> None:
    assert not is_credential(name)


def test_a_real_request_reaches_templates_without_credentials() -> None:
    fired: list[Firing] = []

    def dispatch(firings: Sequence[Firing]) -> None:
        fired.extend(firings)

    server = WebhookServer([rule()], dispatch, lambda r, m: None, environ={})
    server.start()
    front = Front(lambda: {"status": "ok"})
    front.webhook = server.handle
    listener = Listener(("127.0.0.1", 0), front.app)  # the daemon's own HTTP front
    listener.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", listener.address[1], timeout=10)
        query = urlencode({**CREDENTIAL_QUERY, **PLAIN_QUERY})
        conn.request("POST", f"/hooks/x?{query}", body=json.dumps({"a": 1}).encode(),
                     headers={**CREDENTIAL_HEADERS, **PLAIN_HEADERS,
                              "Content-Type": "application/json"})
        assert conn.getresponse().status == 202
        conn.close()
    finally:
        listener.stop()
        server.stop(2)
    (firing,) = fired
    headers, query = firing.variables["headers"], firing.variables["query"]
    assert {k.lower() for k in PLAIN_HEADERS} <= set(headers)
    assert not {k.lower() for k in CREDENTIAL_HEADERS} & set(headers), headers
    assert query == PLAIN_QUERY
    secrets = {*CREDENTIAL_HEADERS.values(), *CREDENTIAL_QUERY.values()}
    assert not [v for v in (*headers.values(), *query.values()) if v in secrets]


def test_emitter_test_removes_the_same_credentials() -> None:
    given = WebhookInput(body={"a": 1}, headers={**CREDENTIAL_HEADERS, **PLAIN_HEADERS},
                         query={**CREDENTIAL_QUERY, **PLAIN_QUERY})
    (firing,) = firings_for(rule(), Step(1.0, given, Location("t.yaml", 1, 1)), InputState())
    assert firing.variables["headers"] == {k.lower(): v for k, v in PLAIN_HEADERS.items()}
    assert firing.variables["query"] == PLAIN_QUERY
