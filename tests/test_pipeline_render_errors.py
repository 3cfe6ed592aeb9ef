"""A firing whose render fails (foreach over a missing key) is an error of that firing only:
counted `invalid`, logged with the rule id; the other rules on the trigger still fire, the
webhook sender gets a 2xx, a stdin line is not retried (issue 8 defect 2, pipeline part)."""

from __future__ import annotations

import http.client
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.counters import Metrics
from emitter.delivery.outbox import Outbox
from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
from emitter.rules.loader import load_rules
from emitter.templates.compiler import compile_rules
from emitter.triggers.stdin import StdinRunner
from tests.intake import FakeIntake
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture
from tests.test_daemon import Daemon, free_port, rules_file, start
from tests.test_daemon import daemons as daemons  # noqa: F401 - the `daemons` fixture

RULES = """\
version: 1
rules:
  - id: alerts
    trigger: {type: manual}
    params:
      payload: {type: object, example: {alerts: []}}
    foreach: "payload.alerts"
    event: {title: "{{ item.name }}", text: x}
  - id: lines
    trigger: {type: stdin}
    foreach: "payload.things"
    event: {title: "{{ item }}", text: x}
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Pipeline, Outbox, Metrics]]:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    loaded = load_rules([str(path)])
    assert loaded.ok, [p.format_text() for p in loaded.problems]
    compiled, problems = compile_rules(loaded.rules)
    assert not [p for p in problems if p.is_error]
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    metrics = Metrics()
    pipe = Pipeline(RuleSet.of(compiled), outbox, metrics=metrics,
                    context=context_factory("h", (), {}))
    yield pipe, outbox, metrics
    outbox.close()


def _titles(outbox: Outbox) -> list[str]:
    return [json.loads(r.body)["title"] for r in outbox.list_events()]


def test_webhook_body_without_the_foreach_key_gets_2xx(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon]) -> None:
    rules_file(tmp_path, """\
  - id: alerts
    trigger: {type: webhook, path: /hooks/am}
    params:
      payload: {type: object, example: {status: firing, alerts: [{name: A}]}}
    foreach: "payload.alerts"
    event: {title: "{{ item.name }}", text: x}
  - id: plain
    trigger: {type: webhook, path: /hooks/am}
    event: {title: "got {{ payload.status }}", text: x}
""")
    port = free_port()
    d = start(daemons, tmp_path, intake, "--listen", f"127.0.0.1:{port}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/hooks/am", body=b'{"status": "firing"}',
                 headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    assert 200 <= answer.status < 300, answer.status  # never a 500
    invalid = d.wait_log(outcome="invalid", rule="alerts")
    assert "alerts" in str(invalid.get("error"))
    intake.wait_for_events(1, timeout=15)  # the other rule on the path still fired
    assert [e["title"] for e in intake.events] == ["got firing"]
    assert d.stop() == 0


def test_stdin_line_without_the_foreach_key_is_not_retried(
        setup: tuple[Pipeline, Outbox, Metrics]) -> None:
    pipe, outbox, metrics = setup
    stream = io.BytesIO(b'{"nothing": 1}\n{"things": ["a", "b"]}\n')
    errors: list[tuple[str | None, str]] = []
    runner = StdinRunner([pipe.ruleset.rules["lines"]], pipe.dispatch,
                         lambda r, m: errors.append((r, m)), stream=stream)
    runner.start()
    try:
        assert runner.done.wait(10)
    finally:
        runner.stop(2)
    assert _titles(outbox) == ["a", "b"]
    assert metrics.get("lines", "invalid") == 1
    assert metrics.get("lines", "fired") == 2  # each line once: no retry loop
    assert not errors, errors


def test_invalid_firing_is_logged_with_the_rule_id(
        setup: tuple[Pipeline, Outbox, Metrics], caplog: pytest.LogCaptureFixture) -> None:
    from emitter.firing import Firing

    pipe, _, _ = setup
    with caplog.at_level("WARNING", logger="emitter.event"):
        pipe.dispatch([Firing("alerts", "webhook", {"payload": {}}, time.time())])
    invalid = [r for r in caplog.records if getattr(r, "outcome", None) == "invalid"]
    assert invalid and getattr(invalid[0], "rule", None) == "alerts"
    assert "alerts" in str(getattr(invalid[0], "error", ""))  # names the missing key
