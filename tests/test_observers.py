"""Observers are explicit: `emitter test` and the daemon hear of invalid events and settled
deliveries through callbacks given to the Pipeline and the Sender, not from log records."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.delivery.outbox import Outbox, Row
from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
from emitter.delivery.retry import RetryPolicy
from emitter.delivery.sender import Sender
from emitter.firing import Firing
from emitter.problems import Problem
from emitter.rules.loader import load_rules
from emitter.ruletest.model import Status
from emitter.ruletest.runner import run_test_file
from emitter.settings import Settings
from emitter.sinks.base import DeliveryResult, Outcome
from emitter.sinks.registry import sink_factory
from emitter.templates.compiler import compile_rules
from tests.intake import INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture

RULES = """\
version: 1
rules:
  - id: long
    trigger: {type: manual}
    params:
      n: {type: integer, example: 3}
    event: {title: "{{ 'x' * n }}", text: body}
"""

TESTS = """\
version: 1
rule_files: [rules.yaml]
now: "2026-01-01T00:00:00Z"
tests:
  - name: a title over the limit is a problem
    rule: long
    params: {n: 150}
    expect: {error: "title"}
"""


@pytest.fixture
def no_logging() -> Iterator[None]:
    logging.disable(logging.CRITICAL)  # whatever logging does, the observers still hear
    yield
    logging.disable(logging.NOTSET)


def test_rule_test_hears_of_invalid_events_without_logging(tmp_path: Path,
                                                           no_logging: None) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "long.test.yaml").write_text(TESTS)
    result = run_test_file(str(tmp_path / "long.test.yaml"))
    assert not result.problems, result.problems
    (case,) = result.cases
    assert case.status is Status.PASSED, case.message


def test_pipeline_tells_its_observer(tmp_path: Path, no_logging: None) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    compiled, _ = compile_rules(load_rules([str(tmp_path / "rules.yaml")]).rules)
    heard: list[tuple[str, str, Problem]] = []

    class Box:
        def enqueue(self, items: object) -> None:
            pass

    class Counts:
        def inc(self, rule_id: str, name: str) -> None:
            pass

        def add(self, counts: object) -> None:
            pass

    pipe = Pipeline(RuleSet.of(compiled), Box(), metrics=Counts(),  # type: ignore[arg-type]
                    context=context_factory("h", (), {}),
                    on_invalid=lambda r, t, p: heard.append((r, t, p)), log_events=False)
    pipe.dispatch([Firing("long", "manual", {"n": 150}, 1_767_225_600.0)])
    ((rule_id, trigger, problem),) = heard
    assert (rule_id, trigger, problem.json_path) == ("long", "manual", "$.title")


def test_sender_tells_its_observer(tmp_path: Path, intake: FakeIntake) -> None:
    intake.enqueue(Fault.error(503))
    settled: list[tuple[int, Outcome]] = []

    def observe(row: Row, result: DeliveryResult) -> None:
        settled.append((row.id, result.outcome))

    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})
    with Outbox.in_dir(tmp_path) as outbox:
        (event_id,) = outbox.enqueue([("r", b'{"title":"t","text":"x"}')])
        sender = Sender(outbox, sink_factory("datadog", settings, timeout=5), workers=1,
                        policy=RetryPolicy(max_attempts=100, base=0.01, cap=0.02),
                        on_settled=observe)
        sender.start()
        try:
            assert sender.drain(timeout=30)
        finally:
            sender.stop(5)
    assert settled == [(event_id, Outcome.RETRY), (event_id, Outcome.DELIVERED)]
