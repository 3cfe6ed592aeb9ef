"""Replaying history through rules: a saved log through `file` rules, or saved webhook
payloads through `webhook` rules, with nothing sent and no state kept.

Lines are matched with the file trigger's own `LineMatcher` (one pass for every rule, as the
daemon reads a file once) and each hit goes through the daemon's `Pipeline` with an
in-memory outbox and throttle store (or, with `state_url`, the shared backend's throttle on
private temporary tables: emitter.ruletest.scratch). The clock is the log's own: when a
rule's regex names a `ts` or `timestamp` group, that line's time (see emitter.ruletest.logtime
for the formats) drives `now`, `date_happened` and the throttle windows. Lines without a
usable time take the last time seen (the replay's start time before any). Windows still open
when the log ends are closed, so `summary` throttles report what they folded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from typing import Any, BinaryIO

from emitter.counters import Metrics
from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
from emitter.firing import Firing
from emitter.problems import Location, Problem
from emitter.rules.jsonvalue import parse_json
from emitter.rules.model import FileTrigger, WebhookTrigger
from emitter.ruletest.logtime import TIMESTAMP_GROUPS, parse_log_time
from emitter.ruletest.runner import MemoryOutbox
from emitter.ruletest.scratch import open_scratch
from emitter.templates.compiler import CompiledRule
from emitter.triggers.kinds.file import line_variables
from emitter.triggers.kinds.webhook import request_variables
from emitter.triggers.linematch import LineHit, LineMatcher, LineRule

CHUNK_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 1 << 20  # the same order as the webhook server's body limit
COUNTERS = ("matched", "events", "skipped", "throttled", "invalid", "out_of_range")
# Told how much input has been read: bytes of a log, or payload files; for a progress display.
Progress = Callable[[int], None]


def _no_progress(_n: int) -> None:
    return None


@dataclass(frozen=True)
class ReplayOptions:
    since: float | None = None
    until: float | None = None
    default_year: int | None = None  # for syslog times, which carry no year
    default_tz: tzinfo = timezone.utc  # for times written without a zone
    hostname: str = "replay"
    environ: Mapping[str, str] = field(default_factory=dict)
    state_url: str | None = None  # throttle on PostgreSQL (nothing kept); None: in memory


@dataclass(frozen=True)
class ReplayResult:
    events: tuple[tuple[str, dict[str, Any]], ...]  # (rule id, event body), in order
    counts: Mapping[str, Mapping[str, int]]  # rule id -> counter -> value
    problems: tuple[Problem, ...] = ()


class _Replayer:
    """One replay: a pipeline over in-memory state, driven by the input's own clock."""

    def __init__(self, compiled: Sequence[CompiledRule], options: ReplayOptions) -> None:
        self.options = options
        self.clock_now = time.time()
        self.scratch = open_scratch(options.state_url)
        self.store = self.scratch.store
        self.outbox = MemoryOutbox()
        self.metrics = Metrics()
        self.pipeline = Pipeline(
            RuleSet.of(list(compiled)), self.outbox, metrics=self.metrics,
            context=context_factory(options.hostname, (), options.environ),
            throttler=self.scratch.throttler(lambda: self.clock_now), store=self.store)
        self.rule_ids = [c.id for c in compiled]
        self.rules = {c.id: c.rule for c in compiled}
        self.extra: dict[str, dict[str, int]] = {r: {} for r in self.rule_ids}
        self.problems: list[Problem] = []
        self.started = self.clock_now
        self.latest: float | None = None  # the last input time seen
        self.last_end: float | None = None  # the latest input time, for closing windows
        self.longest_window = max((c.rule.throttle.window for c in compiled
                                   if c.rule.throttle is not None), default=0.0)

    def count(self, rule_id: str, name: str) -> None:
        counts = self.extra[rule_id]
        counts[name] = counts.get(name, 0) + 1

    def in_range(self, at: float | None) -> bool:
        since, until = self.options.since, self.options.until
        if since is None and until is None:
            return True
        if at is None:
            return False
        return (since is None or at >= since) and (until is None or at < until)

    def fire(self, firing: Firing) -> None:
        self.clock_now = firing.at
        self.latest = firing.at
        self.last_end = firing.at if self.last_end is None else max(self.last_end, firing.at)
        self.pipeline.flush_summaries(firing.at)
        self.pipeline.dispatch([firing])

    def finish(self) -> ReplayResult:
        if self.last_end is not None:
            self.pipeline.flush_summaries(self.last_end + self.longest_window + 1)
        self.scratch.close()
        events = tuple((rule_id, json.loads(body)) for rule_id, body in self.outbox.items)
        counts: dict[str, dict[str, int]] = {}
        for rule_id in self.rule_ids:
            row = {name: self.extra[rule_id].get(name, 0) for name in COUNTERS}
            row["events"] = sum(1 for r, _ in events if r == rule_id)
            for name in ("skipped", "throttled", "invalid"):
                row[name] = self.metrics.get(rule_id, name)
            counts[rule_id] = row
        return ReplayResult(events, counts, tuple(self.problems))


# ---- logs ---------------------------------------------------------------------------------


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    """Whole lines, about CHUNK_BYTES at a time (a last line without newline included)."""
    rest = b""
    while True:
        block = handle.read(CHUNK_BYTES)
        if not block:
            if rest:
                yield rest + b"\n"
            return
        block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        if cut:
            yield block[:cut]


def _hit_time(hit: LineHit, replay: _Replayer) -> float | None:
    for name in TIMESTAMP_GROUPS:
        text = hit.groups.get(name)
        if text:
            return parse_log_time(text, default_year=replay.options.default_year,
                                  default_tz=replay.options.default_tz)
    return None


def replay_log(compiled: Sequence[CompiledRule], log_path: str,
               options: ReplayOptions | None = None,
               on_progress: Progress = _no_progress) -> ReplayResult:
    """Run the `file` rules in `compiled` over the log at `log_path`, telling `on_progress`
    the bytes read as it goes. Raises OSError."""
    replay = _Replayer(compiled, options or ReplayOptions())
    triggers = {c.id: c.rule.trigger for c in compiled}
    rules = [LineRule(rid, t.match, t.exclude) for rid, t in triggers.items()
             if isinstance(t, FileTrigger)]
    with open(log_path, "rb") as handle:
        sample = handle.read(65536)
        handle.seek(0)
        matcher = LineMatcher(rules, sample)
        line_number = 1
        for chunk in _chunks(handle):
            for hit in matcher.scan(chunk, line_number):
                _replay_hit(replay, hit, triggers[hit.rule_id], log_path)
            line_number += chunk.count(b"\n")
            on_progress(len(chunk))
    return replay.finish()


def _replay_hit(replay: _Replayer, hit: LineHit, trigger: Any, log_path: str) -> None:
    at = _hit_time(hit, replay)
    if not replay.in_range(at):
        replay.count(hit.rule_id, "out_of_range")
        return
    replay.count(hit.rule_id, "matched")
    if at is None:
        at = replay.latest if replay.latest is not None else replay.started
    variables = line_variables(hit.groups, hit.line, trigger.path, hit.line_number)
    replay.fire(Firing(hit.rule_id, "file", variables, at))


# ---- webhook payloads ---------------------------------------------------------------------


def payload_files(directory: str) -> list[str]:
    """The saved payloads a webhook replay reads, in the order it reads them."""
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.endswith(".json") and not name.startswith("."))


def replay_webhooks(compiled: Sequence[CompiledRule], directory: str,
                    options: ReplayOptions | None = None,
                    on_progress: Progress = _no_progress) -> ReplayResult:
    """Feed every saved payload (`*.json` in `directory`, by name; its time is the file's
    modification time) to every `webhook` rule in `compiled`, telling `on_progress` of each
    file done. Raises OSError."""
    replay = _Replayer(compiled, options or ReplayOptions())
    hooks = {c.id: c.rule.trigger for c in compiled if isinstance(c.rule.trigger, WebhookTrigger)}
    for path in payload_files(directory):
        at = os.stat(path).st_mtime
        payload = _read_payload(path, replay)
        on_progress(1)
        if payload is _BAD:
            continue
        for rule_id, trigger in hooks.items():
            if not replay.in_range(at):
                replay.count(rule_id, "out_of_range")
                continue
            replay.count(rule_id, "matched")
            variables = request_variables(payload, {}, {}, trigger.path)
            replay.fire(Firing(rule_id, "webhook", variables, at))
    return replay.finish()


_BAD = object()


def _read_payload(path: str, replay: _Replayer) -> Any:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PAYLOAD_BYTES + 1)
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"over {MAX_PAYLOAD_BYTES} bytes (the webhook would answer 413)")
        return parse_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        replay.problems.append(Problem(f"not a JSON payload, skipped: {exc}",
                                       Location(path, 1, 1), check="replay"))
        return _BAD
