"""The file trigger on real files: start at end, rotation, truncation, partial lines, bad
UTF-8, restart without re-firing or missing lines, dispatch failures, many rules one read."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emitter.errors import OutboxFullError
from emitter.problems import Location
from emitter.rules.model import FileTrigger, Rule
from emitter.state.store import StateStore
from emitter.triggers.base import Firing
from emitter.triggers.filetail import FileTailRunner
from emitter.triggers.linematch import LineMatcher, LineRule, naive_scan, required_literals

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gen_log  # noqa: E402

ERR = re.compile(r"ERROR (?P<code>E\d+) (?P<msg>.*)")


def rule(rule_id: str, path: Path, match: re.Pattern[str] = ERR, **kw: object) -> Rule:
    trig = FileTrigger(path=str(path), match=match, **kw)  # type: ignore[arg-type]
    return Rule(id=rule_id, location=Location("r.yaml", 1, 1), trigger=trig, event={})


class Harness:
    def __init__(self, tmp: Path, rules: list[Rule]) -> None:
        self.tmp = tmp
        self.fired: list[Firing] = []
        self.errors: list[tuple[str | None, str]] = []
        self.fail_next = 0
        self.now = 1000.0
        self.store = StateStore(tmp / "state.sqlite3")
        self.runner = FileTailRunner(
            rules, self.dispatch, lambda r, m: self.errors.append((r, m)), self.store,
            poll_interval=0.02, clock=lambda: self.now,
        )

    def dispatch(self, firings: object) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OutboxFullError("outbox full")
        self.fired.extend(firings)  # type: ignore[arg-type]

    def close(self) -> None:
        self.runner.stop(2)
        self.store.close()

    def poll(self) -> list[tuple[str, int, str]]:
        start = len(self.fired)
        self.runner.poll_once()
        return [(f.rule_id, f.variables["line_number"], f.variables["line"])
                for f in self.fired[start:]]


Make = Callable[[Path, list[Rule]], Harness]


@pytest.fixture
def make() -> Iterator[Callable[[Path, list[Rule]], Harness]]:
    made: list[Harness] = []

    def factory(tmp: Path, rules: list[Rule]) -> Harness:
        made.append(Harness(tmp, rules))
        return made[-1]

    yield factory
    for h in made:
        h.close()


def append(path: Path, data: str | bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def test_starts_at_end_and_gives_groups(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    append(log, "ERROR E1 old\nINFO x\npartial-old")
    h = make(tmp_path, [rule("r", log)])
    assert h.poll() == []
    append(log, " done\nERROR E42 disk full\n")
    h.poll()
    got = h.fired
    assert [f.variables["line"] for f in got] == ["ERROR E42 disk full"]
    v = got[0].variables
    assert (v["code"], v["msg"], v["path"], v["line_number"]) == ("E42", "disk full", str(log), 4)
    assert got[0].trigger == "file" and got[0].rule_id == "r"


def test_from_beginning_reads_existing_lines(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    append(log, "ERROR E1 a\nINFO\nERROR E2 b\n")
    h = make(tmp_path, [rule("r", log, from_beginning=True)])
    assert h.poll() == [("r", 1, "ERROR E1 a"), ("r", 3, "ERROR E2 b")]


def test_partial_line_completed_later(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    h = make(tmp_path, [rule("r", log)])
    h.poll()
    append(log, "ERROR E7 half")
    assert h.poll() == []
    append(log, " and the rest\r\n")
    assert h.poll() == [("r", 1, "ERROR E7 half and the rest")]


def test_rotation_by_rename_finishes_old_then_reads_new(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    h = make(tmp_path, [rule("r", log)])
    h.poll()
    append(log, "ERROR E1 before\n")
    writer = open(log, "ab")  # noqa: SIM115 - the application keeps writing to its old descriptor
    os.rename(log, tmp_path / "app.log.1")
    writer.write(b"ERROR E2 after rename\nERROR E3 no newline")
    writer.close()
    append(log, "INFO new\nERROR E4 new file\n")
    assert h.poll() == [
        ("r", 1, "ERROR E1 before"),
        ("r", 2, "ERROR E2 after rename"),
        ("r", 3, "ERROR E3 no newline"),
        ("r", 2, "ERROR E4 new file"),
    ]
    append(log, "ERROR E5 later\n")
    assert h.poll() == [("r", 3, "ERROR E5 later")]


def test_truncation_restarts_at_zero(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    h = make(tmp_path, [rule("r", log)])
    h.poll()
    append(log, "ERROR E1 one\nINFO two\nINFO three\n")
    assert len(h.poll()) == 1
    with open(log, "wb") as fh:  # copytruncate
        fh.write(b"ERROR E9 x\n")
    assert h.poll() == [("r", 1, "ERROR E9 x")]


def test_invalid_utf8_is_replaced_not_lost(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    h = make(tmp_path, [rule("r", log)])
    h.poll()
    append(log, b"ERROR E5 caf\xe9 \xff\xfe broken\nERROR E6 ok\n")
    got = h.poll()
    assert got == [("r", 1, "ERROR E5 caf\ufffd \ufffd\ufffd broken"), ("r", 2, "ERROR E6 ok")]


def test_restart_neither_refires_nor_misses(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    first = make(tmp_path, [rule("r", log)])
    first.poll()
    append(log, "ERROR E1 a\nERROR E2 b\n")
    assert len(first.poll()) == 2
    first.close()
    append(log, "ERROR E3 while down\nINFO\n")  # written while emitter is stopped
    second = make(tmp_path, [rule("r", log)])
    assert second.poll() == [("r", 3, "ERROR E3 while down")]
    assert second.poll() == []


def test_rotation_while_stopped_reads_new_file_whole(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    first = make(tmp_path, [rule("r", log)])
    first.poll()
    first.close()
    os.rename(log, tmp_path / "app.log.1")
    append(log, "ERROR E1 in new file\n")
    second = make(tmp_path, [rule("r", log)])
    assert second.poll() == [("r", 1, "ERROR E1 in new file")]


def test_dispatch_failure_keeps_position_and_retries(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    h = make(tmp_path, [rule("r", log)])
    h.poll()
    append(log, "ERROR E1 a\n")
    h.fail_next = 1
    assert h.poll() == []
    assert h.errors and "will retry" in h.errors[-1][1]
    assert h.poll() == []  # backing off: not yet
    h.now += 1.0
    assert h.poll() == [("r", 1, "ERROR E1 a")]
    assert h.poll() == []


def test_many_rules_one_reader_and_exclude(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    rules = [
        rule("err", log),
        rule("disk", log, re.compile(r"disk (?P<pct>\d+)%"), exclude=re.compile("test")),
    ]
    h = make(tmp_path, rules)
    assert len(h.runner.tails) == 1
    h.poll()
    append(log, "ERROR E1 disk 91%\nINFO disk 95% test volume\n")
    assert h.poll() == [("err", 1, "ERROR E1 disk 91%"), ("disk", 1, "ERROR E1 disk 91%")]


def test_missing_file_reported_then_followed_from_start(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "later.log"
    h = make(tmp_path, [rule("r", log)])
    h.poll()
    h.poll()
    assert len(h.errors) == 1 and "no such file" in h.errors[0][1]
    append(log, "ERROR E1 first line\n")
    assert h.poll() == [("r", 1, "ERROR E1 first line")]


def test_thread_runs_and_stops(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("ERROR E0 before the start\n")
    h = make(tmp_path, [rule("r", log)])
    h.runner.start()
    try:
        # The start position is taken by start() itself, not by the thread's first poll
        # (which may come much later on a loaded machine): a line written right after
        # start() returned is read, one written before it is not.
        assert h.store.get("file", f"{log}|end") == {
            "dev": log.stat().st_dev, "inode": log.stat().st_ino, "offset": 26, "line": 1}
        append(log, "ERROR E1 threaded\n")
        deadline = time.monotonic() + 10
        while not h.fired and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [f.variables["line"] for f in h.fired] == ["ERROR E1 threaded"]
        assert h.runner.health().running
    finally:
        h.runner.stop(2)
    assert not h.runner.health().running


# ---- the fast matcher against the naive loop -------------------------------------------


def test_required_literals() -> None:
    def lits(p: str, flags: int = 0) -> set[tuple[str, bool]] | None:
        fact = required_literals(re.compile(p, flags))
        return None if fact is None else {(lit.text, lit.ci) for lit in fact}

    assert lits(r"WARN \[db\] slow (?P<ms>\d+)ms") == {("WARN [db] slow ", False)}
    assert lits(r"(?:timeout|refused) to \d+") == {("timeout", False), ("refused", False)}
    assert lits(r"\d+ ms") == {(" ms", False)}
    assert lits(r"^.*$") is None
    assert lits(r"(?:a|\d)+") is None
    assert lits(r"(?i)out of memory") == {("out of memory", True)}
    assert lits(r"(?i)disk") is None or ("disk", True) not in (lits(r"(?i)disk") or set())


def matcher_rules() -> list[LineRule]:
    patterns = [
        (r"ERROR (?P<code>E\d+)", None),
        (r"(?i)out of (?P<what>memory|disk)", None),
        (r"(?:timeout|refused) talking to (?P<peer>\w+)", None),
        (r"(?P<n>\d+) ms$", r"debug"),
        (r"^\w+$", None),  # no literal: slow path
        (r"caf\u00e9 (?P<x>\w)", None),
        (r"ERROR E1", None),  # a prefix of the first rule's key
        (r"(?i)KILLED", None),
        (r"\ufffd", None),
    ]
    return [LineRule(f"r{i}", re.compile(p), re.compile(x) if x else None)
            for i, (p, x) in enumerate(patterns)]


FRAGMENTS = [
    "ERROR ", "E1", "E12", "out of ", "OUT OF ", "Out of ", "memory", "disk", "timeout",
    "refused", " talking to ", "db", " ms", "12", "debug", "caf\u00e9 ", "x", "KILLED",
    "\u212aILLED", "killed", " ", "\r", "word",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(FRAGMENTS),
                                   st.binary(max_size=3).map(lambda b: b.decode("latin-1"))),
                         max_size=8), max_size=30),
       st.binary(max_size=4), st.sampled_from([False, None]))
def test_fast_path_equals_naive_loop(lines: list[list[str]], junk: bytes,
                                     accelerate: bool | None) -> None:
    rules = matcher_rules()
    chunk = b"".join("".join(parts).replace("\n", " ").encode("utf-8", "surrogatepass") +
                     (junk.replace(b"\n", b"") if i % 3 == 0 else b"") + b"\n"
                     for i, parts in enumerate(lines))
    matcher = LineMatcher(rules, sample=chunk[:200], accelerate=accelerate)
    hits, newlines = matcher.scan_counted(chunk, 5)
    assert hits == naive_scan(rules, chunk, 5)
    assert newlines == chunk.count(b"\n")


# accelerate=None: Hyperscan where installed (tests/test_hsmatch.py), False: the pure-re path
@pytest.mark.parametrize("accelerate", [False, None])
def test_fast_path_equals_naive_on_generated_log(accelerate: bool | None) -> None:
    rules = [LineRule(rid, rx) for rid, rx in gen_log.compiled_rules()]
    chunk = "".join(line + "\n" for line in gen_log.lines(20_000, seed=3)).encode()
    matcher = LineMatcher(rules, chunk[:65536], accelerate=accelerate)
    assert matcher.slow_rules == ()
    fast = matcher.scan(chunk, 1)
    assert fast == naive_scan(rules, chunk, 1)
    assert len(fast) > 400  # ~3 % of the lines match: the comparison is not vacuous


@pytest.mark.parametrize("accelerate", [False, None])
@pytest.mark.parametrize("sample", [b"", b"kkkk ERROR xxx"])
def test_matcher_with_no_or_odd_sample(sample: bytes, accelerate: bool | None) -> None:
    rules = matcher_rules()
    chunk = b"ERROR E12 out of DISK\nkilled in 12 ms\nword\n"
    matcher = LineMatcher(rules, sample, accelerate=accelerate)
    assert matcher.scan(chunk, 1) == naive_scan(rules, chunk, 1)


def test_make_runners_groups_rules_into_units(tmp_path: Path) -> None:
    from emitter.rules.model import CommandTrigger, ScheduleTrigger, StdinTrigger, WebhookTrigger
    from emitter.triggers import make_runners

    loc = Location("r.yaml", 1, 1)
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    rules = [rule("f1", a), rule("f2", a), rule("f3", b),
             Rule(id="s1", location=loc, trigger=ScheduleTrigger(every=60.0), event={}),
             Rule(id="s2", location=loc, trigger=ScheduleTrigger(every=5.0), event={}),
             Rule(id="c1", location=loc, trigger=CommandTrigger(command=("true",)), event={}),
             Rule(id="w1", location=loc, trigger=WebhookTrigger(path="/h"), event={}),
             Rule(id="in", location=loc, trigger=StdinTrigger(), event={})]
    with StateStore(tmp_path / "s.db") as store:
        names = [r.name for r in make_runners(rules, lambda f: None, lambda r, m: None, store)]
        assert sorted(names) == ["command:c1", "file", "file", "schedule", "schedule",
                                 "webhook"]
        with_stdin = make_runners(rules, lambda f: None, lambda r, m: None, store, stdin=True)
        assert "stdin" in [r.name for r in with_stdin]
