"""Which literals every match of a regex must contain, and which of them a scan searches for.

A rule's *required literal* is text any match contains (``"] slow query took "`` in
``WARN \\[db\\] slow query took (?P<ms>\\d+)ms``), or a set of alternatives when it sits in a
``(a|b)`` branch. Which substring of a literal becomes the search key is chosen so its first
byte is rare in a sample of the log, because the regex engine's scan cost is the number of
positions whose byte could start a key. Used by `emitter.triggers.linematch`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

_MAX_KEY = 24  # bytes: longer keys do not filter better but cost more per attempt
# ASCII letters that Unicode IGNORECASE also matches to non-ASCII characters (K → KELVIN
# SIGN, s → LONG S, i → dotted/dotless i): a byte search for them could miss, so a
# case-insensitive literal never uses them.
_CI_UNSAFE = frozenset("iIkKsS")
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None))


@dataclass(frozen=True)
class _Lit:
    text: str
    ci: bool  # matched case-insensitively


Fact = tuple[_Lit, ...]  # at least one of these literals is in every matching line


class _Walker:
    """Collects required-literal facts from one sequence of a parsed pattern."""

    def __init__(self, ci: bool) -> None:
        self.ci = ci
        self.facts: list[Fact] = []
        self._run: list[str] = []

    def _flush(self) -> None:
        if self._run:
            self.facts.append((_Lit("".join(self._run), self.ci),))
            self._run = []

    def walk(self, items: Iterable[tuple[Any, Any]]) -> _Walker:
        for op, av in items:
            self._item(op, av)
        self._flush()
        return self

    def _item(self, op: Any, av: Any) -> None:
        if op is sre_c.LITERAL:
            ch = chr(av)
            if ch in "\n\ufffd" or (self.ci and (ch in _CI_UNSAFE or not ch.isascii())):
                self._flush()
            else:
                self._run.append(ch)
        elif op is sre_c.AT:
            pass  # zero width: the characters around it stay adjacent
        elif op is sre_c.SUBPATTERN:
            _group, add, remove, sub = av
            if add or remove:
                self._flush()
                ci = (self.ci or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
                self.facts.extend(_Walker(ci).walk(sub).facts)
            else:
                for sub_op, sub_av in sub:
                    self._item(sub_op, sub_av)
        elif op in _REPEATS:
            self._flush()
            low, _high, sub = av
            if low >= 1:
                self.facts.extend(_Walker(self.ci).walk(sub).facts)
        elif op is sre_c.BRANCH:
            self._flush()
            self._branch(av[1])
        else:
            self._flush()

    def _branch(self, alternatives: Sequence[Any]) -> None:
        union: list[_Lit] = []
        for alt in alternatives:
            best = best_fact(_Walker(self.ci).walk(alt).facts)
            if best is None:
                return  # one alternative needs no literal: the branch guarantees nothing
            union.extend(best)
        self.facts.append(tuple(union))


def best_fact(facts: Sequence[Fact]) -> Fact | None:
    """The most selective fact: longest shortest alternative, then fewest alternatives."""
    if not facts:
        return None
    return max(facts, key=lambda f: (min(len(lit.text) for lit in f), -len(f)))


def required_facts(pattern: re.Pattern[str]) -> list[Fact]:
    """Every fact found: each a set of literals one of which any match of `pattern` contains."""
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 - an unanalysable pattern simply takes the slow path
        return []
    ci = bool(parsed.state.flags & re.IGNORECASE)
    return _Walker(ci).walk(parsed).facts


def required_literals(pattern: re.Pattern[str]) -> Fact | None:
    """The most selective required literal(s) of `pattern`, or None if none is known."""
    return best_fact(required_facts(pattern))


# ---- choosing search keys ------------------------------------------------------------------
# The regex engine finds a pattern with a literal first byte at bytes.find speed, but a set of
# different first bytes costs several times that per byte. So keys are grouped by their first
# byte, one regex per group, and the few first bytes are chosen (a greedy set cover) to be rare
# in a sample of the log while still covering every rule.

# What logs usually look like, for byte frequencies before any of the real log is seen.
_PRIOR_TEXT = (
    b"2026-01-02T03:04:05.678Z INFO [main] GET /api/v1/items?id=42 status=200 duration_ms=12 "
    b"user=alice request_id=8f14e45f ceea167a host=web-3.example.internal\n"
    b"Jan  2 03:04:05 host sshd[1234]: Accepted publickey for deploy from 10.1.2.3 port 5555\n"
    b'{"time":"2026-01-02T03:04:05Z","level":"info","msg":"handled request","path":"/login",'
    b'"latency":0.0123,"bytes":5120}\n'
    b"127.0.0.1 - - [02/Jan/2026:03:04:05 +0000] \"POST /v2/orders HTTP/1.1\" 201 532 \"-\" "
    b"\"Mozilla/5.0 (X11; Linux x86_64)\"\n"
)
_SCAN_COST = 300.0  # an attempt at every occurrence of a first byte, relative to one pass


def byte_frequencies(sample: bytes) -> list[float]:
    """Relative frequency of each byte value in `sample`, smoothed by typical log text."""
    weight = min(len(sample) / 4096, 0.9)  # trust a real sample more the bigger it is
    prior = [_PRIOR_TEXT.count(bytes((b,))) / len(_PRIOR_TEXT) for b in range(256)]
    if not sample:
        return prior
    return [weight * sample.count(bytes((b,))) / len(sample) + (1 - weight) * prior[b]
            for b in range(256)]


@dataclass(frozen=True)
class _Option:
    """One usable search key inside a literal."""

    key: bytes
    first: frozenset[int]  # first bytes the group scan needs (both cases when folded)
    cost: float  # expected work per input byte, in units of one scan attempt


# A hit (a line decoded and tried) costs about this many scan attempts on a typical line;
# decoding and searching a longer line costs proportionally more.
_HIT_COST = 125.0
_TYPICAL_LINE = 107.0
_GOOD = 0.05  # an option costing more than this is used only when nothing better covers


class KeyChooser:
    """Picks every rule's keys so that few, rare first bytes cover all rules."""

    def __init__(self, facts: Sequence[Sequence[Fact]], sample: bytes) -> None:
        mean_line = len(sample) / max(sample.count(b"\n"), 1) if sample else _TYPICAL_LINE
        self._hit_cost = _HIT_COST * max(1.0, mean_line / _TYPICAL_LINE)
        self.facts = facts
        self.freq = byte_frequencies(sample)
        self._sample = sample
        self._folded = sample.lower()
        self._options: dict[_Lit, list[_Option]] = {}

    def options(self, lit: _Lit) -> list[_Option]:
        if lit not in self._options:
            self._options[lit] = self._make_options(lit)
        return self._options[lit]

    def _make_options(self, lit: _Lit) -> list[_Option]:
        data = lit.text.encode("utf-8")
        out = []
        total = len(self._sample) or 1
        for i in range(len(data) - min(len(data), 3) + 1):
            key, b = data[i : i + _MAX_KEY], data[i]
            first = {b, ord(chr(b).swapcase())} if lit.ci and chr(b).isalpha() else {b}
            hay, needle = (self._folded, key.lower()) if lit.ci else (self._sample, key)
            rate = hay.count(needle) / total
            cost = sum(self.freq[x] for x in first) + self._hit_cost * rate
            out.append(_Option(key, frozenset(first), cost))
        return out

    def fact_keys(self, fact: Fact, chosen: set[int], limit: float) -> tuple[float, list[
            tuple[bytes, bool]]] | None:
        total, keys = 0.0, []
        for lit in fact:
            usable = [o for o in self.options(lit) if o.first <= chosen and o.cost <= limit]
            if not usable:
                return None
            best = min(usable, key=lambda o: (o.cost, -len(o.key)))
            total += best.cost
            keys.append((best.key, lit.ci))
        return total, keys

    def covered(self, rule: int, chosen: set[int], limit: float) -> bool:
        return any(self.fact_keys(f, chosen, limit) is not None for f in self.facts[rule])

    def choose_bytes(self) -> set[int]:
        chosen: set[int] = set()
        for limit in (_GOOD, float("inf")):  # good keys first; any key for the rest
            uncovered = {r for r in range(len(self.facts)) if not self.covered(r, chosen, limit)}
            while uncovered:
                unit = self._best_unit(uncovered, chosen, limit)
                if unit is None:
                    break
                chosen |= unit
                uncovered = {r for r in uncovered if not self.covered(r, chosen, limit)}
        return chosen

    def _best_unit(self, uncovered: set[int], chosen: set[int], limit: float
                   ) -> frozenset[int] | None:
        units = {o.first for r in uncovered for f in self.facts[r] for lit in f
                 for o in self.options(lit) if o.cost <= limit} - {frozenset()}
        best: tuple[float, frozenset[int]] | None = None
        for unit in units:
            if unit <= chosen:
                continue
            trial = chosen | unit
            gain = sum(1 for r in uncovered if self.covered(r, trial, limit))
            cost = sum(1.0 + _SCAN_COST * self.freq[b] for b in unit - chosen)
            if gain and (best is None or gain / cost > best[0]):
                best = (gain / cost, unit)
        return None if best is None else best[1]

    def rule_keys(self, rule: int, chosen: set[int]) -> list[tuple[bytes, bool]] | None:
        found = [k for f in self.facts[rule] if (k := self.fact_keys(f, chosen, float("inf")))]
        return min(found, key=lambda k: k[0])[1] if found else None


def group_regex(first: int, keys: Sequence[tuple[bytes, bool]]) -> re.Pattern[bytes]:
    alternatives = []
    for key, ci in sorted(keys, key=lambda k: (-len(k[0]), k)):
        rest = re.escape(key[1:])
        alternatives.append(b"(?i:" + rest + b")" if ci and rest else rest)
    return re.compile(re.escape(bytes((first,))) + b"(?:" + b"|".join(alternatives) + b")")
