"""The stdin trigger over a real pipe: objects fire every stdin rule, bad lines are reported
with their number, long lines are bounded, EOF ends it cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from emitter.errors import OutboxFullError
from emitter.problems import Location
from emitter.rules.model import Rule, StdinTrigger
from emitter.triggers.base import Firing
from emitter.triggers.stdin import StdinRunner
from tests.intake import INTAKE_KEY, FakeIntake, intake_fixture  # noqa: F401


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


HUGE = b'{"n": ' + b"9" * 5000 + b"}\n"  # over Python's 4,300-digit int conversion limit
DEEP = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"


def test_huge_numbers_and_deep_nesting_are_skipped_and_the_reader_goes_on() -> None:
    """They ended the reader (issue 9 item 2): the daemon saw end of input and dropped the
    rest."""
    fired, errors, runner = run(b'{"n": 1}\n' + HUGE + DEEP + b'{"n": 2}\n')
    assert [f.variables["payload"]["n"] for f in fired if f.rule_id == "a"] == [1, 2]
    huge, deep = (m for _, m in errors)
    assert huge.startswith("stdin line 2: JSON value refused (") and "4300" in huge
    assert deep == "stdin line 3: JSON nested too deeply; skipped"
    assert runner.lines_skipped == 2 and runner.lines_read == 4
    assert runner.reached_eof and runner.health().firings == 4


def test_a_stop_is_not_an_end_of_input() -> None:
    from emitter.triggers.stdinlines import StdinLines
    from emitter.triggers.units import input_ended, stdin_unit

    read_fd, write_fd = os.pipe()
    fired: list[Firing] = []
    try:
        unit = stdin_unit([rule("a")], fired.extend, lambda r, m: None, StdinLines(read_fd))
        unit.start()
        os.write(write_fd, b'{"n": 1}\n')
        deadline = time.monotonic() + 10
        while not fired and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fired
        unit.stop(5)  # the input is still open: this is a stop, not its end
        assert unit.runner.done.is_set() and not input_ended(unit)
    finally:
        os.close(write_fd)
        os.close(read_fd)

    read_fd, write_fd = os.pipe()
    unit = stdin_unit([rule("a")], fired.extend, lambda r, m: None, StdinLines(read_fd))
    unit.start()
    os.write(write_fd, b'{"n": 2}\n')
    os.close(write_fd)
    assert unit.runner.done.wait(10) and input_ended(unit)
    unit.stop(5)
    os.close(read_fd)


def test_emitter_run_delivers_the_lines_after_a_bad_one(tmp_path: Path,
                                                        intake: FakeIntake) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("""version: 1
rules:
  - id: echo
    trigger: {type: stdin}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "e {{ payload.n }}", text: x}
""")
    env = {**os.environ, "DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY,
           "HOME": str(tmp_path)}
    lines = b'{"n": 1}\n' + HUGE + DEEP + b'{"n": 2}\n'
    proc = subprocess.run([sys.executable, "-m", "emitter", "run", str(rules), "--stdin",
                           "--state-dir", str(tmp_path / "s")],
                          input=lines, capture_output=True, env=env, timeout=60)
    intake.wait_for_events(2, timeout=30)
    assert sorted(e["title"] for e in intake.events) == ["e 1", "e 2"]
    err = proc.stderr.decode()
    assert "stdin line 2: JSON value refused" in err and "stdin line 3: JSON nested" in err
    assert "Traceback" not in err


def test_a_burst_of_waiting_lines_is_one_dispatch_in_order() -> None:
    """Lines already read when the reader gets to them go out in one dispatch (one durable
    commit), in order, at most MAX_BATCH lines at a time; a failed dispatch retries them all."""
    from emitter.triggers.stdin import MAX_BATCH
    from emitter.triggers.stdinlines import StdinLines

    read_fd, write_fd = os.pipe()
    calls: list[list[int]] = []
    failures = [1]

    def dispatch(firings: Sequence[Firing]) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OutboxFullError("full")
        calls.append([f.variables["payload"]["n"] for f in firings])

    n = MAX_BATCH + 100
    with os.fdopen(write_fd, "wb") as w:  # all written (and closed) before the reader starts
        w.write(b"".join(b'{"n": %d}\n' % i for i in range(n)))
    source = StdinLines(read_fd)
    runner = StdinRunner([rule("a")], dispatch, lambda r, m: None, stream=source.handle())  # type: ignore[arg-type]
    try:
        runner.start()
        assert runner.done.wait(20)
    finally:
        runner.stop(2)
        os.close(read_fd)
    assert [n for call in calls for n in call] == list(range(n))
    assert all(len(call) <= MAX_BATCH for call in calls)
    assert len(calls) < n // 10  # bursts, not one dispatch per line
