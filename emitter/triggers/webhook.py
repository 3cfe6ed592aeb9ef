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

Limits: the body must have a Content-Length (411 otherwise, also for chunked) of at most
`max_body` bytes (413, decided before reading); malformed JSON is 400 with a JSON error body;
a client has `read_timeout` seconds per read (slow clients cannot pin a thread). The answer
is 202 `{"accepted": n}` only after `dispatch` returned (the events are durable); 503 with
`Retry-After` when the outbox is full, 500 on any other failure. Nothing logs secrets or
bodies.

Variables: `payload` (the parsed JSON), `headers` (lower-cased names, without
Authorization, X-Emitter-Token, Cookie and the signature header), `query` (each parameter's
first value), `path`, `method`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emitter.errors import OutboxFullError
from emitter.rules.model import Rule, WebhookTrigger
from emitter.triggers.base import Backoff, Dispatch, Firing, OnError, RunnerBase

MAX_BODY = 1 << 20
DEFAULT_LISTEN = "127.0.0.1:8787"
RETRY_AFTER = "5"
_HIDDEN = ("authorization", "x-emitter-token", "cookie", "proxy-authorization")


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


def parse_listen(listen: str | None) -> tuple[str, int]:
    """"ADDR:PORT", "[::1]:PORT" or ":PORT" (all addresses) → (host, port)."""
    host, _, port = (listen or DEFAULT_LISTEN).rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - ":PORT" asks for it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: WebhookServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server
    server_version = "emitter-webhook"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without NODELAY, Nagle's algorithm and
        # the client's delayed ACK would add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Every read (request line, headers, body) gets this long: no thread held forever.
        self.connection.settimeout(self.server.owner.read_timeout)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # access logs would carry paths with tokens in queries: the daemon logs events

    def do_POST(self) -> None:  # noqa: N802
        self.server.owner.handle_post(self)

    def do_GET(self) -> None:  # noqa: N802
        self.server.owner.handle_get(self)

    def do_PUT(self) -> None:  # noqa: N802
        self.server.owner.handle_other(self)

    do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_PUT  # noqa: N815

    def answer(self, status: int, body: Any, extra: Mapping[str, str] | None = None,
               content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class WebhookServer(RunnerBase):
    def __init__(
        self,
        rules: Sequence[Rule],
        dispatch: Dispatch,
        on_error: OnError,
        *,
        listen: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_body: int = MAX_BODY,
        read_timeout: float = 10.0,
        metrics: Callable[[], str] | None = None,
        health: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__("webhook", on_error)
        self._dispatch = dispatch
        self._rules = [r for r in rules if isinstance(r.trigger, WebhookTrigger)]
        self._environ = os.environ if environ is None else environ
        self.host, self.port = parse_listen(listen)
        self.max_body = max_body
        self.read_timeout = read_timeout
        self._metrics = metrics
        self._health = health
        self.routes: dict[str, list[Route]] = {}
        self._server: _Server | None = None
        self._ready = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when 0 was asked for."""
        assert self._server is not None, "not listening"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self.routes = self._build_routes()
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
        backoff = Backoff(cap=10.0)
        while not self._stop.is_set():
            try:
                server = _Server((self.host, self.port), _Handler)
            except OSError as exc:
                self.report(None, f"webhook cannot listen on {self.host}:{self.port}: "
                                  f"{exc.strerror or exc}; retrying")
                self._stop.wait(backoff.failed())
                continue
            server.owner = self
            self._server = server
            self._ready.set()
            server.serve_forever(poll_interval=0.05)
            server.server_close()
            return

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
        super().stop(timeout)

    # ---- requests -----------------------------------------------------------------------

    def handle_get(self, req: _Handler) -> None:
        path = urlsplit(req.path).path
        if path == "/healthz":
            extra = dict(self._health()) if self._health else {}
            req.answer(200, {"status": "ok", "firings": self.health().firings, **extra})
        elif path == "/metrics" and self._metrics is not None:
            req.answer(200, self._metrics().encode(), content_type="text/plain; version=0.0.4")
        else:
            self.handle_other(req)

    def handle_other(self, req: _Handler) -> None:
        self._discard_body(req)
        if urlsplit(req.path).path in self.routes:
            req.answer(405, {"error": "method not allowed"}, {"Allow": "POST"})
        else:
            req.answer(404, {"error": "not found"})

    def _discard_body(self, req: _Handler) -> None:
        length = req.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= self.max_body:
            req.rfile.read(int(length))
        elif length or req.headers.get("Transfer-Encoding"):
            req.close_connection = True

    def handle_post(self, req: _Handler) -> None:
        url = urlsplit(req.path)
        routes = self.routes.get(url.path)
        if routes is None:
            self._discard_body(req)
            req.answer(404, {"error": "not found"})
            return
        body = self._read_body(req)
        if body is None:
            return
        headers = {k.lower(): v for k, v in req.headers.items()}
        allowed = [r for r in routes if r.authenticates(headers, body)]
        if not allowed:
            if all(r.broken for r in routes):
                req.answer(503, {"error": "webhook not configured"}, {"Retry-After": "60"})
            else:
                req.answer(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
            return
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "body is not UTF-8"
            req.answer(400, {"error": f"malformed JSON: {reason}"})
            return
        self._fire(req, allowed, payload, headers, url.query)

    def _read_body(self, req: _Handler) -> bytes | None:
        length = req.headers.get("Content-Length")
        if req.headers.get("Transfer-Encoding") or length is None or not length.isdigit():
            req.close_connection = True
            req.answer(411, {"error": "a Content-Length is required"})
            return None
        if int(length) > self.max_body:
            req.close_connection = True  # the body stays unread: this connection is done
            req.answer(413, {"error": f"body larger than {self.max_body} bytes"})
            return None
        try:
            body = req.rfile.read(int(length))
        except OSError:  # read timeout or reset: nothing to answer to
            body = b""
        if len(body) < int(length):
            req.close_connection = True
            return None  # the client went away mid-body
        return body

    def _fire(self, req: _Handler, routes: Sequence[Route], payload: Any,
              headers: Mapping[str, str], query: str) -> None:
        hidden = {*_HIDDEN, *(r.signature_header.lower() for r in routes)}
        variables = {
            "payload": payload,
            "headers": {k: v for k, v in headers.items() if k not in hidden},
            "query": {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()},
            "path": urlsplit(req.path).path,
            "method": "POST",
        }
        at = time.time()
        firings = [Firing(r.rule_id, "webhook", variables, at) for r in routes]
        try:
            self._dispatch(firings)
        except OutboxFullError:
            req.answer(503, {"error": "outbox full, try again later"},
                       {"Retry-After": RETRY_AFTER})
            return
        except Exception as exc:  # noqa: BLE001 - the client gets a short message, we the rest
            self.report(None, f"webhook {variables['path']}: not accepted: "
                              f"{type(exc).__name__}: {exc}")
            req.answer(500, {"error": "could not accept the request"})
            return
        self.counted(len(firings))
        req.answer(202, {"accepted": len(firings)})


def make_runner(
    rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: object, *,
    listen: str | None = None, metrics: Any = None, environ: Mapping[str, str] | None = None,
    **_: object,
) -> WebhookServer:
    render = getattr(metrics, "render", None)
    return WebhookServer(rules, dispatch, on_error, listen=listen, environ=environ,
                         metrics=render if callable(render) else None)
