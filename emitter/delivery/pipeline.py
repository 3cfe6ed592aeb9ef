"""The daemon's dispatch: firings -> rendered, checked, throttled events -> one outbox batch.

`Pipeline.dispatch(firings)` is the `Dispatch` the triggers call. It renders each firing
(including `when` and `foreach`), checks every event against the event schema (an invalid
one is logged with its rule id and JSON path, counted, never sent), applies the rule's
throttle, and commits every surviving event to the outbox in one group-committed batch. It
returns only once they are durable; OutboxFullError propagates so the trigger does not
acknowledge what was refused. Summary events of `summary` throttles are built here too.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from emitter.counters import Metrics
from emitter.daemon.logs import log_event
from emitter.delivery.throttle import Reservation, Summary, Throttler
from emitter.errors import EmitterError, InvalidError
from emitter.events.check import check_event
from emitter.events.encode import encode_event
from emitter.events.limits import TEXT_MAX, TITLE_MAX
from emitter.firing import Firing
from emitter.problems import Problem
from emitter.rules.model import MISSING, Rule
from emitter.state.store import StateStore

if TYPE_CHECKING:
    from emitter.delivery.backend import Backend
from emitter.templates.compiler import CompiledRule
from emitter.templates.render import (
    RenderContext,
    RenderOutcome,
    render,
    render_throttle_key,
)

log = logging.getLogger(__name__)

SUMMARY_KEYS_SHOWN = 20
ONCE_KEYS_KEPT = 7 * 86400.0  # seconds a fired schedule slot is remembered fleet-wide


@dataclass(frozen=True)
class RuleSet:
    """The rules the daemon runs, by id, with their compiled templates."""

    rules: Mapping[str, Rule] = field(default_factory=dict)
    compiled: Mapping[str, CompiledRule] = field(default_factory=dict)

    @classmethod
    def of(cls, compiled: Sequence[CompiledRule]) -> RuleSet:
        return cls({c.rule.id: c.rule for c in compiled}, {c.rule.id: c for c in compiled})


@dataclass
class _Batch:
    items: list[tuple[str, bytes]] = field(default_factory=list)
    logged: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    firsts: dict[str, Any] = field(default_factory=dict)  # summary-mode first events
    summaries: list[Summary] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)  # saved only on commit
    counts: collections.Counter[tuple[str, str]] = field(
        default_factory=collections.Counter)  # (counter, rule id): added once per dispatch


# Told of every invalid firing or event: (rule id, trigger, the problem). `emitter test`
# collects them; the daemon's counting and logging happen here either way.
InvalidObserver = Callable[[str, str, Problem], None]


class Enqueue(Protocol):
    def enqueue(self, items: Sequence[tuple[str, bytes]]) -> Any: ...


def context_factory(settings_hostname: str, unified_tags: tuple[str, ...],
                    environ: Mapping[str, str]) -> Callable[[float], RenderContext]:
    """RenderContext for a firing at `at` (POSIX seconds); the firings of one batch share an
    `at`, so the last context is reused while `at` stays the same (contexts are immutable)."""
    last: list[tuple[float, RenderContext]] = []

    def make(at: float) -> RenderContext:
        seen = last[-1] if last else None
        if seen is not None and seen[0] == at:
            return seen[1]
        ctx = RenderContext(now=datetime.fromtimestamp(at, timezone.utc),
                            hostname=settings_hostname, unified_tags=unified_tags,
                            environ=environ)
        last[:] = [(at, ctx)]  # one slice assignment: other threads see the old or the new
        return ctx
    return make


class Pipeline:
    """Routes firings through render -> check -> throttle -> outbox; see the module doc."""

    def __init__(
        self,
        ruleset: RuleSet,
        outbox: Enqueue,
        *,
        metrics: Metrics,
        context: Callable[[float], RenderContext],
        throttler: Throttler | None = None,
        store: StateStore | None = None,
        on_invalid: InvalidObserver | None = None,
        log_events: bool = True,
        backend: Backend | None = None,
    ) -> None:
        """`on_invalid` is told of each invalid firing or event; `log_events=False` keeps the
        per-event log lines (`emitter.event`) off, for runs that are not a daemon's.
        `backend` (emitter.delivery.backend) makes each dispatch one transaction and a schedule
        slot fire once across the fleet."""
        self._ruleset = ruleset
        self._outbox = outbox
        self._metrics = metrics
        self._context = context
        self._throttler = throttler
        self._store = store  # keeps the first event of each summary window across restarts
        self._on_invalid = on_invalid
        self._log = log_event if log_events else _silent
        self._backend = backend

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def swap(self, ruleset: RuleSet) -> None:
        """Use a new rule set from the next firing on (reload)."""
        self._ruleset = ruleset

    def dispatch(self, firings: Sequence[Firing]) -> None:
        """The triggers' `Dispatch`: returns once every surviving event is durable."""
        batch = _Batch()
        try:
            with self._transaction():
                ruleset = self._ruleset
                for firing in firings:
                    compiled = ruleset.compiled.get(firing.rule_id)
                    if compiled is None:
                        log.warning("firing for an unknown rule dropped",
                                    extra={"rule": firing.rule_id})
                        continue
                    if not self._first_in_fleet(firing):
                        continue
                    batch.counts["fired", compiled.rule.id] += 1
                    self._one(compiled, firing, batch)
                self._commit(batch)
        finally:
            self._metrics.add(batch.counts)

    def _transaction(self) -> AbstractContextManager[None]:
        return self._backend.batch() if self._backend is not None else nullcontext()

    def _first_in_fleet(self, firing: Firing) -> bool:
        """A schedule slot fires once across every replica sharing the backend: the slot is
        a unique key claimed in the batch's transaction."""
        if self._backend is None or firing.trigger != "schedule":
            return True
        slot = firing.variables.get("scheduled_timestamp")
        return slot is None or self._backend.claim_once(
            f"schedule:{firing.rule_id}:{slot}", ONCE_KEYS_KEPT)

    def _one(self, compiled: CompiledRule, firing: Firing, batch: _Batch) -> None:
        rule, trigger = compiled.rule, firing.trigger
        at = firing.at or time.time()
        ctx = self._context(at)
        outcome = self._render(compiled, firing, ctx)
        if outcome is None:
            return
        for problem in outcome.problems:
            if problem.is_error:
                self._invalid(rule.id, trigger, problem)
        if outcome.skipped is not None:
            self._metrics.inc(rule.id, "skipped")
            self._log(rule.id, trigger, "skipped", level=logging.DEBUG,
                      fields={"why": outcome.skipped})
            return
        key: str | None = None
        for event in outcome.events:
            batch.counts["rendered", rule.id] += 1
            errors = [p for p in check_event(event, now=ctx.now, rule=rule) if p.is_error]
            if errors:
                for problem in errors:
                    self._invalid(rule.id, trigger, problem)
                continue
            if rule.throttle is not None and self._throttler is not None:
                if key is None:
                    key = self._throttle_key(compiled, firing, ctx)
                    if key is None:
                        return
                if not self._admit(rule, key, at, event, trigger, batch):
                    continue
            batch.items.append((rule.id, encode_event(event)))
            batch.logged.append((rule.id, trigger, {"title": event.get("title", "")}))

    def _render(self, compiled: CompiledRule, firing: Firing,
                ctx: RenderContext) -> RenderOutcome | None:
        """The firing's events; None when rendering failed (e.g. `foreach` over a missing
        key): that is an invalid firing of this rule only, counted and logged with its id,
        never an error of the trigger (so other rules on it still fire, a webhook sender
        still gets its answer, a stdin line is not retried)."""
        rule = compiled.rule
        try:
            return render(compiled, _with_defaults(rule, firing.variables), ctx)
        except EmitterError as exc:
            problems = getattr(exc, "problems", ()) or (Problem(str(exc), check="template"),)
        except Exception as exc:  # noqa: BLE001 - a render bug must not fail the whole batch
            log.debug("rendering rule %s failed", rule.id, exc_info=True)
            problems = (Problem(f"rendering failed: {type(exc).__name__}: {exc}",
                                check="template"),)
        for problem in problems:
            self._invalid(rule.id, firing.trigger, problem)
        return None

    def _throttle_key(self, compiled: CompiledRule, firing: Firing,
                      ctx: RenderContext) -> str | None:
        try:
            return render_throttle_key(compiled, firing.variables, ctx)
        except InvalidError as exc:
            for problem in exc.problems or (Problem(str(exc), check="template"),):
                self._invalid(compiled.rule.id, firing.trigger, problem)
            return None

    def _admit(self, rule: Rule, key: str, at: float, event: Mapping[str, Any], trigger: str,
               batch: _Batch) -> bool:
        assert self._throttler is not None
        decision, held = self._throttler.reserve(rule, key, at,
                                                 detail=str(event.get("title", key)))
        batch.reservations.append(held)
        if decision.send:
            if rule.throttle is not None and rule.throttle.mode == "summary":
                batch.firsts[_first_key(rule.id, key, decision.window_start)] = dict(event)
            return True
        self._metrics.inc(rule.id, "throttled")
        self._log(rule.id, trigger, "throttled",
                  fields={"key": key, "count": decision.count})
        return False

    def _invalid(self, rule_id: str, trigger: str, problem: Problem) -> None:
        self._metrics.inc(rule_id, "invalid")
        fields: dict[str, Any] = {"error": problem.message, "check": problem.check}
        if problem.json_path:
            fields["path"] = problem.json_path
        if problem.location:
            fields["at"] = str(problem.location)
        self._log(rule_id, trigger, "invalid", level=logging.WARNING, fields=fields)
        if self._on_invalid is not None:
            self._on_invalid(rule_id, trigger, problem)

    def _commit(self, batch: _Batch) -> None:
        """Commit the batch's events, then save the throttle windows and summary firsts
        their decisions made; when the outbox refuses, those decisions are undone, so the
        trigger's retry of the same input is decided afresh."""
        try:
            if batch.items:
                self._outbox.enqueue(batch.items)
        except BaseException as exc:
            if self._throttler is not None:
                self._throttler.cancel(batch.reservations)
            if isinstance(exc, EmitterError):
                self._refused(batch, exc)
            raise
        try:
            if self._throttler is not None and batch.reservations:
                self._throttler.confirm(batch.reservations)
            if batch.firsts and self._store is not None:
                self._store.put_many(_FIRSTS, batch.firsts)
        except Exception as exc:  # noqa: BLE001 - the events are durable: never re-dispatch
            # The windows hold in memory; only a restart before the next save forgets them.
            log.error("throttle state could not be saved (%s: %s); kept in memory",
                      type(exc).__name__, exc)
        for rule_id, trigger, fields in batch.logged:
            batch.counts["queued", rule_id] += 1
            self._log(rule_id, trigger, "queued", fields=fields)

    def _refused(self, batch: _Batch, exc: EmitterError) -> None:
        for rule_id, trigger, _ in batch.logged:
            self._metrics.inc(rule_id, "refused")
            self._log(rule_id, trigger, "refused", level=logging.ERROR,
                      fields={"error": str(exc)})

    # ---- summaries (throttle mode `summary`) -------------------------------------------

    def flush_summaries(self, now: float | None = None) -> int:
        """Commit one summary event per ended window that dropped events; returns how many.

        A summary is forgotten only after its event is durable, so a crash re-sends it
        rather than loses it."""
        if self._throttler is None:
            return 0
        with self._transaction():  # shared: the summaries stay this replica's until queued
            return self._flush_summaries(self._throttler, time.time() if now is None else now)

    def _flush_summaries(self, throttler: Throttler, at: float) -> int:
        due = throttler.due_summaries(at)
        if not due:
            return 0
        batch = _Batch()
        ctx = self._context(at)
        for summary in due:
            first = self._first_event(summary)
            event = summary_event(summary, first)
            rule = self._ruleset.rules.get(summary.rule_id)
            errors = [p for p in check_event(event, now=ctx.now, rule=rule) if p.is_error]
            if errors:
                for problem in errors:
                    self._invalid(summary.rule_id, "throttle", problem)
            else:
                batch.items.append((summary.rule_id, encode_event(event)))
                batch.logged.append((summary.rule_id, "throttle",
                                     {"summary_of": summary.count, "key": summary.key}))
            batch.summaries.append(summary)
        self._commit(batch)
        for summary in batch.summaries:
            throttler.summary_sent(summary)
        if self._store is not None:
            self._store.delete(_FIRSTS, [_first_key(s.rule_id, s.key, s.window_start)
                                         for s in batch.summaries])
        return len(batch.items)

    def _first_event(self, summary: Summary) -> Mapping[str, Any] | None:
        if self._store is None:
            return None
        found = self._store.get(_FIRSTS, _first_key(summary.rule_id, summary.key,
                                                    summary.window_start))
        return found if isinstance(found, dict) else None


_FIRSTS = "throttle-first"


def _silent(*args: Any, **kwargs: Any) -> None:
    """The event log of a pipeline built with `log_events=False`."""


def _with_defaults(rule: Rule, variables: Mapping[str, Any]) -> Mapping[str, Any]:
    """The firing's variables plus the defaults of params the trigger did not provide."""
    missing = {p.name: p.default for p in rule.params
               if p.default is not MISSING and p.name not in variables}
    return {**missing, **variables} if missing else variables


def _first_key(rule_id: str, key: str, start: float) -> str:
    return json.dumps([rule_id, key, start])


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _window_text(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def summary_event(summary: Summary, first: Mapping[str, Any] | None) -> dict[str, Any]:
    """The event sent when a `summary` window ends: how many more happened, which ones.

    It keeps the first event's tags, host, source, priority, alert type and aggregation key
    (so Datadog groups it with the first) and lists the distinct titles folded into it.
    """
    first = first or {}
    span = _window_text(summary.window_end - summary.window_start)
    base = str(first.get("title") or summary.rule_id)
    title = _fit(f"{summary.count} more in {span}: {base}", TITLE_MAX)
    shown = list(summary.distinct_keys[:SUMMARY_KEYS_SHOWN])
    hidden = len(summary.distinct_keys) - len(shown) + summary.more_distinct
    listing = "\n".join(f"- {d}" for d in shown) + (f"\n- and {hidden} more" if hidden else "")
    text = (f"{summary.count} more event(s) of rule {summary.rule_id} (throttle key "
            f"{summary.key!r}) happened within {span} after the first one and were not "
            f"sent.\n\nDistinct ones:\n{listing}")
    if first.get("text"):
        text += "\n\nThe first event said:\n" + str(first["text"])
    event: dict[str, Any] = {"title": title, "text": _fit(text, TEXT_MAX)}
    for name in ("priority", "host", "alert_type", "aggregation_key", "source_type_name"):
        if name in first:
            event[name] = first[name]
    event["tags"] = [*first.get("tags", []), "throttle:summary"]
    event["date_happened"] = int(summary.window_end)
    return event
