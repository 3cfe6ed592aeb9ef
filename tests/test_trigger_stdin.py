"""The stdin trigger over a real pipe: objects fire every stdin rule, bad lines are reported
with their number, long lines are bounded, EOF ends it cleanly."""

from __future__ import annotations

import os
from collections.abc import Sequence

from emitter.errors import OutboxFullError
from emitter.problems import Location
from emitter.rules.model import Rule, StdinTrigger
from emitter.triggers.base import Firing
from emitter.triggers.stdin import StdinRunner


def rule(rule_id: str) -> Rule:
    return Rule(id=rule_id, location=Location("r.yaml", 1, 1), trigger=StdinTrigger(), event={})


def run(data: bytes, *, fail_first: int = 0, max_line: int = 1 << 20
        ) -> tuple[list[Firing], list[tuple[str | None, str]], StdinRunner]:
    read_fd, write_fd = os.pipe()
    fired: list[Firing] = []
    errors: list[tuple[str | None, str]] = []
    failures = [fail_first]

    def dispatch(firings: Sequence[Firing]) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OutboxFullError("full")
        fired.extend(firings)

    with os.fdopen(read_fd, "rb") as stream:
        runner = StdinRunner([rule("a"), rule("b")], dispatch,
                             lambda r, m: errors.append((r, m)), stream=stream,
                             max_line=max_line)
        runner.start()
        with os.fdopen(write_fd, "wb") as w:
            w.write(data)
        assert runner.done.wait(10)
        runner.stop(2)
    return fired, errors, runner


def test_objects_fire_every_rule_and_eof_ends_cleanly() -> None:
    fired, errors, runner = run(b'{"n": 1}\n\n{"n": 2, "s": "x"}\n')
    assert [(f.rule_id, f.variables["payload"]["n"]) for f in fired] == [
        ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert fired[0].trigger == "stdin"
    assert errors == []
    assert not runner.health().running


def test_malformed_lines_are_reported_with_their_number() -> None:
    fired, errors, _ = run(b'{"ok": 1}\nnot json\n[1, 2]\n\xff\xfe\n{"ok": 2}')
    assert [f.variables["payload"]["ok"] for f in fired if f.rule_id == "a"] == [1, 2]
    assert [m.split(":")[0] for _, m in errors] == ["stdin line 2", "stdin line 3",
                                                    "stdin line 4"]
    assert "expected an object" in errors[1][1]


def test_long_line_is_skipped_not_buffered() -> None:
    fired, errors, _ = run(b'{"x": "' + b"y" * 5000 + b'"}\n{"ok": 1}\n', max_line=1000)
    assert [f.variables["payload"] for f in fired if f.rule_id == "a"] == [{"ok": 1}]
    assert len(errors) == 1 and "longer than 1000 bytes" in errors[0][1]


def test_dispatch_error_retries_the_same_line() -> None:
    fired, errors, _ = run(b'{"n": 1}\n', fail_first=1)
    assert [f.variables["payload"]["n"] for f in fired] == [1, 1]
    assert len(errors) == 1 and "retrying" in errors[0][1]
