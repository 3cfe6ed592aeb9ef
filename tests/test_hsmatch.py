"""The Hyperscan-accelerated matcher gives exactly the plain `re` loop's hits (rules, lines,
named groups), on hand-picked and generated patterns and lines; the switch turns it off."""

from __future__ import annotations

import contextlib
import re
import string
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from emitter.triggers import hsmatch
from emitter.triggers.linematch import LineMatcher, LineRule, naive_scan

pytest.importorskip("hyperscan", reason="the hyperscan extra is not installed "
                    "(pip install -e '.[hyperscan]'): nothing to compare")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gen_log  # noqa: E402


def rules_of(patterns: list[str], excludes: dict[int, str] | None = None) -> list[LineRule]:
    excludes = excludes or {}
    return [LineRule(f"r{i}", re.compile(p),
                     re.compile(excludes[i]) if i in excludes else None)
            for i, p in enumerate(patterns)]


def same(rules: list[LineRule], chunk: bytes) -> LineMatcher:
    matcher = LineMatcher(rules, chunk[:200], accelerate=True)
    assert matcher.scan(chunk, 7) == naive_scan(rules, chunk, 7)
    return matcher


def test_case_partners_table_is_complete() -> None:
    """Every non-ASCII character Python's IGNORECASE matches to an ASCII letter is listed."""
    letter = re.compile(r"(?i)[a-z]")
    found: dict[str, set[str]] = {}
    for cp in range(0x80, 0x110000):
        ch = chr(cp)
        if letter.fullmatch(ch):
            for a in string.ascii_lowercase:
                if re.fullmatch("(?i)" + a, ch):
                    found.setdefault(a, set()).add(ch)
    assert found == {k: set(v) for k, v in hsmatch.CI_PARTNERS.items()}


HAND_PICKED = [
    r"ERROR \[(?P<svc>\w+)\] (?P<msg>.+)",
    r"^(?P<first>\S+) (?P<rest>.*)$",
    r"(?i)out of (?P<what>memory|disk)",
    r"(?i)KILLED (?P<pid>\d+)",
    r"caf\u00e9 (?P<x>\w)",
    r"(?a)(?P<w>\w+)=(?P<n>\d+)$",
    r"\bword\b",
    r"\Bord",
    r"(?P<n>\d{2,4}) ms\Z",
    r"[^\x00-\x7f]+",
    r"\ufffd",
    r"(?P<q>['\"]).*?(?P=q)",
    r"(?<=id=)(?P<id>[0-9a-f]+)(?!x)",
    r"(?<!no )match",
    r"(?:(?P<a>a)|b)(?(a)c|d)",
    r"(?>ab|a)c",
    r"x*+y",
    r"(?s)begin.end",
    r"(?m)^end$",
    r"(?x) spaced \s+ (?P<v> \d+ )  # a comment",
    r"[\s\u00a0]{2}",
    r"\d\d",
    r"(?i)[j-l]elvin",
    r"(?i)stra\u00dfe",
    r"(?i:ab)C",
    r"^$",
    r"\r",
    r"",
]

LINES = [
    "ERROR [db] disk full", "ERROR [\u00e9t\u00e9] x", "first rest of it", "", " ",
    "OUT OF MEMORY", "Out of disk", "\u212aILLED 42", "killed 7", "caf\u00e9 \u00e9",
    "caf\u00e9 _", "key=12", "k\u00e9y=12", "\u0663\u0663 word", "a word here", "swords",
    "123 ms", "12 ms\r", "\u0661\u0662 ms", "x'quoted' y", 'say "hi" now', "id=beef",
    "id=beefx", "no match", "a match", "ac", "bd", "bc", "abc", "xxxy", "begin-end",
    "the end", "end", "spaced  42", "a\u00a0\u00a0b", "\x1c\x1d", "\u212aelvin", "kelvin",
    "STRASSE", "stra\u00dfe", "abC", "abc", "ABC", "tab\there", "\u0130i\u0131I",
]


@pytest.mark.parametrize("pattern", HAND_PICKED)
def test_hand_picked_pattern_equals_re(pattern: str) -> None:
    raw = "".join(line + ("\r\n" if i % 4 == 3 else "\n") for i, line in enumerate(LINES))
    chunk = raw.encode() + b"bad \xff\xfe byte\nword \xe2\x82\n"
    matcher = same(rules_of([pattern]), chunk)
    assert matcher.hyperscan is not None and matcher.hyperscan.rules == {0}  # really accelerated
    same(rules_of([pattern]), chunk[:-1])  # a last line without its newline
    same(rules_of([pattern]), b"")


def test_all_hand_picked_together_with_excludes() -> None:
    patterns = HAND_PICKED[:-1]  # the empty pattern matches every line
    rules = rules_of(patterns, {0: "disk", 2: "(?i)memory", 5: r"^k"})
    chunk = "".join(line + "\n" for line in LINES * 3).encode()
    assert len(same(rules, chunk).hyperscan.rules) == len(patterns)  # type: ignore[union-attr]


def test_generated_log_equals_re_and_every_rule_accelerated() -> None:
    rules = [LineRule(rid, rx) for rid, rx in gen_log.compiled_rules(100)]
    chunk = "".join(line + "\n" for line in gen_log.lines(20_000, seed=5, width=200)).encode()
    matcher = LineMatcher(rules, chunk[:65536], accelerate=True)
    assert matcher.hyperscan is not None and len(matcher.hyperscan.rules) == 100
    assert matcher.slow_rules == () and matcher.keys == ()
    hits = matcher.scan(chunk, 1)
    assert hits == naive_scan(rules, chunk, 1)
    assert len(hits) > 400


def test_choosing_keys_again_keeps_the_compiled_database() -> None:
    rules = rules_of([r"ERROR (?P<x>\w+)", r"^\w+$"])
    first = LineMatcher(rules, b"")
    again = LineMatcher(rules, b"ERROR x\n" * 100, like=first)
    assert again.hyperscan is first.hyperscan is not None
    other = LineMatcher(rules_of([r"WARN"]), b"", like=first)  # other rules: its own
    assert other.hyperscan is not first.hyperscan


def test_switch_turns_the_accelerator_off(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = rules_of([r"ERROR (?P<x>\w+)"])
    assert LineMatcher(rules).hyperscan is not None  # on by default when installed
    for value in ("0", "off", "OFF", "no", "false"):
        monkeypatch.setenv(hsmatch.SWITCH, value)
        assert LineMatcher(rules).hyperscan is None
    monkeypatch.setenv(hsmatch.SWITCH, "1")
    assert LineMatcher(rules).hyperscan is not None
    assert LineMatcher(rules, accelerate=False).hyperscan is None


# ---- generated patterns --------------------------------------------------------------------

CHARS = ["a", "b", "c", "k", "K", "\u212a", "s", "S", "\u017f", "i", "I", "\u0130", "\u0131",
         "\u00e9", "\u00c9", "\u00df", " ", "\t", "\x1c", "\u00a0", "0", "7", "\u0663", "_", ".",
         "-", "=", "'", "\ufffd"]
ATOMS = [re.escape(c) for c in CHARS] + [
    r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", ".", "[a-c]", "[^a-c]", r"[\w.-]", "[\u00e9K]",
    r"[^\d\s]", "[0-9a-f]", "[k-s]", "^", "$", r"\b", r"\B", r"\A", r"\Z", "abc", "ks",
]
FLAGS = ["", "(?i)", "(?a)", "(?s)", "(?m)", "(?ia)"]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.tuples(children, children)
    return st.one_of(
        pairs.map(lambda p: p[0] + p[1]),
        pairs.map(lambda p: f"(?:{p[0]}|{p[1]})"),
        children.map(lambda s: f"({s})"),
        children.map(lambda s: f"(?P<NAME>{s})"),
        st.tuples(children, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?", "+?", "*+",
                                             "{0,2}?"])).map(lambda p: f"(?:{p[0]}){p[1]}"),
        children.map(lambda s: f"(?>{s})"),
        children.map(lambda s: f"(?={s})"),
        children.map(lambda s: f"(?!{s})"),
        st.sampled_from(CHARS).map(lambda c: f"(?<={re.escape(c)})"),
        st.tuples(st.sampled_from(["(?i:", "(?-i:", "(?a:", "(?s:"]), children).map(
            lambda p: f"{p[0]}{p[1]})"),
        children.map(lambda s: f"(?P<NAME>{s})(?P=BACK)"),
    )


def _name_groups(pattern: str) -> str:
    count = 0
    while "NAME" in pattern:
        count += 1
        pattern = pattern.replace("NAME", f"g{count}", 1)
        pattern = pattern.replace("BACK", f"g{count}", 1)
    return pattern


PATTERNS = st.tuples(st.sampled_from(FLAGS),
                     st.recursive(st.sampled_from(ATOMS), _combine, max_leaves=8)).map(
    lambda p: _name_groups(p[0] + p[1]))
LINE = st.tuples(st.lists(st.sampled_from(CHARS + ["abc", "ks", "KS", "7=7"]), max_size=10),
                 st.sampled_from([b"", b"\r", b"\xff", b"\xc3", b"\xed\xa0\x80"]),
                 st.sampled_from([b"\n", b"\r\n"]))


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(PATTERNS, min_size=1, max_size=4), st.lists(LINE, max_size=12))
def test_generated_patterns_equal_re(patterns: list[str], lines: list[tuple]) -> None:
    assume(all(_compiles(p) for p in patterns))
    chunk = b"".join("".join(parts).encode() + junk + end for parts, junk, end in lines)
    rules = rules_of(patterns)
    for pattern in patterns:  # no other error: an untranslatable rule stays on the re path
        with contextlib.suppress(hsmatch.Untranslatable):
            hsmatch.translate(pattern, re.compile(pattern).flags)
    same(rules, chunk)


@pytest.mark.skipif(not hsmatch.available(), reason="hyperscan not installed or switched off")
def test_soon_serves_on_re_then_takes_the_database_compiled_in_the_background() -> None:
    """A daemon does not wait for the compile: the first matcher is pure `re`, the one built
    once the compile is over has the database, and both find the same hits."""
    import time

    rules = rules_of([rf"ERROR (?P<code>E{k}\d\d) (?P<rest>.*)" for k in range(40)]
                     + [r"timeout after (?P<s>\d+)s"])
    chunk = (b"INFO fine\nERROR E1701 disk\nERROR E3999 x\nwarn: timeout after 30s\n"
             b"ERROR E9 no\n") * 50
    first = LineMatcher(rules, chunk[:500], accelerate="soon")
    assert first.hyperscan is None and first.accelerating
    deadline = time.monotonic() + 60
    while not first.acceleration_came():
        assert time.monotonic() < deadline, "the background compile never ended"
        time.sleep(0.01)
    second = LineMatcher(rules, chunk[:500], accelerate="soon", like=first)
    assert second.hyperscan is not None and not second.accelerating
    assert first.scan(chunk, 1) == second.scan(chunk, 1) == naive_scan(rules, chunk, 1)
