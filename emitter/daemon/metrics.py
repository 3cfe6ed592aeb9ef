"""Daemon metrics: per-rule counters and outbox gauges, exposed in Prometheus text format.

`Metrics` is thread-safe and cheap to update (one lock, dict increments). `render()` writes
the text exposition format (version 0.0.4) by hand; `MetricsServer` serves it at `/metrics`
on its own address, and the webhook server can serve the same text on its port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name -> help text; the order is the order of the exposition.
COUNTERS: dict[str, str] = {
    "fired": "Firings received from the rule's trigger.",
    "rendered": "Events rendered from firings (after when/foreach).",
    "skipped": "Firings that produced no event because `when` was false or foreach was empty.",
    "invalid": "Rendered events that failed the event schema; never sent.",
    "throttled": "Events dropped or folded into a summary by the rule's throttle.",
    "queued": "Events committed to the durable outbox.",
    "refused": "Events refused because the outbox was full.",
    "sent": "Events the sink accepted.",
    "failed": "Delivery attempts that failed and will be retried.",
    "dead": "Events moved to dead letters (permanently refused or past their deadline).",
}

GAUGES: dict[str, str] = {
    "pending": "Events waiting in the outbox.",
    "in_flight": "Events being delivered right now.",
    "dead": "Events in the dead-letter table.",
    "bytes": "Bytes of event bodies held in the outbox.",
    "oldest_age_seconds": "Age of the oldest pending event.",
}

GaugeSource = Callable[[], Mapping[str, float]]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class Metrics:
    """Counters keyed by (counter name, rule id) plus a callable that reads outbox gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._gauge_source: GaugeSource | None = None
        self._triggers_failing: dict[str, int] = {}

    def inc(self, rule_id: str, name: str, n: int = 1) -> None:
        if name not in COUNTERS:
            raise ValueError(f"unknown counter {name!r}")
        if n <= 0:
            return
        key = (name, rule_id)
        with self._lock:
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

    def set_gauge_source(self, source: GaugeSource | None) -> None:
        self._gauge_source = source

    def trigger_error(self, rule_id: str) -> None:
        with self._lock:
            self._triggers_failing[rule_id] = self._triggers_failing.get(rule_id, 0) + 1

    def render(self) -> str:
        """The whole exposition, ending with a newline as the format requires."""
        counts = self.snapshot()
        with self._lock:
            trig = dict(self._triggers_failing)
        lines: list[str] = []
        for name, help_text in COUNTERS.items():
            metric = f"emitter_events_{name}_total"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
            for (cname, rule), value in sorted(counts.items()):
                if cname == name:
                    lines.append(f'{metric}{{rule="{escape_label(rule)}"}} {value}')
        metric = "emitter_trigger_errors_total"
        lines += [f"# HELP {metric} Trigger failures (reported and retried).",
                  f"# TYPE {metric} counter"]
        lines += [f'{metric}{{rule="{escape_label(r)}"}} {v}' for r, v in sorted(trig.items())]
        lines += self._render_gauges()
        return "\n".join(lines) + "\n"

    def _render_gauges(self) -> list[str]:
        if self._gauge_source is None:
            return []
        try:
            values = self._gauge_source()
        except Exception:  # noqa: BLE001 - a broken gauge must not break /metrics
            return ["# outbox gauges unavailable"]
        lines: list[str] = []
        for name, help_text in GAUGES.items():
            if name in values:
                metric = f"emitter_outbox_{name}"
                lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge",
                          f"{metric} {_number(float(values[name]))}"]
        return lines


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._answer(200, self.server.metrics.render().encode(), CONTENT_TYPE)
        elif path == "/healthz":
            self._answer(200, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._answer(404, b"not found\n", "text/plain; charset=utf-8")

    def _answer(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the daemon's own log is the one place lines go


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    metrics: Metrics


def parse_addr(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT` -> (host, port); raises ValueError with a message."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"not an ADDR:PORT: {text!r}")
    return host, int(port)


class MetricsServer:
    """`/metrics` and `/healthz` on their own address, in a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.metrics = metrics
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
