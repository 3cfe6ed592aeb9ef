"""The routes every daemon port serves: `GET /healthz` (JSON, 503 when a part is failing),
`GET /metrics` (Prometheus text) and, when webhook rules run, their paths."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from emitter.daemon.listener import Listener
from emitter.errors import ConfigError
from emitter.httpmsg import (
    App,
    Limits,
    Request,
    Response,
    error_response,
    json_response,
    parse_addr,
)
from emitter.redaction import webhook_secret_envs

log = logging.getLogger(__name__)
DEFAULT_LISTEN = "127.0.0.1:8787"  # --listen when webhook rules run and none was given

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


class Ports:
    """The daemon's listeners (`--listen`, `--metrics-addr`), every one serving `front`."""

    def __init__(self, front: Front, limits: Limits | None = None) -> None:
        self.front = front
        self._limits = limits or Limits()
        self._listeners: dict[tuple[str, int], Listener] = {}

    def open(self, text: str, option: str) -> tuple[str, int]:
        """Listen on `text` (ADDR:PORT, see parse_addr); the bound address. ConfigError when
        the address is taken or not ours; the same address twice is one listener."""
        address = parse_addr(text)
        if address in self._listeners and address[1] != 0:
            return address
        try:
            listener = Listener(address, self.front.app, self._limits, name=f"http{option}")
        except OSError as exc:
            raise ConfigError(f"{option} {text}: cannot listen on {address[0]}:{address[1]}: "
                              f"{exc.strerror or exc}") from exc
        listener.start()
        bound = listener.address
        self._listeners[bound] = listener
        log.info("listening", extra={"option": option, "addr": f"{bound[0]}:{bound[1]}"})
        return bound

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every bound (host, port), in the order opened."""
        return [listener.address for listener in self._listeners.values()]

    def dead(self) -> list[str]:
        """Listeners whose thread has ended (it should run until close)."""
        return ["{}:{}".format(*a) for a, lis in self._listeners.items() if not lis.alive]

    def close(self) -> None:
        for listener in self._listeners.values():
            listener.stop()
        self._listeners.clear()


def has_webhooks(rules: Iterable[Any]) -> bool:
    return any(rule.trigger.type == "webhook" for rule in rules)


def webhook_secrets(compiled: Iterable[Any], environ: Mapping[str, str]) -> list[str]:
    """Values of the environment variables webhook rules read tokens and HMAC keys from."""
    names = webhook_secret_envs(item.rule for item in compiled)
    return [environ[name] for name in sorted(names) if environ.get(name)]
