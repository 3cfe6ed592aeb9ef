"""Throttling per rule and key: `first` drops repeats in a window, `summary` also reports them.

`Throttler.decide(rule, key)` says whether a firing's event is sent. A window opens with the
first event of a (rule, key) and lasts `rule.throttle.window` seconds; later events in it are
dropped and counted. In `summary` mode a closed window that dropped anything becomes a
`Summary` (how many were dropped and their distinct details); the daemon polls
`due_summaries(now)`, composes and commits one event per summary, then calls
`summary_sent(summary)`. Until then a summary stays due, also across restarts: all state
lives in the `StateStore`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from emitter.rules.model import Rule
from emitter.state.store import StateStore

MAX_DISTINCT = 50  # distinct details a summary lists; the rest are only counted
_NS = "throttle"


@dataclass(frozen=True)
class Decision:
    send: bool
    count: int  # events of this (rule, key) in the current window, this one included
    window_start: float
    window_end: float


@dataclass(frozen=True)
class Summary:
    rule_id: str
    key: str
    count: int  # events dropped in the window (the first, sent, is not counted)
    distinct_keys: tuple[str, ...]  # distinct details of the dropped events, first seen first
    more_distinct: int  # distinct details beyond MAX_DISTINCT, counted only
    window_start: float
    window_end: float


@dataclass(frozen=True)
class Reservation:
    """One decision not yet saved: see `Throttler.reserve`."""

    rule_id: str
    key: str
    window: _Window | None  # None: the rule has no throttle
    opened: bool  # the decision opened this window (its event is the one sent)


@dataclass
class _Window:
    mode: Literal["first", "summary"]
    start: float
    end: float
    count: int = 1
    distinct: list[str] | None = None
    more: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "start": self.start, "end": self.end, "count": self.count,
                "distinct": self.distinct or [], "more": self.more}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Window:
        return cls(data["mode"], data["start"], data["end"], data["count"],
                   list(data["distinct"]), data["more"])


def _wkey(rule_id: str, key: str) -> str:
    return "w:" + json.dumps([rule_id, key])


def _skey(rule_id: str, key: str, start: float) -> str:
    return "s:" + json.dumps([rule_id, key, start])


class Throttler:
    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._pending: dict[str, Summary] = {}
        for skey, data in store.items(_NS).items():
            ident = json.loads(skey[2:])
            if skey.startswith("w:"):
                self._windows[(ident[0], ident[1])] = _Window.from_json(data)
            elif skey.startswith("s:"):
                self._pending[skey] = _summary_from_json(data)

    def decide(
        self, rule: Rule, key: str, now: float | None = None, *, detail: str | None = None
    ) -> Decision:
        """Send or drop one event of `rule` with throttle key `key` (a rule without a
        throttle always sends), and save the window now. `detail` is what a summary lists;
        it defaults to `key`. The pipeline uses `reserve` instead."""
        decision, reservation = self.reserve(rule, key, now, detail=detail)
        self.confirm([reservation])
        return decision

    def reserve(
        self, rule: Rule, key: str, now: float | None = None, *, detail: str | None = None
    ) -> tuple[Decision, Reservation]:
        """`decide`, but the window's change is held until `confirm` (the event it admits
        is durable) or undone by `cancel` (the outbox refused it), so a refused event never
        opens a window that throttles its own retry."""
        when = self._clock() if now is None else now
        spec = rule.throttle
        if spec is None:
            return Decision(True, 1, when, when), Reservation(rule.id, key, None, False)
        with self._lock:
            puts: dict[str, Any] = {}
            window = self._windows.get((rule.id, key))
            if window is not None and when >= window.end:
                self._close(rule.id, key, window, puts)
                window = None
            opened = window is None
            if window is None:
                window = _Window(spec.mode, when, when + spec.window)
                self._windows[(rule.id, key)] = window
            else:
                window.count += 1
                if window.mode == "summary":
                    self._note_detail(window, key if detail is None else detail)
            if puts:  # a closed window's summary is due whatever becomes of this event
                self._store.put_many(_NS, puts, delete=[_wkey(rule.id, key)])
            decision = Decision(opened, window.count, window.start, window.end)
            return decision, Reservation(rule.id, key, window, opened)

    def confirm(self, reservations: Iterable[Reservation]) -> None:
        """The events these reservations admitted (or dropped) are settled: save the
        windows as they now stand."""
        with self._lock:
            puts = {_wkey(r.rule_id, r.key): r.window.to_json() for r in reservations
                    if r.window is not None and self._windows.get((r.rule_id, r.key))
                    is r.window}
            if puts:
                self._store.put_many(_NS, puts)

    def cancel(self, reservations: Iterable[Reservation]) -> None:
        """Undo reservations whose events were refused: a window they opened is forgotten,
        a count they added is taken back."""
        with self._lock:
            for r in reservations:
                if r.window is None or self._windows.get((r.rule_id, r.key)) is not r.window:
                    continue
                if r.opened and r.window.count <= 1:
                    del self._windows[(r.rule_id, r.key)]
                else:
                    r.window.count = max(1, r.window.count - 1)

    @staticmethod
    def _note_detail(window: _Window, detail: str) -> None:
        seen = window.distinct if window.distinct is not None else []
        if detail not in seen:
            if len(seen) < MAX_DISTINCT:
                seen.append(detail)
            else:
                window.more += 1  # approximate: a detail past the cap may be counted twice
        window.distinct = seen

    def _close(self, rule_id: str, key: str, window: _Window, puts: dict[str, Any]) -> None:
        """Turn an ended window into a pending summary (in `puts`) when it dropped events."""
        del self._windows[(rule_id, key)]
        if window.mode == "summary" and window.count > 1:
            summary = Summary(rule_id, key, window.count - 1, tuple(window.distinct or ()),
                              window.more, window.start, window.end)
            skey = _skey(rule_id, key, window.start)
            self._pending[skey] = summary
            puts[skey] = _summary_to_json(summary)

    def due_summaries(self, now: float | None = None) -> list[Summary]:
        """Summaries of every ended window not yet confirmed with `summary_sent`; also
        forgets ended windows of mode `first`."""
        when = self._clock() if now is None else now
        with self._lock:
            puts: dict[str, Any] = {}
            ended = [(ident, w) for ident, w in self._windows.items() if when >= w.end]
            for (rule_id, key), window in ended:
                self._close(rule_id, key, window, puts)
            if ended:
                self._store.put_many(_NS, puts, delete=[_wkey(r, k) for (r, k), _ in ended])
            return sorted(self._pending.values(), key=lambda s: (s.window_end, s.rule_id, s.key))

    def summary_sent(self, summary: Summary) -> None:
        """The daemon committed the summary's event: forget it."""
        skey = _skey(summary.rule_id, summary.key, summary.window_start)
        with self._lock:
            if self._pending.pop(skey, None) is not None:
                self._store.delete(_NS, [skey])


def _summary_to_json(s: Summary) -> dict[str, Any]:
    return {"rule_id": s.rule_id, "key": s.key, "count": s.count,
            "distinct": list(s.distinct_keys), "more": s.more_distinct,
            "start": s.window_start, "end": s.window_end}


def _summary_from_json(d: dict[str, Any]) -> Summary:
    return Summary(d["rule_id"], d["key"], d["count"], tuple(d["distinct"]), d["more"],
                   d["start"], d["end"])
