"""Webhook authentication per preset and scheme, through the daemon's real HTTP front: each
sender's request is signed here by the sender's documented algorithm (written from its docs,
independently of emitter.triggers.auth), accepted; missing, wrong or replayed ones get 401 and
fire nothing; the credential never reaches `headers`/`query`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from emitter.daemon.front import Front
from emitter.daemon.listener import Listener
from emitter.firing import Firing
from emitter.rules.loader import load_rules
from emitter.rules.model import WebhookTrigger
from emitter.rules.webhookauth import AuthScheme
from emitter.triggers.auth.verify import Verifier
from emitter.triggers.webhook import WebhookServer

SECRET, OLD = "s3cret-new", "s3cret-old"
BODY = json.dumps({"event": {"id": "01ABC"}, "status": "firing", "alerts": []}).encode()
Signer = Callable[[bytes, str, float], dict[str, str]]


def _hex(key: str, message: bytes, algo: Any = hashlib.sha256) -> str:
    return hmac.new(key.encode(), message, algo).hexdigest()


def github(body: bytes, secret: str, now: float) -> dict[str, str]:
    # docs.github.com, validating webhook deliveries: sha256=<hex HMAC-SHA256(body)>
    return {"X-Hub-Signature-256": "sha256=" + _hex(secret, body),
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}


def gitlab(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {"X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8"}


def slack(body: bytes, secret: str, now: float) -> dict[str, str]:
    stamp = str(int(now))
    base = f"v0:{stamp}:".encode() + body
    return {"X-Slack-Signature": "v0=" + _hex(secret, base),
            "X-Slack-Request-Timestamp": stamp}


def alertmanager(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def grafana(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {"X-Grafana-Alerting-Signature": _hex(secret, body)}


def grafana_timestamped(body: bytes, secret: str, now: float) -> dict[str, str]:
    stamp = str(int(now))
    return {"X-Grafana-Alerting-Signature": _hex(secret, f"{stamp}:".encode() + body),
            "X-Grafana-Alerting-Timestamp": stamp}


def sentry(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {"Sentry-Hook-Signature": _hex(secret, body), "Request-ID": "a1b2c3",
            "Sentry-Hook-Resource": "issue"}


def pagerduty(body: bytes, secret: str, now: float) -> dict[str, str]:
    # two signatures while a secret rotates: one made with some other key, one with ours
    return {"X-PagerDuty-Signature": f"v1={_hex('unrelated', body)},v1={_hex(secret, body)}"}


def basic(body: bytes, secret: str, now: float) -> dict[str, str]:
    token = base64.b64encode(f"grafana:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def hmac_b64_sha512(body: bytes, secret: str, now: float) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha512).digest()
    return {"X-Sig": base64.b64encode(mac).decode()}


def query_token(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {}


CASES: dict[str, tuple[str, Signer, str | None]] = {
    # name: (auth block, signer, the header that carries the credential)
    "github": ("{preset: github, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}", github,
               "x-hub-signature-256"),
    "gitlab": ("{preset: gitlab, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}", gitlab,
               "x-gitlab-token"),
    "slack": ("{preset: slack, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}", slack,
              "x-slack-signature"),
    "alertmanager": ("{preset: alertmanager, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}",
                     alertmanager, "authorization"),
    "grafana": ("{preset: grafana, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}", grafana,
                "x-grafana-alerting-signature"),
    "grafana_ts": ("{preset: grafana, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD], "
                   "timestamp_header: X-Grafana-Alerting-Timestamp}", grafana_timestamped,
                   "x-grafana-alerting-signature"),
    "sentry": ("{preset: sentry, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}", sentry,
               "sentry-hook-signature"),
    "pagerduty": ("{preset: pagerduty, secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}", pagerduty,
                  "x-pagerduty-signature"),
    "basic": ("{scheme: basic, username_env: HOOK_USER, secret_env: [HOOK_SECRET, "
              "HOOK_SECRET_OLD]}", basic, "authorization"),
    "hmac_b64": ("{scheme: hmac, header: X-Sig, algorithm: sha512, encoding: base64, "
                 "secret_env: [HOOK_SECRET, HOOK_SECRET_OLD]}", hmac_b64_sha512, "x-sig"),
}
ENV = {"HOOK_SECRET": SECRET, "HOOK_SECRET_OLD": OLD, "HOOK_USER": "grafana"}
TIMESTAMPED = ("slack", "grafana_ts")


class Served:
    def __init__(self, rules_yaml: str, tmp_path: Path, environ: Mapping[str, str] = ENV):
        path = tmp_path / "hooks.yaml"
        path.write_text(rules_yaml, encoding="utf-8")
        result = load_rules([str(path)])
        assert not [p for p in result.problems if p.is_error], result.problems
        self.fired: list[Firing] = []
        self.server = WebhookServer(list(result.rules), self.fired.extend, lambda r, m: None,
                                    environ=environ)
        self.server.start()
        front = Front(lambda: {"status": "ok"})
        front.webhook = self.server.handle
        self.listener = Listener(("127.0.0.1", 0), front.app)
        self.listener.start()

    def post(self, headers: Mapping[str, str], body: bytes = BODY,
             target: str = "/hooks/x") -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.listener.address[1], timeout=10)
        try:
            conn.request("POST", target, body=body,
                         headers={"Content-Type": "application/json", **headers})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.stop()
        self.server.stop(2)


def rule_yaml(auth: str, extra: str = "") -> str:
    return ("version: 1\nrules:\n  - id: r\n    trigger:\n      type: webhook\n"
            f"      path: /hooks/x\n      auth: {auth}\n{extra}"
            "    event: {title: t, text: x}\n")


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Served]]:
    served = Served(rule_yaml(CASES[request.param][0], "      dedup: false\n"), tmp_path)
    yield request.param, served
    served.close()


def test_accepted_with_the_senders_signature(case: tuple[str, Served]) -> None:
    name, served = case
    _, signer, credential = CASES[name]
    status, answer = served.post(signer(BODY, SECRET, time.time()))
    assert (status, answer) == (202, {"accepted": 1})
    (firing,) = served.fired
    assert credential not in firing.variables["headers"]
    assert SECRET not in json.dumps(firing.variables)


def test_the_old_secret_works_during_a_rotation(case: tuple[str, Served]) -> None:
    name, served = case
    assert served.post(CASES[name][1](BODY, OLD, time.time()))[0] == 202


def test_refused_without_credentials(case: tuple[str, Served]) -> None:
    _, served = case
    assert served.post({})[0] == 401
    assert served.fired == []


def test_refused_with_a_wrong_secret(case: tuple[str, Served]) -> None:
    name, served = case
    assert served.post(CASES[name][1](BODY, "not-the-secret", time.time()))[0] == 401
    assert served.fired == []


def test_refused_when_the_body_was_changed(case: tuple[str, Served]) -> None:
    name, served = case
    headers = CASES[name][1](BODY, SECRET, time.time())
    status = served.post(headers, body=BODY.replace(b"firing", b"resolved"))[0]
    if name not in ("gitlab", "alertmanager", "basic"):  # the signed ones
        assert status == 401 and served.fired == []
    else:  # a token does not cover the body
        assert status == 202


@pytest.mark.parametrize("name", TIMESTAMPED)
@pytest.mark.parametrize("age", [600.0, -600.0])
def test_refused_outside_the_replay_window(name: str, age: float, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    served = Served(rule_yaml(CASES[name][0]), tmp_path)
    try:
        with caplog.at_level("WARNING", logger="emitter.triggers.webhook"):
            assert served.post(CASES[name][1](BODY, SECRET, time.time() - age))[0] == 401
        assert served.fired == []
        assert "outside the replay window" in caplog.text
        assert SECRET not in caplog.text
    finally:
        served.close()


def test_github_published_test_vector() -> None:
    # ../shared/fixtures/webhooks/README.md: GitHub's documented example
    scheme = AuthScheme("hmac", ("S",), header="X-Hub-Signature-256", prefix="sha256=")
    verifier = Verifier(scheme, {"S": "It's a Secret to Everybody"})
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {"x-hub-signature-256": signature}
    assert verifier.check(headers, {}, b"Hello, World!", time.time()) is None
    assert verifier.check(headers, {}, b"Hello, World?", time.time()) is not None


def test_a_token_in_the_query_string_is_checked_and_hidden(tmp_path: Path) -> None:
    served = Served(rule_yaml("{scheme: header, query: hook_key, secret_env: HOOK_SECRET}"),
                    tmp_path)
    try:
        assert served.post({}, target="/hooks/x?hook_key=nope&env=prod")[0] == 401
        assert served.post({}, target=f"/hooks/x?hook_key={SECRET}&env=prod")[0] == 202
        (firing,) = served.fired
        assert firing.variables["query"] == {"env": "prod"}
    finally:
        served.close()


@pytest.mark.parametrize(("trigger", "headers"), [
    ("token_env: HOOK_SECRET", {"Authorization": f"Bearer {SECRET}"}),
    ("token_env: HOOK_SECRET", {"X-Emitter-Token": SECRET}),
    ("hmac_secret_env: HOOK_SECRET", github(BODY, SECRET, 0)),
    ("{hmac_secret_env: HOOK_SECRET, signature_header: X-My-Sig}",
     {"X-My-Sig": "SHA256=" + _hex(SECRET, BODY).upper()}),
])
def test_version_1_shorthands_work_unchanged(trigger: str, headers: dict[str, str],
                                             tmp_path: Path) -> None:
    line = (f"      {trigger}\n" if not trigger.startswith("{") else
            "".join(f"      {part.strip()}\n" for part in trigger.strip("{}").split(",")))
    text = ("version: 1\nrules:\n  - id: r\n    trigger:\n      type: webhook\n"
            f"      path: /hooks/x\n{line}    event: {{title: t, text: x}}\n")
    served = Served(text, tmp_path)
    try:
        assert served.post({})[0] == 401
        assert served.post(headers)[0] == 202
        (firing,) = served.fired
        credential = next(iter(headers)).lower()  # each case's first header carries it
        assert credential not in firing.variables["headers"]
    finally:
        served.close()


def test_an_unset_secret_variable_answers_503(tmp_path: Path) -> None:
    served = Served(rule_yaml("{preset: gitlab, secret_env: NOT_SET_ANYWHERE}"), tmp_path,
                    environ={})
    try:
        assert served.post(gitlab(BODY, "x", 0))[0] == 503
        assert served.fired == []
    finally:
        served.close()


def test_trigger_records_name_every_secret_variable(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(rule_yaml(CASES["basic"][0]), encoding="utf-8")
    (rule,) = load_rules([str(tmp_path / "r.yaml")]).rules
    assert isinstance(rule.trigger, WebhookTrigger)
    assert set(rule.trigger.secret_envs) == {"HOOK_SECRET", "HOOK_SECRET_OLD", "HOOK_USER"}


def test_the_pagerduty_preset_dedups_on_the_payloads_event_id(tmp_path: Path) -> None:
    served = Served(rule_yaml(CASES["pagerduty"][0]), tmp_path)  # the preset's own dedup
    try:
        headers = pagerduty(BODY, SECRET, time.time())
        assert served.post(headers) == (202, {"accepted": 1})
        assert served.post(headers) == (202, {"accepted": 0, "duplicates": 1})
        other = BODY.replace(b"01ABC", b"01ABD")
        assert served.post(pagerduty(other, SECRET, time.time()), body=other)[1] == {
            "accepted": 1}
    finally:
        served.close()


def test_the_daemon_log_masks_every_schemes_secrets(tmp_path: Path) -> None:
    """The log filter learns the secrets of `auth.secret_env` (a rotation list included) and
    of the version-1 shorthands, not only `token_env`/`hmac_secret_env`."""
    from emitter.daemon.front import webhook_secrets
    from emitter.rules.loader import load_rules as _load
    from emitter.templates.compiler import compile_rules

    path = tmp_path / "r.yaml"
    path.write_text(
        "version: 1\nrules:\n"
        "  - id: am\n    trigger:\n      type: webhook\n      path: /am\n"
        "      auth: {preset: alertmanager, secret_env: [AM_OLD, AM_NEW]}\n"
        "    event: {title: t, text: x}\n"
        "  - id: v1\n    trigger: {type: webhook, path: /v1, token_env: V1_TOKEN}\n"
        "    event: {title: t, text: x}\n")
    loaded = _load([str(path)])
    assert loaded.ok, loaded.problems
    compiled, _ = compile_rules(loaded.rules)
    environ = {"AM_OLD": "old-secret-value", "AM_NEW": "new-secret-value",
               "V1_TOKEN": "v1-token-value"}
    assert sorted(webhook_secrets(compiled, environ)) == [
        "new-secret-value", "old-secret-value", "v1-token-value"]
