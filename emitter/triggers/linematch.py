"""Matching many rules' regexes over a chunk of log lines without a Python loop per line.

Every file rule's regex is analysed for a *required literal*: text that any match must
contain (e.g. ``"] slow query took "`` in ``WARN \\[db\\] slow query took (?P<ms>\\d+)ms``),
or a set of alternatives when the literal sits in a ``(a|b)`` branch. One combined byte
regex of those literals runs over the whole raw chunk (C speed); only the lines it hits are
decoded (UTF-8, ``errors="replace"``) and tried with the candidate rules' full regexes.
Line numbers come from ``bytes.count(b"\\n")`` between hits, also C speed.

The keys and their choice live in emitter.triggers.keys. Rules without any extractable
literal (``\\d+ ms``, ``^.*$``) fall back to trying their regex on every line: correct, but
at Python-loop speed. With the `hyperscan` extra installed (and `EMITTER_HYPERSCAN` not off)
the rules Hyperscan takes are prefiltered by one Hyperscan scan of the chunk instead
(emitter.triggers.hsmatch); the rest keep the literal stage.

Exactness: a line yields exactly the same hits as the naive loop (every rule's ``search``
on every decoded line, then ``exclude``); both prefilters only ever over-approximate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from emitter.triggers import hsmatch
from emitter.triggers.keys import KeyChooser, group_regex, required_facts
from emitter.triggers.keys import required_literals as required_literals


@dataclass(frozen=True)
class LineRule:
    rule_id: str
    match: re.Pattern[str]
    exclude: re.Pattern[str] | None = None


@dataclass(frozen=True)
class LineHit:
    rule_id: str
    line_number: int  # 1-based line number in the file
    line: str  # decoded, without the line ending
    groups: Mapping[str, str | None]
    end: int  # offset in the scanned chunk just past the line's b"\n"


class LineMatcher:
    """Finds, for a chunk of whole lines, every (line, rule) the naive loop would find."""

    def __init__(self, rules: Sequence[LineRule], sample: bytes = b"", *,
                 accelerate: bool | Literal["soon"] | None = None,
                 like: LineMatcher | None = None) -> None:
        """`accelerate`: None uses Hyperscan when `hsmatch.available()`, False never; True
        requires it (for the differential tests); "soon" uses it if these rules' database is
        compiled, else `accelerating` says one is wanted: `acceleration_came` compiles it in the
        background and says when to build the matcher again. `like`: a matcher of the same rules
        whose Hyperscan database is taken as it is (choosing keys again on a new sample does
        not change it, and compiling it is the costly part)."""
        self.rules = tuple(rules)
        if accelerate is True and not hsmatch.installed():
            raise RuntimeError("hyperscan is not installed")
        self.hyperscan: hsmatch.Prefilter | None = None
        self.accelerating = False  # a Hyperscan database is being compiled for these rules
        patterns = self._patterns = [(r.match.pattern, r.match.flags) for r in self.rules]
        if like is not None and like.rules == self.rules and like.hyperscan is not None:
            self.hyperscan = like.hyperscan
        elif accelerate == "soon":  # the compile starts at the first acceleration_came()
            self.hyperscan, done = hsmatch.compiled(patterns)
            self.accelerating = not done
        elif accelerate is not False:
            self.hyperscan = hsmatch.build(patterns, force=bool(accelerate))
        taken = self.hyperscan.rules if self.hyperscan is not None else frozenset()
        rest = [i for i in range(len(self.rules)) if i not in taken]
        chooser = KeyChooser([required_facts(self.rules[i].match) for i in rest], sample)
        chosen = chooser.choose_bytes()
        keys: dict[tuple[bytes, bool], set[int]] = {}
        slow: list[int] = []
        for at, index in enumerate(rest):
            picked = chooser.rule_keys(at, chosen)
            if picked is None:
                slow.append(index)
                continue
            for key in picked:
                keys.setdefault(key, set()).add(index)
        self.slow_rules = tuple(slow)
        self._build_prefilter(keys)

    def _build_prefilter(self, keys: Mapping[tuple[bytes, bool], set[int]]) -> None:
        self.keys = tuple(sorted(keys))
        # A hit on key K at a position also means every key that is a prefix of K (case
        # folded, to over-approximate) starts there: a group's alternation reports only the
        # longest key at each position.
        implied: dict[bytes, frozenset[int]] = {}
        for key, ci in self.keys:
            rules: set[int] = set()
            for other, other_ci in self.keys:
                if key.lower().startswith(other.lower()):
                    rules |= keys[(other, other_ci)]
            folded = key.lower() if ci else key
            implied[folded] = frozenset(rules) | implied.get(folded, frozenset())
        self._implied = implied
        self._any_ci = any(ci for _, ci in self.keys)
        groups: dict[int, list[tuple[bytes, bool]]] = {}
        for key, ci in self.keys:
            first = key[0]
            cased = ci and chr(first).isalpha()
            for b in {first, ord(chr(first).swapcase())} if cased else {first}:
                groups.setdefault(b, []).append((key, ci))
        self._groups = tuple(group_regex(b, ks) for b, ks in sorted(groups.items()))

    def acceleration_came(self) -> bool:
        """While `accelerating`: True once the background compile is over (build again);
        the first call starts it (the file trigger asks once lines come, so a daemon's
        start does not share the GIL with it)."""
        return self.accelerating and not hsmatch.compile_soon(self._patterns)

    @property
    def fast_rule_count(self) -> int:
        return len(self.rules) - len(self.slow_rules)

    def scan(self, chunk: bytes, first_line_number: int) -> list[LineHit]:
        """Hits in `chunk` (whole lines, each ending in b"\\n"), ordered by line then rule."""
        return self.scan_counted(chunk, first_line_number)[0]

    def scan_counted(self, chunk: bytes, first_line_number: int) -> tuple[list[LineHit], int]:
        """`scan`, and the number of b"\\n" in `chunk` (counted once, on the way)."""
        found: list[tuple[int, int, LineHit]] = []
        counted, line_no = 0, first_line_number
        if self._groups or self.hyperscan is not None:
            counted, line_no = self._scan_fast(chunk, first_line_number, found)
        if self.slow_rules:
            self._scan_slow(chunk, first_line_number, found)
            found.sort(key=lambda item: (item[0], item[1]))
        newlines = line_no - first_line_number + chunk.count(b"\n", counted)
        return [hit for _, _, hit in found], newlines

    def _candidate_lines(self, chunk: bytes) -> dict[int, set[int]]:
        """Start offset of every line holding a key → the rules that line might match."""
        lines: dict[int, set[int]] = {}
        if self.hyperscan is not None and chunk:
            # Hyperscan reports a rule at the newline ending the line: give the last one its own
            self.hyperscan.candidates(chunk if chunk.endswith(b"\n") else chunk + b"\n", lines)
        implied, any_ci, rfind = self._implied, self._any_ci, chunk.rfind
        for group in self._groups:
            search = group.search
            m = search(chunk)
            while m is not None:
                text = m.group()
                rules = implied.get(text)
                if any_ci:
                    rules = (rules or frozenset()) | implied.get(text.lower(), frozenset())
                if rules:
                    start = rfind(b"\n", 0, m.start()) + 1
                    lines.setdefault(start, set()).update(rules)
                m = search(chunk, m.start() + 1)
        return lines

    def _scan_fast(self, chunk: bytes, line_no: int, out: list[tuple[int, int, LineHit]]
                   ) -> tuple[int, int]:
        """Adds the hits to `out`; returns (offset, its line number) counted up to."""
        counted = 0
        for start, candidates in sorted(self._candidate_lines(chunk).items()):
            line_no += chunk.count(b"\n", counted, start)
            counted = start
            end = chunk.find(b"\n", start)
            end = end if end >= 0 else len(chunk)
            line = _decode(chunk[start:end])
            for index in sorted(candidates):
                hit = self._match(index, line, line_no, end + 1)
                if hit is not None:
                    out.append((line_no, index, hit))
        return counted, line_no

    def _match(self, index: int, line: str, line_no: int, end: int) -> LineHit | None:
        return _try(self.rules[index], line, line_no, end)

    def _scan_slow(self, chunk: bytes, line_no: int, out: list[tuple[int, int, LineHit]]) -> None:
        for offset, (line, end) in enumerate(_split(chunk)):
            for index in self.slow_rules:
                hit = self._match(index, line, line_no + offset, end)
                if hit is not None:
                    out.append((line_no + offset, index, hit))


def _try(rule: LineRule, line: str, line_no: int, end: int) -> LineHit | None:
    m = rule.match.search(line)
    if m is None or (rule.exclude is not None and rule.exclude.search(line)):
        return None
    return LineHit(rule.rule_id, line_no, line, m.groupdict(), end)


def _split(chunk: bytes) -> list[tuple[str, int]]:
    """Each decoded line of `chunk` with the offset just past its end."""
    out: list[tuple[str, int]] = []
    start = 0
    for raw in chunk.split(b"\n"):
        start += len(raw) + 1
        out.append((_decode(raw), start))
    if chunk.endswith(b"\n") or not chunk:
        out.pop()
    return out


def _decode(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


def naive_scan(rules: Sequence[LineRule], chunk: bytes, first_line_number: int) -> list[LineHit]:
    """The reference: every rule's regex on every line. Tests compare `LineMatcher` to it."""
    hits: list[LineHit] = []
    for offset, (line, end) in enumerate(_split(chunk)):
        for rule in rules:
            hit = _try(rule, line, first_line_number + offset, end)
            if hit is not None:
                hits.append(hit)
    return hits
