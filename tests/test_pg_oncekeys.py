"""Fleet-wide once keys (a schedule slot fires once across replicas) do not pile up: every
slot claims a key of its own, so the expired ones are removed, at most once an hour."""

from __future__ import annotations

import time
from typing import Any

import pytest

from emitter.delivery.backend import open_backend
from emitter.state.postgres import kv

pytestmark = pytest.mark.slow


def _keys(backend: Any) -> dict[str, float]:
    with backend.store.db.tx() as cur:
        cur.execute("SELECT key, expires_at FROM once_keys")
        return {key: float(at) for key, at in cur.fetchall()}


def test_expired_once_keys_are_removed(pg_cluster: Any) -> None:
    backend = open_backend(pg_cluster.new_database())
    try:
        store = backend.store
        assert backend.claim_once("schedule:r:0", 3600.0)  # the first claim purges (none)
        assert backend.claim_once("schedule:r:1", -10.0)  # expired at once
        assert backend.claim_once("schedule:r:2", -10.0)
        assert set(_keys(backend)) == {"schedule:r:0", "schedule:r:1", "schedule:r:2"}
        store._once_purged -= kv.ONCE_PURGE_EVERY  # an hour later
        assert backend.claim_once("schedule:r:3", 3600.0)
        assert set(_keys(backend)) == {"schedule:r:0", "schedule:r:3"}  # the expired ones went
        assert not backend.claim_once("schedule:r:3", 3600.0)  # a live key still holds
        assert backend.claim_once("schedule:r:4", -10.0)
        assert set(_keys(backend)) == {"schedule:r:0", "schedule:r:3", "schedule:r:4"}
        assert store.purge_once_keys(time.time()) == 1
    finally:
        backend.close()
