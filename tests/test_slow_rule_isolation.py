"""Issue 9 item 4 at the daemon level: one slow rule never holds the others up. A real
`emitter run` has a file rule and a webhook rule whose template loops until its 100 ms budget
runs out on every firing; while many signed webhook requests hit the slow rule at once, lines
appended to the watched file still reach the loopback intake, and every slow firing is
counted invalid (over its time budget), never sent. Only conditions are awaited, with generous
timeouts; nothing here asserts how long anything took."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path

import pytest

from tests.intake import FakeIntake, intake_fixture  # noqa: F401
from tests.test_daemon import FILE_RULE, Daemon, _post, append, daemons, free_port, rules_file
from tests.test_daemon import start as start_daemon

pytestmark = pytest.mark.slow
__all__ = ["daemons"]  # the fixture, imported for pytest

SLOW_RULE = """\
  - id: slow
    trigger: {type: webhook, path: /hooks/slow, hmac_secret_env: HOOK_SECRET}
    budget: {time: 100ms}
    params:
      payload: {type: object, example: {steps: 1}}
    event:
      title: slow
      text: >-
        {% for i in range(payload.steps) %}{% for j in range(1000) %}{% endfor %}{% endfor %}done
"""
SECRET = "slow-rule-hook-secret-for-tests"
REQUESTS = 40
WAIT = 120  # seconds: a hang guard, not a measurement


def _signed_post(url: str) -> int:
    body = json.dumps({"steps": 100_000}).encode()  # 10^8 loop steps: only the budget ends it
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return _post(url, body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})


def test_a_rule_over_its_budget_never_holds_up_another_rules_trigger(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    rules_file(tmp_path, FILE_RULE.format(path=log) + "\n" + SLOW_RULE)
    port = free_port()
    daemon = start_daemon(daemons, tmp_path, intake, "--listen", f"127.0.0.1:{port}",
                          env={"HOOK_SECRET": SECRET})
    url = f"http://127.0.0.1:{port}/hooks/slow"

    statuses: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        status = _signed_post(url)
        with lock:
            statuses.append(status)

    senders = [threading.Thread(target=hit, daemon=True) for _ in range(REQUESTS)]
    for sender in senders:
        sender.start()
    # The flood is under way once the slow rule's first firing has run out of time.
    daemon.wait_log(timeout=WAIT, msg="event", rule="slow", outcome="invalid")
    lines = [f"ERROR svc{i}: written during the flood" for i in range(5)]
    append(log, "".join(line + "\n" for line in lines))
    intake.wait_for_events(len(lines), timeout=WAIT)
    assert sorted(e["title"] for e in intake.events) == sorted(
        line[len("ERROR "):] for line in lines)

    for sender in senders:
        sender.join(WAIT)
    assert not any(sender.is_alive() for sender in senders)
    assert len(statuses) == REQUESTS  # every request got an answer (none dropped or hung)
    # Each slow firing ends at its budget and is counted invalid; none is sent.
    invalid = [line for line in daemon.lines
               if line.get("msg") == "event" and line.get("rule") == "slow"
               and line.get("outcome") == "invalid"]
    assert len(invalid) == REQUESTS, statuses
    assert all("time budget of 100 ms" in line.get("error", "") for line in invalid), invalid[:2]
    assert not any(e["title"] == "slow" for e in intake.events)
    assert daemon.stop() == 0
