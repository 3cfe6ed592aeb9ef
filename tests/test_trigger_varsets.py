"""For every trigger type, the variable names `validate` accepts, the names the real runner
gives at run time and the names `emitter test` gives are one set (issue 8: they had drifted).

Run time is the real thing: a schedule tick, a line appended to a real file, a real command,
a real HTTP request to the webhook server, a line through a real pipe.
"""

from __future__ import annotations

import http.client
import json
import keyword
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emitter.firing import Firing
from emitter.problems import Location
from emitter.rules.loader import load_rules
from emitter.rules.model import Rule
from emitter.ruletest.inputs import InputState, firings_for
from emitter.ruletest.model import (
    CommandInput,
    CommandResult,
    Input,
    LinesInput,
    ParamsInput,
    ScheduleInput,
    StdinInput,
    Step,
    WebhookInput,
)
from emitter.state.store import StateStore
from emitter.validate.pipeline import validate_paths

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
NOT_GIVEN = "zz_not_given"
# Names the render context sets itself (a variable of that name is shadowed) and Jinja words.
RESERVED = {"rule", "now", "hostname", "env", "item", "and", "or", "not", "in", "is", "if",
            "else", "true", "false", "none", "True", "False", "None", "loop", "self"}

TRIGGERS: dict[str, str] = {
    "manual": "{type: manual}",
    "schedule": "{type: schedule, every: 60s, timezone: Europe/Paris}",
    "file": "{type: file, path: LOG, match: 'ERROR (?P<component>\\w+) (?P<detail>.*)', "
            "from_beginning: true}",
    "webhook": "{type: webhook, path: /hooks/x}",
    "command": "{type: command, command: ['sh', '-c', 'echo out; exit 3'], every: 1h}",
    "stdin": "{type: stdin}",
}


def rule_file(tmp: Path, trigger: str, names: Sequence[str], log: Path) -> Path:
    """A rule whose text uses every name in `names`."""
    text = " ".join(f"{{{{ {n} | string }}}}" for n in names) or "x"
    params = "    params: {n: {type: integer, example: 1}}\n" if "manual" in trigger else ""
    path = tmp / "r.yaml"
    path.write_text("version: 1\nrules:\n  - id: r\n"
                    f"    trigger: {trigger.replace('LOG', str(log))}\n{params}"
                    f"    event: {{title: t, text: {json.dumps(text)}}}\n", encoding="utf-8")
    return path


def load(path: Path) -> Rule:
    loaded = load_rules([str(path)])
    assert not [p for p in loaded.problems if p.is_error], loaded.problems
    (rule,) = loaded.rules
    return rule


def validate_accepts(tmp: Path, trigger: str, names: Sequence[str], log: Path) -> bool:
    report = validate_paths([str(rule_file(tmp, trigger, names, log))], now=NOW, environ={})
    return report.ok


def validate_names(tmp: Path, trigger: str, candidates: set[str], log: Path) -> set[str]:
    """The candidates a template may use in validate (each tried alone)."""
    return {n for n in candidates if validate_accepts(tmp, trigger, [n], log)}


# ---- run time: the real runners --------------------------------------------------------------


def collect(start: Callable[[Callable[[Sequence[Firing]], None]], None]) -> set[str]:
    fired: list[Firing] = []
    got = threading.Event()

    def dispatch(firings: Sequence[Firing]) -> None:
        fired.extend(firings)
        got.set()

    start(dispatch)
    assert got.wait(10), "the runner gave no firing"
    return set(fired[0].variables)


def runtime_names(kind: str, rule: Rule, log: Path, tmp: Path) -> set[str]:
    return RUNTIME[kind](rule, log, tmp)


def _manual(rule: Rule, log: Path, tmp: Path) -> set[str]:
    from emitter.rules.params import coerce_vars  # what `emitter fire --var` renders with

    return set(coerce_vars(rule, {"n": "2"}))


def _schedule(rule: Rule, log: Path, tmp: Path) -> set[str]:
    from emitter.triggers.schedule import ScheduleRunner

    def start(dispatch: Callable[[Sequence[Firing]], None]) -> None:
        runner = ScheduleRunner([rule], dispatch, lambda r, m: None, clock=lambda: 1_000.0)
        runner.run_due(1_000.0 + 61)  # the next tick is due

    return collect(start)


def _file(rule: Rule, log: Path, tmp: Path) -> set[str]:
    from emitter.triggers.filetail import FileTailRunner

    log.write_text("ERROR disk full of things\n", encoding="utf-8")
    with StateStore(":memory:") as store:
        def start(dispatch: Callable[[Sequence[Firing]], None]) -> None:
            runner = FileTailRunner([rule], dispatch, lambda r, m: None, store)
            runner.open_all()
            try:
                runner.poll_once()
            finally:
                runner.stop(1)

        return collect(start)


def _command(rule: Rule, log: Path, tmp: Path) -> set[str]:
    from emitter.triggers.command import CommandRunner

    with StateStore(":memory:") as store:
        def start(dispatch: Callable[[Sequence[Firing]], None]) -> None:
            CommandRunner([rule], dispatch, lambda r, m: None, store).run_once(rule)

        return collect(start)


def _webhook(rule: Rule, log: Path, tmp: Path) -> set[str]:
    from emitter.daemon.front import Front
    from emitter.daemon.listener import Listener
    from emitter.triggers.webhook import WebhookServer

    holder: list[Any] = []

    def start(dispatch: Callable[[Sequence[Firing]], None]) -> None:
        server = WebhookServer([rule], dispatch, lambda r, m: None, environ={})
        server.start()
        front = Front(lambda: {"status": "ok"})
        front.webhook = server.handle
        listener = Listener(("127.0.0.1", 0), front.app)  # the daemon's own HTTP front
        holder.extend((listener, server))
        listener.start()
        conn = http.client.HTTPConnection("127.0.0.1", listener.address[1], timeout=10)
        conn.request("POST", "/hooks/x?a=1", body=b'{"k": 1}',
                     headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 202
        conn.close()

    try:
        return collect(start)
    finally:
        listener, server = holder
        listener.stop()
        server.stop(2)


def _stdin(rule: Rule, log: Path, tmp: Path) -> set[str]:
    from emitter.triggers.stdin import StdinRunner

    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as stream:
        runner: list[StdinRunner] = []

        def start(dispatch: Callable[[Sequence[Firing]], None]) -> None:
            runner.append(StdinRunner([rule], dispatch, lambda r, m: None, stream=stream))
            runner[0].start()
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(b'{"k": 1}\n')

        names = collect(start)
        assert runner[0].done.wait(10)
        return names


RUNTIME: dict[str, Callable[[Rule, Path, Path], set[str]]] = {
    "manual": _manual, "schedule": _schedule, "file": _file, "command": _command,
    "webhook": _webhook, "stdin": _stdin,
}

# ---- emitter test ----------------------------------------------------------------------------

TEST_INPUTS: dict[str, Input] = {
    "manual": ParamsInput(values={"n": 2}),
    "schedule": ScheduleInput(times=(1_000.0,)),
    "file": LinesInput(lines=("ERROR disk full of things",)),
    "webhook": WebhookInput(body={"k": 1}, headers={"X-Id": "1"}, query={"a": "1"}),
    "command": CommandInput(results=(CommandResult(exit_code=3, stdout="out"),)),
    "stdin": StdinInput(objects=({"k": 1},)),
}


def test_names(rule: Rule, kind: str) -> set[str]:
    step = Step(1_000.0, TEST_INPUTS[kind], Location("t.yaml", 1, 1))
    (firing,) = firings_for(rule, step, InputState())
    return set(firing.variables)


test_names.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def all_declared_names() -> set[str]:
    from emitter.triggers.registry import TRIGGER_TYPES

    return {v.name for t in TRIGGER_TYPES.values() for v in t.variables}


@pytest.mark.parametrize("kind", list(TRIGGERS))
def test_validate_run_and_test_see_one_set(kind: str, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    rule = load(rule_file(tmp_path, TRIGGERS[kind], [], log))
    at_run = runtime_names(kind, rule, log, tmp_path)
    in_test = test_names(rule, kind)
    candidates = all_declared_names() | {"component", "detail", "n", "body", "output",
                                         NOT_GIVEN}
    in_validate = validate_names(tmp_path, TRIGGERS[kind], candidates, log)
    assert in_validate == at_run == in_test, kind
    assert validate_accepts(tmp_path, TRIGGERS[kind], sorted(at_run), log)


_GROUP = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(
    lambda n: n not in RESERVED and not keyword.iskeyword(n))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=st.lists(_GROUP, min_size=0, max_size=4, unique=True))
def test_file_groups_whatever_their_names(groups: list[str], tmp_path: Path) -> None:
    """Named groups, including ones called like the fixed names (`line`, `path`)."""
    log = tmp_path / "g.log"
    pattern = "".join(f"(?P<{g}>\\\\w+) " for g in groups) + "END"
    trigger = f"{{type: file, path: LOG, match: \"{pattern}\", from_beginning: true}}"
    rule = load(rule_file(tmp_path, trigger, [], log))
    from emitter.triggers.filetail import FileTailRunner

    log.write_text(" ".join("w" for _ in groups) + (" " if groups else "") + "END\n",
                   encoding="utf-8")
    with StateStore(":memory:") as store:
        def start(dispatch: Callable[[Sequence[Firing]], None]) -> None:
            runner = FileTailRunner([rule], dispatch, lambda r, m: None, store)
            runner.open_all()
            try:
                runner.poll_once()
            finally:
                runner.stop(1)

        at_run = collect(start)
    line = " ".join("w" for _ in groups) + (" " if groups else "") + "END"
    step = Step(1.0, LinesInput(lines=(line,)), Location("t.yaml", 1, 1))
    (firing,) = firings_for(rule, step, InputState())
    expected = set(groups) | {"line", "path", "line_number"}
    assert at_run == set(firing.variables) == expected
    assert validate_accepts(tmp_path, trigger, sorted(expected), log)
    assert not validate_accepts(tmp_path, trigger, [NOT_GIVEN], log)
