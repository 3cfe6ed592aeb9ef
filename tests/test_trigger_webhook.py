"""The webhook server on a real loopback socket: auth (token, HMAC), limits, errors, health,
metrics, dispatch-before-202, slow clients, port in use."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from emitter.daemon.front import Front, Ports
from emitter.daemon.listener import Listener
from emitter.errors import ConfigError, EmitterError, OutboxFullError
from emitter.httpmsg import Limits
from emitter.problems import Location
from emitter.rules.model import Rule, WebhookTrigger
from emitter.triggers.base import Firing
from emitter.triggers.webhook import WebhookServer

SECRET = "s3cret-hmac"
TOKEN = "t0ken"
ENV = {"HOOK_SECRET": SECRET, "HOOK_TOKEN": TOKEN}


def rule(rule_id: str, path: str, **kw: Any) -> Rule:
    return Rule(id=rule_id, location=Location("r.yaml", 1, 1),
                trigger=WebhookTrigger(path=path, **kw), event={})


RULES = [
    rule("gh", "/hooks/github", hmac_secret_env="HOOK_SECRET"),
    rule("am", "/hooks/am", token_env="HOOK_TOKEN"),
    rule("am2", "/hooks/am", token_env="HOOK_TOKEN"),
    rule("open", "/hooks/open"),
    rule("broken", "/hooks/broken", token_env="UNSET_VAR"),
]


class Hook:
    """The webhook routes behind the daemon's front, on a real loopback listener."""

    def __init__(self, rules: list[Rule], limits: Limits | None = None,
                 metrics: Any = None) -> None:
        self.fired: list[Firing] = []
        self.errors: list[tuple[str | None, str]] = []
        self.behaviour: Callable[[Sequence[Firing]], None] | None = None
        self.server = WebhookServer(rules, self.dispatch, lambda r, m: self.errors.append((r, m)),
                                    environ=ENV)
        self.server.start()
        self.front = Front(lambda: {"status": "ok"}, metrics)
        self.front.webhook = self.server.handle
        self.listener = Listener(("127.0.0.1", 0), self.front.app, limits)
        self.listener.start()
        self.port = self.listener.address[1]

    def close(self) -> None:
        self.listener.stop()
        self.server.stop(2)

    def dispatch(self, firings: Sequence[Firing]) -> None:
        if self.behaviour is not None:
            self.behaviour(firings)
        self.fired.extend(firings)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    limits = Limits(max_body=1000, header_timeout=0.5, body_timeout=0.5, idle_timeout=0.5)
    h = Hook(RULES, limits, metrics=lambda: (b"emitter_up 1\n", "text/plain; version=0.0.4"))
    yield h
    h.close()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_hmac_good_fires_and_hides_signature(hook: Hook) -> None:
    body = b'{"action": "opened", "n": 1}'
    status, _, data = hook.request("POST", "/hooks/github?env=prod&x=1&x=2", body, {
        "X-Hub-Signature-256": sign(body), "Content-Type": "application/json",
        "X-GitHub-Event": "issues"})
    assert (status, json.loads(data)) == (202, {"accepted": 1})
    (f,) = hook.fired
    assert f.rule_id == "gh" and f.trigger == "webhook"
    assert f.variables["payload"] == {"action": "opened", "n": 1}
    assert f.variables["query"] == {"env": "prod", "x": "1"}
    assert f.variables["headers"]["x-github-event"] == "issues"
    assert "x-hub-signature-256" not in f.variables["headers"]


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, sign(b"other body"),
                                       sign(b'{"a": 1}', "wrong-secret"), "garbage"])
def test_hmac_bad_or_missing_is_401_and_no_event(hook: Hook, signature: str | None) -> None:
    headers = {"X-Hub-Signature-256": signature} if signature else {}
    status, _, data = hook.request("POST", "/hooks/github", b'{"a": 1}', headers)
    assert status == 401 and json.loads(data)["error"] == "unauthorized"
    assert hook.fired == []


def test_token_auth_both_headers_and_shared_path(hook: Hook) -> None:
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"X-Emitter-Token": TOKEN}):
        status, _, data = hook.request("POST", "/hooks/am", b"[1, 2]", headers)
        assert (status, json.loads(data)) == (202, {"accepted": 2})
    assert [f.rule_id for f in hook.fired] == ["am", "am2", "am", "am2"]
    assert all("authorization" not in f.variables["headers"] and
               "x-emitter-token" not in f.variables["headers"] for f in hook.fired)
    for headers in ({"Authorization": "Bearer nope"}, {}, {"Authorization": TOKEN}):
        assert hook.request("POST", "/hooks/am", b"{}", headers)[0] == 401
    assert len(hook.fired) == 4


def test_oversized_is_413_before_reading(hook: Hook) -> None:
    assert hook.request("POST", "/hooks/open", b"x" * 2000)[0] == 413
    # Headers announcing 10 MB and no body at all: answered at once, not after a read.
    with socket.create_connection(("127.0.0.1", hook.port), timeout=5) as s:
        s.sendall(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        started = time.monotonic()
        answer = s.recv(1000)
        assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 0.4
    assert hook.fired == []


def test_chunked_or_no_length_is_411(hook: Hook) -> None:
    with socket.create_connection(("127.0.0.1", hook.port), timeout=5) as s:
        s.sendall(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"2\r\n{}\r\n0\r\n\r\n")
        assert s.recv(1000).startswith(b"HTTP/1.1 411")


def test_malformed_json_is_400_with_json_error(hook: Hook) -> None:
    status, headers, data = hook.request("POST", "/hooks/open", b'{"a": ')
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(data)["error"].startswith("malformed JSON")
    assert hook.request("POST", "/hooks/open", b"\xff\xfe")[0] == 400
    assert hook.fired == []


def test_unknown_path_404_wrong_method_405(hook: Hook) -> None:
    assert hook.request("POST", "/nope", b"{}")[0] == 404
    assert hook.request("GET", "/nope")[0] == 404
    status, headers, _ = hook.request("GET", "/hooks/open")
    assert status == 405 and headers["allow"] == "POST"
    assert hook.request("PUT", "/hooks/open", b"{}")[0] == 405


def test_healthz_and_metrics(hook: Hook) -> None:
    status, _, data = hook.request("GET", "/healthz")
    assert status == 200 and json.loads(data)["status"] == "ok"
    status, headers, data = hook.request("GET", "/metrics")
    assert status == 200 and data == b"emitter_up 1\n"
    assert headers["content-type"].startswith("text/plain")


def test_unset_env_reported_and_503_unauthenticated_warned(hook: Hook) -> None:
    assert any(r == "broken" and "UNSET_VAR" in m for r, m in hook.errors)
    assert any(r == "open" and "UNAUTHENTICATED" in m for r, m in hook.errors)
    assert hook.request("POST", "/hooks/broken", b"{}", {"X-Emitter-Token": "x"})[0] == 503
    assert hook.request("POST", "/hooks/open", b"{}")[0] == 202
    assert all(SECRET not in m and TOKEN not in m for _, m in hook.errors)


def test_outbox_full_503_other_errors_500(hook: Hook) -> None:
    def full(_: Sequence[Firing]) -> None:
        raise OutboxFullError("outbox full")

    hook.behaviour = full
    status, headers, _ = hook.request("POST", "/hooks/open", b"{}")
    assert status == 503 and headers["retry-after"].isdigit()

    def broken(_: Sequence[Firing]) -> None:
        raise EmitterError("disk on fire: /secret/path")

    hook.behaviour = broken
    status, _, data = hook.request("POST", "/hooks/open", b"{}")
    assert status == 500 and b"/secret/path" not in data
    assert hook.fired == []


def test_202_only_after_dispatch_returned(hook: Hook) -> None:
    release = threading.Event()
    hook.behaviour = lambda _: release.wait(5)  # type: ignore[assignment,return-value]
    answers: list[int] = []
    t = threading.Thread(target=lambda: answers.append(hook.request("POST", "/hooks/open",
                                                                    b"{}")[0]))
    t.start()
    time.sleep(0.3)
    assert answers == []  # still waiting for the "commit"
    release.set()
    t.join(5)
    assert answers == [202]


def test_keep_alive_serves_many_requests_on_one_connection(hook: Hook) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=5)
    try:
        for i in range(5):
            conn.request("POST", "/hooks/open", body=json.dumps({"i": i}).encode())
            resp = conn.getresponse()
            assert resp.status == 202
            resp.read()
    finally:
        conn.close()
    assert [f.variables["payload"]["i"] for f in hook.fired] == [0, 1, 2, 3, 4]


def test_slow_client_gets_408_after_body_timeout(hook: Hook) -> None:
    with socket.create_connection(("127.0.0.1", hook.port), timeout=10) as s:
        s.sendall(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
        answer = s.recv(1000)
        assert answer.startswith(b"HTTP/1.1 408") and b"Connection: close" in answer
        assert s.recv(1000) == b""  # and the connection is closed
    assert hook.fired == []


def test_port_in_use_is_a_config_error_naming_the_option() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = Ports(Front(lambda: {"status": "ok"}))
        with pytest.raises(ConfigError, match=f"--listen 127.0.0.1:{port}: cannot listen"):
            ports.open(f"127.0.0.1:{port}", "--listen")
        ports.close()
