"""Redeliveries through a real `emitter run` (subprocess, real HTTP, tests/intake.py as
Datadog): the same delivery id within the window makes one event, across a daemon restart
too (the ids are in the state directory); a signed request replayed past the tolerance is 401
with its reason in the log. Also the route's own bookkeeping (counted, busy, refused outbox)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from emitter.errors import OutboxFullError
from emitter.firing import Firing
from emitter.httpmsg import Request
from emitter.rules.loader import load_rules
from emitter.state.store import StateStore
from emitter.triggers.webhook import WebhookServer
from tests.intake import FakeIntake
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture
from tests.test_daemon import Daemon, free_port, rules_file, start
from tests.test_daemon import daemons as daemons  # noqa: F401 - the `daemons` fixture

SECRET = "gh-hook-secret-for-tests"
GITHUB_RULE = """\
  - id: github
    trigger:
      type: webhook
      path: /hooks/github
      auth: {preset: github, secret_env: GH_HOOK_SECRET}
    event: {title: "push {{ payload.n }}", text: x}
"""
SLACK_RULE = """\
  - id: slack
    trigger:
      type: webhook
      path: /hooks/slack
      auth: {preset: slack, secret_env: GH_HOOK_SECRET}
    event: {title: slack, text: x}
"""


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                        **headers})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def github_delivery(n: int, delivery: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"n": n}).encode()
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": f"sha256={mac}", "X-GitHub-Delivery": delivery}


@pytest.mark.slow
def test_a_redelivery_makes_one_event_across_a_restart(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon]) -> None:
    rules_file(tmp_path, GITHUB_RULE)
    port = free_port()
    env = {"GH_HOOK_SECRET": SECRET}
    first = start(daemons, tmp_path, intake, "--listen", f":{port}", env=env)
    assert post(port, "/hooks/github", *github_delivery(1, "d-1")) == (202, {"accepted": 1})
    assert post(port, "/hooks/github", *github_delivery(1, "d-1")) == (
        202, {"accepted": 0, "duplicates": 1})
    assert post(port, "/hooks/github", *github_delivery(2, "d-2"))[0] == 202
    intake.wait_for_events(2, timeout=15)
    assert first.stop() == 0

    second = start(daemons, tmp_path, intake, "--listen", f":{port}", env=env)
    assert post(port, "/hooks/github", *github_delivery(1, "d-1")) == (
        202, {"accepted": 0, "duplicates": 1})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    scraped = conn.getresponse().read().decode()
    conn.close()
    assert 'emitter_events_deduplicated_total{rule="github"} 1.0' in scraped, scraped
    assert post(port, "/hooks/github", *github_delivery(3, "d-3"))[0] == 202
    intake.wait_for_events(3, timeout=15)
    assert second.stop() == 0
    assert sorted(e["title"] for e in intake.events) == ["push 1", "push 2", "push 3"]


@pytest.mark.slow
def test_a_replay_past_the_tolerance_is_401_with_the_reason_logged(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon]) -> None:
    rules_file(tmp_path, SLACK_RULE)
    port = free_port()
    d = start(daemons, tmp_path, intake, "--listen", f":{port}", env={"GH_HOOK_SECRET": SECRET})
    body = b'{"type": "event_callback"}'
    stamp = str(int(time.time()) - 3600)
    mac = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    headers = {"X-Slack-Signature": f"v0={mac.hexdigest()}", "X-Slack-Request-Timestamp": stamp}
    assert post(port, "/hooks/slack", body, headers)[0] == 401
    line = d.wait_log(rule="slack")
    assert "outside the replay window" in line["msg"]
    # the stamp was made an hour back; a second may tick between making it and checking it
    assert re.search(r"\b360[01]s old", line["msg"]), line["msg"]
    assert SECRET not in "\n".join(d.raw)
    assert d.stop() == 0
    assert intake.events == []


# ---- the route itself -----------------------------------------------------------------------

def _server(tmp_path: Path, dispatch: Any, counted: list[tuple[str, str, int]],
            store: StateStore | None = None) -> WebhookServer:
    rules_file(tmp_path, GITHUB_RULE)
    rules = load_rules([str(tmp_path / "rules")]).rules
    server = WebhookServer(list(rules), dispatch, lambda r, m: None,
                           environ={"GH_HOOK_SECRET": SECRET}, store=store,
                           count=lambda *a: counted.append(a))
    server.start()
    return server


def _request(n: int, delivery: str) -> Request:
    body, headers = github_delivery(n, delivery)
    return Request("POST", "/hooks/github", {}, {k.lower(): v for k, v in headers.items()}, body)


def test_a_duplicate_is_counted(tmp_path: Path) -> None:
    fired: list[Firing] = []
    counted: list[tuple[str, str, int]] = []
    with StateStore(tmp_path / "state.sqlite3") as store:
        server = _server(tmp_path, fired.extend, counted, store)
        assert server.handle(_request(1, "x")).status == 202
        assert server.handle(_request(1, "x")).status == 202
    assert len(fired) == 1 and counted == [("github", "deduplicated", 1)]


def test_a_refused_outbox_leaves_the_delivery_id_free(tmp_path: Path) -> None:
    attempts: list[Sequence[Firing]] = []

    def full_once(firings: Sequence[Firing]) -> None:
        attempts.append(firings)
        if len(attempts) == 1:
            raise OutboxFullError("full")

    server = _server(tmp_path, full_once, [])
    assert server.handle(_request(1, "y")).status == 503
    assert server.handle(_request(1, "y")).status == 202  # the sender's retry fires
    assert len(attempts) == 2


def test_a_delivery_being_accepted_answers_503_to_its_twin(tmp_path: Path) -> None:
    twins: list[int] = []
    server: WebhookServer

    def dispatch(firings: Sequence[Firing]) -> None:
        if not twins:
            twins.append(server.handle(_request(1, "z")).status)  # arrives meanwhile

    server = _server(tmp_path, dispatch, [])
    assert server.handle(_request(1, "z")).status == 202
    assert twins == [503]
