"""The `webhook` trigger's routes: authenticated JSON POSTs become firings, each delivery once.

Routes: each webhook rule's `path`; rules sharing a path all fire (each one that
authenticates). `POST` only (405 with `Allow: POST` otherwise); unknown paths 404.

Authentication, per rule (emitter.rules.webhookauth: `auth` with a preset or a scheme, or the
version-1 `token_env` / `hmac_secret_env`), checked by emitter.triggers.auth.verify with the
secrets read from the environment at start. A rule without any is reported loudly through
`on_error` at start; one whose secret variables are all unset is reported and answers 503.
401 when no rule of the path authenticates (no event; each rule's reason is logged), 503 when
none could be checked.

Redeliveries: a rule with `dedup` takes the delivery id from a header or a template; an id
already accepted within the window is answered 202 `{"accepted": 0, "duplicates": n}` and
counted (`deduplicated`), never fired again (emitter.triggers.auth.deliveries, durable).

HTTP itself is emitter.daemon's: this module is the route handler `handle(Request) ->
Response`. 202 `{"accepted": n}` only after `dispatch` returned (the events are durable); 503
with `Retry-After` when the outbox is full, 500 on any other failure. Nothing logs secrets or
bodies. Variables: see emitter.triggers.kinds.webhook.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from emitter.errors import OutboxFullError
from emitter.httpmsg import (
    BadRequest,
    Request,
    Response,
    decode_json,
    error_response,
    json_response,
)
from emitter.rules.model import Rule, Tmpl, WebhookTrigger
from emitter.triggers.auth.deliveries import Claim, Deliveries
from emitter.triggers.auth.verify import Verifier
from emitter.triggers.base import Dispatch, Firing, OnError, RunnerBase, TriggerHealth
from emitter.triggers.kinds.webhook import hidden_names, request_variables

if TYPE_CHECKING:
    from emitter.state.store import StateStore

log = logging.getLogger(__name__)
RETRY_AFTER = "5"
Count = Callable[[str, str, int], None]


@dataclass(frozen=True)
class Route:
    rule_id: str
    verifiers: tuple[Verifier, ...]
    hidden: frozenset[str]  # headers its authentication reads (lower-cased)
    hidden_query: frozenset[str]
    trigger: WebhookTrigger
    delivery: Callable[[Mapping[str, Any]], str | None] | None = None

    @property
    def broken(self) -> bool:  # a secret's variables are unset: it cannot check anything
        return any(not v.usable for v in self.verifiers)

    def refusal(self, req: Request, now: float) -> str | None:
        """None when the request passes every scheme, else why not."""
        if self.broken:
            return "its secret's environment variable is not set"
        for verifier in self.verifiers:
            reason = verifier.check(req.headers, req.query, req.body, now)
            if reason is not None:
                return reason
        return None


class WebhookServer(RunnerBase):
    """The webhook rules' routes; the daemon's front calls `handle` (no thread of its own)."""

    def __init__(self, rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, *,
                 environ: Mapping[str, str] | None = None, store: StateStore | None = None,
                 count: Count | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__("webhook", on_error)
        self._dispatch = dispatch
        self._rules = [r for r in rules if isinstance(r.trigger, WebhookTrigger)]
        self._environ = os.environ if environ is None else environ
        self._deliveries = Deliveries(store)
        self._count = count
        self._clock = clock
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
            verifiers = tuple(Verifier(s, self._environ) for s in trig.schemes)
            for verifier in verifiers:
                self._report_unset(rule.id, trig.path, verifier)
            if not verifiers:
                self.report(rule.id, f"WARNING: webhook {trig.path} accepts UNAUTHENTICATED "
                                     "requests (no `auth`, token_env or hmac_secret_env)")
            hidden, hidden_query = hidden_names(trig)
            route = Route(rule.id, verifiers, hidden | {trig.signature_header.lower()},
                          hidden_query, trig, self._delivery_of(rule))
            routes.setdefault(trig.path, []).append(route)
        return routes

    def _report_unset(self, rule_id: str, path: str, verifier: Verifier) -> None:
        for name in verifier.missing:
            then = ("this rule answers 503 until restarted" if not verifier.usable
                    else "the other secrets of the rotation are used")
            self.report(rule_id, f"webhook {path}: environment variable {name} is not set; "
                                 f"{then}")

    def _delivery_of(self, rule: Rule) -> Callable[[Mapping[str, Any]], str | None] | None:
        trig = rule.trigger
        assert isinstance(trig, WebhookTrigger)
        dedup = trig.dedup
        if dedup is None:
            return None
        if dedup.header:
            name = dedup.header.lower()
            return lambda variables: variables["headers"].get(name) or None
        assert dedup.key is not None and dedup.key_at is not None
        from emitter.templates.compiler import BASE_SCOPE, compile_template

        template = compile_template(Tmpl(dedup.key, dedup.key_at), rule.budget)

        def key(variables: Mapping[str, Any]) -> str | None:
            try:
                return template.render({**BASE_SCOPE, **variables}) or None
            except Exception as exc:  # noqa: BLE001 - no id: the delivery fires as usual
                log.warning("webhook %s: no delivery id (%s: %s); fired without dedup",
                            trig.path, type(exc).__name__, exc, extra={"rule": rule.id})
                return None
        return key

    # ---- requests -----------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        routes = self.routes.get(req.path)
        if routes is None:
            return error_response(404, "not found")
        if req.method != "POST":
            return error_response(405, "method not allowed", Allow="POST")
        now = self._clock()
        allowed = []
        for route in routes:
            reason = route.refusal(req, now)
            if reason is None:
                allowed.append(route)
            else:
                log.warning("webhook %s: refused for rule %s: %s", req.path, route.rule_id,
                            reason, extra={"rule": route.rule_id})
        if not allowed:
            if all(r.broken for r in routes):
                return error_response(503, "webhook not configured", **{"Retry-After": "60"})
            return error_response(401, "unauthorized", **{"WWW-Authenticate": "Bearer"})
        try:
            payload = decode_json(req.body)
        except BadRequest as exc:
            return error_response(exc.status, exc.message)
        return self._fire(req, allowed, payload, now)

    def _fire(self, req: Request, routes: Sequence[Route], payload: Any,
              now: float) -> Response:
        hidden = frozenset().union(*(r.hidden for r in routes))
        hidden_query = frozenset().union(*(r.hidden_query for r in routes))
        variables = request_variables(payload, req.headers, req.query, req.path, hidden,
                                      hidden_query)
        try:
            fresh, claims, duplicates = self._new_deliveries(routes, variables, now)
        except OutboxFullError:  # the shared store is away: nothing was claimed
            return error_response(503, "state store unavailable, try again later",
                                  **{"Retry-After": RETRY_AFTER})
        if fresh is None:
            return error_response(503, "the same delivery is being accepted; try again",
                                  **{"Retry-After": "1"})
        firings = [Firing(r.rule_id, "webhook", variables, now) for r in fresh]
        try:
            with self._deliveries.batch():  # the ids commit with the events (shared backend)
                if firings:
                    self._dispatch(firings)
                self._deliveries.remember(claims, now)
        except OutboxFullError:
            self._deliveries.release(claims)
            return error_response(503, "outbox full, try again later",
                                  **{"Retry-After": RETRY_AFTER})
        except Exception as exc:  # noqa: BLE001 - the client gets a short message, we the rest
            self._deliveries.release(claims)
            self.report(None, f"webhook {req.path}: not accepted: {type(exc).__name__}: {exc}")
            return error_response(500, "could not accept the request")
        self.counted(len(firings))
        answer: dict[str, int] = {"accepted": len(firings)}
        if duplicates:
            answer["duplicates"] = duplicates
        return json_response(202, answer)

    def _new_deliveries(self, routes: Sequence[Route], variables: Mapping[str, Any],
                        now: float) -> tuple[list[Route] | None, list[Claim], int]:
        """The routes whose delivery is new, their claims, and how many were duplicates;
        None for the routes when another request is accepting the same delivery."""
        fresh: list[Route] = []
        claims: list[Claim] = []
        duplicates = 0
        for route in routes:
            delivery = route.delivery(variables) if route.delivery else None
            if delivery is None or route.trigger.dedup is None:
                fresh.append(route)
                continue
            state, claim = self._deliveries.claim(route.rule_id, delivery,
                                                  route.trigger.dedup.window, now)
            if state == "busy":
                self._deliveries.release(claims)
                return None, [], 0
            if state == "seen":
                duplicates += 1
                log.info("webhook %s: delivery already accepted for rule %s; not fired again",
                         route.trigger.path, route.rule_id, extra={"rule": route.rule_id})
                if self._count is not None:
                    self._count(route.rule_id, "deduplicated", 1)
                continue
            fresh.append(route)
            claims.append(claim)
        return fresh, claims, duplicates


def make_runner(
    rules: Sequence[Rule], dispatch: Dispatch, on_error: OnError, store: StateStore | None,
    *, environ: Mapping[str, str] | None = None, count: Count | None = None, **_: object,
) -> WebhookServer:
    return WebhookServer(rules, dispatch, on_error, environ=environ, store=store, count=count)
