"""Per-rule counters (fired, rendered, queued, sent ...): the record the pipeline, the sender,
`emitter test` and `emitter replay` count into. The daemon exposes it (emitter.daemon.metrics).

`Metrics` is thread-safe and cheap to update (one lock, dict increments).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

# name -> help text; the order is the order of the exposition.
COUNTERS: dict[str, str] = {
    "fired": "Firings received from the rule's trigger.",
    "rendered": "Events rendered from firings (after when/foreach).",
    "skipped": "Firings that produced no event because `when` was false or foreach was empty.",
    "invalid": "Rendered events that failed the event schema; never sent.",
    "throttled": "Events dropped or folded into a summary by the rule's throttle.",
    "deduplicated": "Webhook redeliveries of a delivery id already accepted; not fired again.",
    "queued": "Events committed to the durable outbox.",
    "refused": "Events refused because the outbox was full.",
    "sent": "Events the sink accepted.",
    "failed": "Delivery attempts that failed and will be retried.",
    "dead": "Events moved to dead letters (permanently refused or past their deadline).",
}


class Metrics:
    """Counters keyed by (counter name, rule id), and trigger errors per rule."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._trigger_errors: dict[str, int] = {}

    def inc(self, rule_id: str, name: str, n: int = 1) -> None:
        if name not in COUNTERS:
            raise ValueError(f"unknown counter {name!r}")
        if n <= 0:
            return
        key = (name, rule_id)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Many increments at once, keyed (counter name, rule id): one lock for a batch."""
        unknown = {name for name, _ in counts} - set(COUNTERS)
        if unknown:
            raise ValueError(f"unknown counter(s) {sorted(unknown)}")
        with self._lock:
            for key, n in counts.items():
                if n > 0:
                    self._counts[key] = self._counts.get(key, 0) + n

    def get(self, rule_id: str, name: str) -> int:
        with self._lock:
            return self._counts.get((name, rule_id), 0)

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def totals(self) -> dict[str, int]:
        """Each counter summed over every rule (for the summary line at exit)."""
        out: dict[str, int] = {}
        for (name, _), n in self.snapshot().items():
            out[name] = out.get(name, 0) + n
        return out

    def trigger_error(self, rule_id: str) -> None:
        with self._lock:
            self._trigger_errors[rule_id] = self._trigger_errors.get(rule_id, 0) + 1

    def trigger_errors(self) -> dict[str, int]:
        with self._lock:
            return dict(self._trigger_errors)
