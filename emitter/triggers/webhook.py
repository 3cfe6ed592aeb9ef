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
outbox is full, 500 on any other failure. Nothing logs secrets or bodies. It opens no
port: emitter.daemon.front serves it (`Front.webhook = server.handle`).

Variables: see emitter.triggers.kinds.webhook (`payload`, `headers` and `query` with every
credential removed, `path`, `method`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from emitter.errors import OutboxFullError
from emitter.httpmsg import (
    BadRequest,
    Request,
    Response,
    decode_json,
    error_response,
    json_response,
)
from emitter.rules.model import Rule, WebhookTrigger
from emitter.triggers.base import Dispatch, Firing, OnError, RunnerBase, TriggerHealth
from emitter.triggers.kinds.webhook import request_variables

RETRY_AFTER = "5"


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
    """The webhook rules' routes; the daemon's front calls `handle` (no thread of its own)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        dispatch: Dispatch,
        on_error: OnError,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__("webhook", on_error)
        self._dispatch = dispatch
        self._rules = [r for r in rules if isinstance(r.trigger, WebhookTrigger)]
        self._environ = os.environ if environ is None else environ
        self.routes: dict[str, list[Route]] = {}
        self._started = False

    def start(self) -> None:
        self.routes = self._build_routes()
        self._started = True

    def stop(self, timeout: float) -> None:
        self._started = False
        self._stop.set()

    def health(self) -> TriggerHealth:
        return replace(super().health(), running=self._started)

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
    environ: Mapping[str, str] | None = None, **_: object,
) -> WebhookServer:
    return WebhookServer(rules, dispatch, on_error, environ=environ)
