"""The file trigger's optional Hyperscan prefilter: which lines of a chunk may match which rules.

Used by `LineMatcher` when the `hyperscan` extra is installed and `EMITTER_HYPERSCAN` is not
`0`/`off`. Each rule's Python regex is translated from its parse tree into a byte-level
Hyperscan pattern that matches *at least* wherever Python's would on a decoded line: classes
gain "any non-ASCII bytes" where Python's Unicode classes may match a non-ASCII character,
a final `$` allows the `\\r` the decoder strips, lookarounds and `\\b` are dropped, a
backreference becomes "anything on the line". Every pattern ends by taking the line's newline
(a `[^\\n]*\\n` tail), so Hyperscan reports a rule at most once per line, just past its
newline, in one scan of the whole chunk. The reported
lines are then tried with the rule's real `re` pattern, which alone decides the match and
gives the named groups: the semantics stay `re`'s. A rule that cannot be translated (or that
Hyperscan refuses) is left to the pure-`re` path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from re import _compiler as sre_compile  # type: ignore[attr-defined]
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

_hs: Any
try:  # the optional extra: pip install 'dd-event-emitter[hyperscan]'
    import hyperscan as _hs
except ImportError:  # the default install: pure re
    _hs = None

SWITCH = "EMITTER_HYPERSCAN"  # "0", "off", "no" or "false" turn the accelerator off
_OFF = frozenset({"0", "off", "no", "false"})
# Non-ASCII characters Python's IGNORECASE matches to an ASCII letter (tests/test_hsmatch.py
# checks this table against every code point).
CI_PARTNERS = {"i": "\u0130\u0131", "s": "\u017f", "k": "\u212a"}
_NONASCII = b"[\\x80-\\xff]+"  # one non-ASCII character, over-approximated (any bytes >= 0x80)
_TAIL = b"[^\\n]*\\n"
_ASCII = 256  # re.ASCII
_CI = 2  # re.IGNORECASE
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None))
_BEGIN = (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING, sre_c.AT_BEGINNING_LINE)
_END = (sre_c.AT_END, sre_c.AT_END_STRING, sre_c.AT_END_LINE)
_ONE_CHAR = (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.ANY, sre_c.IN)


def installed() -> bool:
    return _hs is not None


def available() -> bool:
    """True when hyperscan is importable and not switched off by `EMITTER_HYPERSCAN`."""
    return _hs is not None and os.environ.get(SWITCH, "").strip().lower() not in _OFF


class Untranslatable(Exception):
    """A construct the translation does not handle: the rule stays on the `re` path."""


class _Char:
    """What one single-character node of a Python pattern may match, in bytes."""

    def __init__(self, ascii_set: frozenset[int], nonascii: bytes | None) -> None:
        self.ascii_set = ascii_set - {10}  # a line never holds a newline
        self.nonascii = nonascii  # None, one character's exact UTF-8 bytes, or _NONASCII
        if not self.ascii_set and nonascii is None:
            raise Untranslatable("a character no line can hold")

    def pattern(self) -> bytes:
        alts = [_byte_class(self.ascii_set)] if self.ascii_set else []
        if self.nonascii is not None:
            alts.append(self.nonascii)
        return alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"

    def repeated(self, low: int) -> bytes | None:
        """`self` repeated `low` or more times, as one byte class when that is exact enough."""
        if self.nonascii != _NONASCII:
            return None
        body = _byte_class(self.ascii_set | frozenset(range(0x80, 0x100)))
        return body + (b"*" if low == 0 else b"+" if low == 1 else b"{%d,}" % low)


def _byte(value: int) -> bytes:
    return bytes((value,)) if bytes((value,)).isalnum() else b"\\x%02x" % value


def _byte_class(values: Iterable[int]) -> bytes:
    ordered = sorted(values)
    if len(ordered) == 1:
        return _byte(ordered[0])
    parts, start = [], 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        lo, hi = ordered[start], ordered[end]
        parts.append(b"\\x%02x" % lo if lo == hi else b"\\x%02x-\\x%02x" % (lo, hi))
        start = end + 1
    return b"[" + b"".join(parts) + b"]"


class _Translator:
    """Python parse tree → Hyperscan pattern bytes that over-approximate it on one line."""

    def __init__(self) -> None:
        self._chars: dict[tuple[Any, ...], _Char] = {}

    def translate(self, pattern: str, flags: int) -> bytes:
        try:
            parsed = sre_parse.parse(pattern, flags)
        except Exception as exc:  # noqa: BLE001 - unparsable here: the re path decides
            raise Untranslatable(str(exc)) from exc
        return self._final(list(parsed), parsed.state.flags)

    def _final(self, items: list[tuple[Any, Any]], flags: int) -> bytes:
        """`items` in final position: every way through them ends by taking the newline, as
        `\\r?\\n` where the pattern ends with `$` (Hyperscan has no `$` inside a pattern) and
        as `[^\\n]*\\n` elsewhere."""
        if not items:
            return _TAIL
        head, (op, av) = self._seq(items[:-1], flags), items[-1]
        if op is sre_c.AT and av in _END:
            return head + b"\\r?\\n"
        if op is sre_c.BRANCH:
            return head + b"(?:" + b"|".join(self._final(list(alt), flags) for alt in av[1]) + b")"
        if op is sre_c.SUBPATTERN:
            _group, add, remove, sub = av
            return head + b"(?:" + self._final(list(sub), (flags | add) & ~remove) + b")"
        return head + self._item(op, av, flags) + _TAIL

    def _seq(self, items: Iterable[tuple[Any, Any]], flags: int) -> bytes:
        return b"".join(self._item(op, av, flags) for op, av in items)

    def _item(self, op: Any, av: Any, flags: int) -> bytes:
        if op in _ONE_CHAR:
            return self.char(op, av, flags).pattern()
        if op is sre_c.SUBPATTERN:
            _group, add, remove, sub = av
            return b"(?:" + self._seq(sub, (flags | add) & ~remove) + b")"
        if op in _REPEATS:
            return self._repeat(av, flags)
        if op is sre_c.BRANCH:
            return b"(?:" + b"|".join(self._seq(alt, flags) for alt in av[1]) + b")"
        if op is sre_c.AT:
            if av in _END:
                raise Untranslatable("`$` before the end of the pattern")
            return b"^" if av in _BEGIN else b""  # \b, \B: dropped
        if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            return b""  # a lookaround only narrows the match
        if op is sre_c.GROUPREF:
            return b"[^\\n]*"  # the referenced text is somewhere on the same line
        if op is sre_c.GROUPREF_EXISTS:
            _group, yes, no = av
            return b"(?:" + self._seq(yes, flags) + b"|" + self._seq(no or [], flags) + b")"
        if op is sre_c.ATOMIC_GROUP:
            return b"(?:" + self._seq(av, flags) + b")"
        raise Untranslatable(f"no translation for {op}")

    def _repeat(self, av: Any, flags: int) -> bytes:
        low, high, sub = av
        if high == 0:
            return b""
        items = list(sub)
        if high is sre_c.MAXREPEAT and len(items) == 1 and items[0][0] in _ONE_CHAR:
            simple = self.char(items[0][0], items[0][1], flags).repeated(low)
            if simple is not None:
                return simple
        body = b"(?:" + self._seq(items, flags) + b")"
        if high is sre_c.MAXREPEAT:
            return body + (b"*" if low == 0 else b"+" if low == 1 else b"{%d,}" % low)
        return body + (b"{%d}" % low if low == high else b"{%d,%d}" % (low, high))

    def char(self, op: Any, av: Any, flags: int) -> _Char:
        key = (op, repr(av), flags & (_CI | _ASCII))
        if key not in self._chars:
            self._chars[key] = _make_char(op, av, flags)
        return self._chars[key]


def _make_char(op: Any, av: Any, flags: int) -> _Char:
    ci, ascii_only = bool(flags & _CI), bool(flags & _ASCII)
    if op is sre_c.LITERAL and not ci:
        if av < 0x80:
            return _Char(frozenset({av}), None)
        if av == 0xFFFD or 0xD800 <= av < 0xE000:  # what the decoder puts for bad bytes
            return _Char(frozenset(), _NONASCII)
        return _Char(frozenset(), b"".join(_byte(b) for b in chr(av).encode("utf-8")))
    state = sre_parse.State()
    state.flags = flags
    probe = sre_compile.compile(sre_parse.SubPattern(state, [(op, av)]), flags)
    ascii_set = frozenset(c for c in range(128) if probe.fullmatch(chr(c)))
    return _Char(ascii_set, _NONASCII if _may_match_nonascii(op, av, ascii_set, ci,
                                                             ascii_only) else None)


def _may_match_nonascii(op: Any, av: Any, ascii_set: frozenset[int], ci: bool,
                        ascii_only: bool) -> bool:
    if ci and not ascii_only and any(chr(c).lower() in CI_PARTNERS for c in ascii_set):
        return True
    if op is sre_c.LITERAL:
        return bool(av >= 0x80)
    if op is not sre_c.IN:
        return True  # ANY, NOT_LITERAL
    for item_op, item_av in av:
        if item_op is sre_c.NEGATE:
            return True
        if item_op is sre_c.LITERAL and item_av >= 0x80:
            return True
        if item_op is sre_c.RANGE and item_av[1] >= 0x80:
            return True
        if item_op is sre_c.CATEGORY and (not ascii_only or "NOT" in str(item_av)):
            return True
    return False


def translate(pattern: str, flags: int) -> bytes:
    """The Hyperscan pattern for one rule's regex; raises Untranslatable."""
    return _Translator().translate(pattern, flags)


class Prefilter:
    """One Hyperscan database for the rules it took; `candidates` scans a chunk with it."""

    def __init__(self, db: Any, rules: Iterable[int]) -> None:
        self._db = db
        self._lock = threading.Lock()  # one scratch space: one scan at a time
        self.rules = frozenset(rules)

    def candidates(self, chunk: bytes, lines: dict[int, set[int]]) -> None:
        """Add to `lines` (line start → rule indices) every line Hyperscan reports."""
        found: list[tuple[int, int]] = []
        add = found.append

        def on_match(rule: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            add((end, rule))

        with self._lock:
            self._db.scan(chunk, match_event_handler=on_match)
        rfind, starts = chunk.rfind, dict[int, int]()
        for end, rule in found:
            start = starts.get(end)
            if start is None:
                start = starts[end] = rfind(b"\n", 0, end - 1) + 1
            lines.setdefault(start, set()).add(rule)


_BUILT: dict[tuple[tuple[tuple[str, int], ...], bool], Prefilter | None] = {}
_BUILT_KEPT = 64  # rule sets whose prefilter is kept (compiling is the costly part)
_BUILT_LOCK = threading.Lock()


def build(rules: Sequence[tuple[str, int]], force: bool = False) -> Prefilter | None:
    """A prefilter for the translatable ones of `rules` ((pattern, flags) by index), or None
    when hyperscan is off (`force`: unless merely switched off) or takes none of them. The
    same rule set is compiled once per process (`emitter test` builds a matcher per case, a
    reload one per file); a Prefilter is safe to share (its scans take turns)."""
    if not (available() or (force and installed())):
        return None
    key = (tuple(rules), force)
    with _BUILT_LOCK:
        if key in _BUILT:
            return _BUILT[key]
    built = _build(rules)
    with _BUILT_LOCK:
        if len(_BUILT) >= _BUILT_KEPT:
            _BUILT.clear()
        _BUILT[key] = built
    return built


_COMPILING: set[tuple[tuple[str, int], ...]] = set()


def compiled(rules: Sequence[tuple[str, int]]) -> tuple[Prefilter | None, bool]:
    """(the prefilter, True) when this rule set's compile is over (the prefilter may be None:
    Hyperscan took none of them, or it is off); (None, False) while it is yet to be done."""
    if not available():
        return None, True
    with _BUILT_LOCK:
        key = (tuple(rules), False)
        return (_BUILT[key], True) if key in _BUILT else (None, False)


def compile_soon(rules: Sequence[tuple[str, int]]) -> bool:
    """True while this rule set's prefilter is still to come: the first call starts its
    compile on a background thread, so a daemon serves (on the pure-`re` path, which finds
    the same hits) without waiting; `compiled` then has it."""
    if not available():
        return False
    key = tuple(rules)
    with _BUILT_LOCK:
        if (key, False) in _BUILT:
            return False
        if key in _COMPILING:
            return True
        _COMPILING.add(key)

    def compile_it() -> None:
        try:
            build(key)
        finally:
            with _BUILT_LOCK:
                _COMPILING.discard(key)

    threading.Thread(target=compile_it, name="hyperscan-compile", daemon=True).start()
    return True


def _build(rules: Sequence[tuple[str, int]]) -> Prefilter | None:
    translator = _Translator()
    patterns = []
    for index, (pattern, flags) in enumerate(rules):
        try:
            patterns.append((index, translator.translate(pattern, flags)))
        except Untranslatable:
            continue
    db, accepted = _compile(patterns)
    return Prefilter(db, accepted) if accepted else None


def _compile(patterns: list[tuple[int, bytes]]) -> tuple[Any, list[int]]:
    """A database of the patterns Hyperscan takes: all at once, else the halves (down to the
    single patterns it refuses) and then the accepted ones together."""
    accepted = [i for i, _ in patterns]
    db = _try_compile(patterns)
    if db is None and patterns:
        accepted = _accepted(patterns)
        kept = set(accepted)
        db = _try_compile([(i, p) for i, p in patterns if i in kept])
    return db, accepted if db is not None else []


def _try_compile(patterns: Sequence[tuple[int, bytes]]) -> Any:
    assert _hs is not None
    if not patterns:
        return None
    db = _hs.Database()
    try:
        db.compile(expressions=[p for _, p in patterns], ids=[i for i, _ in patterns],
                   flags=[_hs.HS_FLAG_MULTILINE | _hs.HS_FLAG_PREFILTER] * len(patterns))
    except _hs.error:
        return None
    return db


def _accepted(patterns: list[tuple[int, bytes]]) -> list[int]:
    if len(patterns) == 1:
        return [] if _try_compile(patterns) is None else [patterns[0][0]]
    half = len(patterns) // 2
    out = []
    for part in (patterns[:half], patterns[half:]):
        out += [i for i, _ in part] if _try_compile(part) is not None else _accepted(part)
    return out
