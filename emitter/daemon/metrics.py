"""`/metrics`: the per-rule counters (emitter.counters) and outbox gauges, written by
prometheus_client. Imported by the daemon only (never by validate, test or fire).

Names are `emitter_events_<counter>_total{rule=...}`, `emitter_trigger_errors_total{rule=...}`
and `emitter_outbox_<gauge>`; a gauge source that fails leaves its gauges out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from emitter.counters import COUNTERS, Metrics

log = logging.getLogger(__name__)

# The classic text format every Prometheus scrapes; our names need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGES: dict[str, str] = {
    "pending": "Events waiting in the outbox.",
    "in_flight": "Events being delivered right now.",
    "dead": "Events in the dead-letter table.",
    "bytes": "Bytes of event bodies held in the outbox.",
    "oldest_age_seconds": "Age of the oldest pending event.",
}

GaugeSource = Callable[[], Mapping[str, float]]


class _Collector(Collector):
    def __init__(self, metrics: Metrics, gauges: GaugeSource | None) -> None:
        self._metrics = metrics
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        counts = self._metrics.snapshot()
        for name, help_text in COUNTERS.items():
            family = CounterMetricFamily(f"emitter_events_{name}", help_text, labels=["rule"])
            for (counter, rule), value in sorted(counts.items()):
                if counter == name:
                    family.add_metric([rule], value)
            yield family
        errors = CounterMetricFamily("emitter_trigger_errors",
                                     "Trigger failures (reported and retried).", labels=["rule"])
        for rule, value in sorted(self._metrics.trigger_errors().items()):
            errors.add_metric([rule], value)
        yield errors
        yield from self._gauge_families()

    def _gauge_families(self) -> Iterator[Metric]:
        if self._gauges is None:
            return
        try:
            values = self._gauges()
        except Exception as exc:  # noqa: BLE001 - a broken gauge must not break /metrics
            log.warning("outbox gauges unavailable: %s", exc)
            return
        for name, help_text in GAUGES.items():
            if name in values:
                yield GaugeMetricFamily(f"emitter_outbox_{name}", help_text,
                                        value=float(values[name]))


class Exposition:
    """The text `/metrics` serves for one `Metrics` record (plus outbox gauges)."""

    def __init__(self, metrics: Metrics, gauges: GaugeSource | None = None) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(metrics, gauges))

    def render(self) -> bytes:
        return generate_latest(self._registry)

    def answer(self) -> tuple[bytes, str]:
        return self.render(), CONTENT_TYPE
