"""The routes every daemon port serves: `GET /healthz` (JSON, 503 when a part is failing),
`GET /metrics` (Prometheus text) and, when webhook rules run, their paths."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from emitter.daemon.http import App, Request, Response, error_response, json_response

Health = Callable[[], Mapping[str, Any]]  # {"status": "ok" | "failing", ...}
MetricsText = Callable[[], tuple[bytes, str]]  # (exposition, its content type)
_READ = ("GET", "HEAD")


class Front:
    """One `app` for every listener, so each port gives the same answers. `webhook` is
    swapped in place on reload; requests in flight keep the handler they started with."""

    def __init__(self, health: Health, metrics: MetricsText | None = None) -> None:
        self._health = health
        self._metrics = metrics
        self.webhook: App | None = None

    def app(self, request: Request) -> Response:
        if request.path == "/healthz" and request.method in _READ:
            report = dict(self._health())
            return json_response(200 if report.get("status") == "ok" else 503, report)
        if request.path == "/metrics" and self._metrics is not None:
            if request.method not in _READ:
                return error_response(405, "method not allowed", Allow="GET")
            text, content_type = self._metrics()
            return Response(200, text, content_type)
        webhook = self.webhook
        if webhook is not None:
            return webhook(request)
        return error_response(404, "not found")
