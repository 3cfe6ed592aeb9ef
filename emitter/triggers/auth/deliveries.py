"""Delivery ids already accepted, per webhook rule, kept in the durable state store so a
restart does not forget them (namespace `webhook-deliveries`, value: the expiry time).

A delivery is `claim`ed before its firing is dispatched and `remember`ed only once the events
are durable: an outbox that refuses leaves the id free, so the sender's retry fires. A second
request for an id another request is still dispatching is `busy` (the caller answers 503 with
Retry-After rather than lose it if the first one fails). On the shared backend "busy" holds
across replicas: the claim is a pending marker taken atomically in the store (namespace
`webhook-pending`, value: when a crashed claimer's marker lapses), removed in the transaction
that remembers the id, or on refusal. On one node the marker is this process's memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from emitter.errors import EmitterError

if TYPE_CHECKING:
    from emitter.state.store import StateStore

log = logging.getLogger(__name__)
NAMESPACE = "webhook-deliveries"
PENDING = "webhook-pending"
PENDING_TTL = 120.0  # seconds a claimer that died mid-dispatch blocks the id (then: new)
PURGE_EVERY = 60.0  # seconds between removals of expired ids
Claim = tuple[str, float]  # (stored key, its expiry time)


def stored_key(rule_id: str, delivery: str) -> str:
    """Bounded whatever the sender sends: the rule id and a digest of the delivery id."""
    digest = hashlib.sha256(delivery.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{rule_id}:{digest}"


class Deliveries:
    """The remembered ids; without a store (a bare route handler) they live in memory."""

    def __init__(self, store: StateStore | None) -> None:
        self._store = store
        self._shared = bool(getattr(store, "shared", False))
        self._memory: dict[str, float] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._purged = 0.0

    def claim(self, rule_id: str, delivery: str, window: float, now: float
              ) -> tuple[Literal["new", "seen", "busy"], Claim]:
        key = stored_key(rule_id, delivery)
        claim = (key, now + window)
        if self._shared:
            return self._claim_shared(key, now), claim
        with self._lock:
            if key in self._pending:
                return "busy", claim
            expiry = self._expiry(key)
            if expiry is not None and expiry > now:
                return "seen", claim
            self._pending.add(key)
        return "new", claim

    def _claim_shared(self, key: str, now: float) -> Literal["new", "seen", "busy"]:
        """The marker first, then the check: a replica that remembered the id dropped its
        marker in the same transaction, so holding the marker means "seen" is settled."""
        assert self._store is not None
        if not self._store.take(PENDING, key, now + PENDING_TTL, now):
            return "busy"
        try:
            expiry = self._expiry(key)
        except BaseException:
            self.release([key])
            raise
        if expiry is not None and expiry > now:
            self.release([key])
            return "seen"
        return "new"

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """One transaction for a dispatch and its `remember` on the shared backend."""
        if self._shared:
            assert self._store is not None
            return self._store.batch()
        return contextlib.nullcontext()

    def remember(self, claims: Iterable[Claim], now: float | None = None) -> None:
        """The claimed deliveries' events are durable: keep their ids until they expire."""
        values = dict(claims)
        if self._shared:
            assert self._store is not None
            with self._store.batch():  # the id and its marker change together
                self._store.put_many(NAMESPACE, values)
                self._store.delete(PENDING, values)
        else:
            try:
                if self._store is not None:
                    self._store.put_many(NAMESPACE, values)
                else:
                    self._memory.update(values)
            finally:
                self.release(values)
        self._purge(time.time() if now is None else now)

    def release(self, claims: Iterable[Claim] | Iterable[str]) -> None:
        keys = [item if isinstance(item, str) else item[0] for item in claims]
        if self._shared and keys:
            assert self._store is not None
            try:
                self._store.delete(PENDING, keys)
            except EmitterError as exc:  # the markers lapse by themselves after PENDING_TTL
                log.warning("webhook delivery markers kept until they lapse: %s", exc)
            return
        with self._lock:
            for key in keys:
                self._pending.discard(key)

    def _expiry(self, key: str) -> float | None:
        if self._store is None:
            return self._memory.get(key)
        value = self._store.get(NAMESPACE, key)
        return float(value) if isinstance(value, (int, float)) else None

    def _purge(self, now: float) -> None:
        if now - self._purged < PURGE_EVERY:
            return
        self._purged = now
        if self._store is not None:
            self._store.delete_below(NAMESPACE, now)
            if self._shared:
                self._store.delete_below(PENDING, now)
        else:
            self._memory = {k: v for k, v in self._memory.items() if v > now}
