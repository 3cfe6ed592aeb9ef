"""The `webhook` trigger: an HTTP server that turns authenticated JSON POSTs into firings.

Routes: each webhook rule's `path`; rules sharing a path all fire (each one that
authenticates). `POST` only (405 with `Allow: POST` otherwise); unknown paths 404;
`GET /healthz` answers 200 JSON; `GET /metrics` serves the daemon's Prometheus text when a
`metrics` callable is given.

Authentication, per rule, secrets read from the environment at start:
- `token_env`: `Authorization: Bearer <token>` or `X-Emitter-Token: <token>`;
- `hmac_secret_env`: HMAC-SHA256 of the raw body, hex, in `signature_header`
  (`X-Hub-Signature-256: sha256=<hex>`, GitHub's form);
- both set: both required. Compared with `hmac.compare_digest`.
- neither: the rule accepts unauthenticated requests; reported loudly through `on_error`
  at start. A rule naming an unset variable is reported at start and answers 503.
401 when no rule of the path authenticates (no event), 503 when none could be checked.

HTTP itself (parsing, Content-Length, 411/413/408/400 for malformed requests, read deadlines,
connection bounds) is emitter.daemon.listener's: this module is the route handler
`handle(Request) -> Response` the daemon's front calls. The answer is 202 `{"accepted": n}`
only after `dispatch` returned (the events are durable); 503 with `Retry-After` when the
outbox is full, 500 on any other failure. Nothing logs secrets or bodies. Given `listen`
(tests, benchmarks), the trigger opens a listener of its own serving the same front.

Variables: see emitter.triggers.kinds.webhook (`payload`, `headers` and `query` with every
credential removed, `path`, `method`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emitter.daemon.http import (
    BadRequest,
    Limits,
    Request,
    Response,
    decode_json,
    error_response,
    json_response,
)
from emitter.errors import OutboxFullError
from emitter.rules.model import Rule, WebhookTrigger
from emitter.triggers.base import Backoff, Dispatch, Firing, OnError, RunnerBase
from emitter.triggers.kinds.webhook import request_variables

if TYPE_CHECKING:
    from emitter.daemon.listener import Listener

RETRY_AFTER = "5"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Route:
    rule_id: str
    token: bytes | None
    hmac_secret: bytes | None
    signature_header: str
    broken: bool  # a secret's variable is unset: the rule cannot authenticate anything

    def authenticates(self, headers: Mapping[str, str], body: bytes) -> bool:
        if self.broken:
            return False
        if self.token is not None and not _token_ok(self.token, headers):
            return False
        if self.hmac_secret is not None:
            given = headers.get(self.signature_header.lower(), "").strip().lower()
            digest = hmac.new(self.hmac_secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(given.encode(), f"sha256={digest}".encode()):
                return False
        return True


def _token_ok(token: bytes, headers: Mapping[str, str]) -> bool:
    auth = headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get(
        "x-emitter-token", "")
    return hmac.compare_digest(given.encode(), token)



class WebhookServer(RunnerBase):
    """The webhook rules' routes. The daemon's front calls `handle`; with `listen` given
    the trigger opens a listener of its own (tests, benchmarks)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        dispatch: Dispatch,
        on_error: OnError,
        *,
        listen: str | None = None,
        environ: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        metrics: Callable[[], str] | None = None,  # /metrics text for its own listener
    ) -> None:
        super().__init__("webhook", on_error)
        self._dispatch = dispatch
        self._rules = [r for r in rules if isinstance(r.trigger, WebhookTrigger)]
        self._environ = os.environ if environ is None else environ
        self._listen = listen
        self.limits = limits or Limits()
        self._metrics = metrics
        self.routes: dict[str, list[Route]] = {}
        self._listener: Listener | None = None
        self._ready = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port) of the trigger's own listener."""
        assert self._listener is not None, "not listening"
        return self._listener.address

    def start(self) -> None:
        self.routes = self._build_routes()
        if self._listen is None:
            self._ready.set()
        else:
            self._start_thread(self._serve)

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _build_routes(self) -> dict[str, list[Route]]:
        routes: dict[str, list[Route]] = {}
        for rule in self._rules:
            trig = rule.trigger
            assert isinstance(trig, WebhookTrigger)
            token = self._secret(trig.token_env)
            secret = self._secret(trig.hmac_secret_env)
            broken = False
            for env in (trig.token_env, trig.hmac_secret_env):
                if env and not self._environ.get(env):
                    broken = True
                    self.report(rule.id, f"webhook {trig.path}: environment variable {env} is "
                                         "not set; this rule answers 503 until restarted")
            if not trig.token_env and not trig.hmac_secret_env:
                self.report(rule.id, f"WARNING: webhook {trig.path} accepts UNAUTHENTICATED "
                                     "requests (no token_env or hmac_secret_env)")
            route = Route(rule.id, token, secret, trig.signature_header, broken)
            routes.setdefault(trig.path, []).append(route)
        return routes

    def _secret(self, env: str | None) -> bytes | None:
        value = self._environ.get(env) if env else None
        return value.encode() if value else None

    def _serve(self) -> None:
        from emitter.daemon.front import Front
        from emitter.daemon.http import parse_addr
        from emitter.daemon.listener import Listener

        assert self._listen is not None
        metrics = self._metrics
        text = None if metrics is None else lambda: (metrics().encode(), METRICS_TYPE)
        front = Front(lambda: {"status": "ok", "firings": self.health().firings}, text)
        front.webhook = self.handle
        address = parse_addr(self._listen)
        backoff = Backoff(cap=10.0)
        while not self._stop.is_set():
            try:
                self._listener = Listener(address, front.app, self.limits, name="webhook-http")
            except OSError as exc:
                self.report(None, f"webhook cannot listen on {self._listen}: "
                                  f"{exc.strerror or exc}; retrying")
                self._stop.wait(backoff.failed())
                continue
            self._listener.start()
            self._ready.set()
            return

    def stop(self, timeout: float) -> None:
        self._stop.set()
        super().stop(timeout)
        if self._listener is not None:
            self._listener.stop()

    # ---- requests -----------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        routes = self.routes.get(req.path)
        if routes is None:
            return error_response(404, "not found")
        if req.method != "POST":
            return error_response(405, "method not allowed", Allow="POST")
        allowed = [r for r in routes if r.authenticates(req.headers, req.body)]
        if not allowed:
            if all(r.broken for r in routes):
                return error_response(503, "webhook not configured", **{"Retry-After": "60"})
            return error_response(401, "unauthorized", **{"WWW-Authenticate": "Bearer"})
        try:
            payload = decode_json(req.body)
        except BadRequest as exc:
            return error_response(exc.status, exc.message)
        return self._fire(req, allowed, payload)

    def _fire(self, req: Request, routes: Sequence[Route], payload: Any) -> Response:
        variables = request_variables(payload, req.headers, req.query, req.path,
                                      [r.signature_header for r in routes])
        at = time.time()
        firings = [Firing(r.rule_id, "webhook", variables, at) for r in routes]
        try:
            self._dispatch(firings)
        except OutboxFullError:
            return error_response(503, "outbox full, try again later",
                                  **{"Retry-After": RETRY_AFTER})
        except Exception as exc:  # noqa: BLE001 - the client gets a short message, we the rest
            self.report(None, f"webhook {req.path}: not accepted: {type(exc).__name__}: {exc}")
            return error_response(500, "could not accept the request")
        self.counted(len(firings))
        return json_response(202, {"accepted": len(firings)})


def make_runner(
    rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: object, *,
    listen: str | None = None, environ: Mapping[str, str] | None = None, **_: object,
) -> WebhookServer:
    return WebhookServer(rules, dispatch, on_error, listen=listen, environ=environ)
