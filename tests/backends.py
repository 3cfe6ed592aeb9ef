"""Opening the same state again and again on either backend, for the tests that run against
both (the `place` fixture in conftest.py): `with place.store() as store: ...`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from emitter.delivery.backend import open_backend


@dataclass(frozen=True)
class Place:
    kind: str  # "sqlite" or "postgres"
    location: str  # a state directory or a postgresql:// URL

    @contextlib.contextmanager
    def backend(self, **outbox_opts: Any) -> Iterator[Any]:
        backend = open_backend(self.location, **outbox_opts)
        try:
            yield backend
        finally:
            backend.close()

    @contextlib.contextmanager
    def store(self) -> Iterator[Any]:
        with self.backend() as backend:
            yield backend.store

    @contextlib.contextmanager
    def outbox(self, **opts: Any) -> Iterator[Any]:
        with self.backend(**opts) as backend:
            yield backend.outbox

    @contextlib.contextmanager
    def throttling(self) -> Iterator[tuple[Any, Any]]:
        """(store, a Throttler on it): the throttle tests' "restart" is a new one."""
        with self.backend() as backend:
            yield backend.store, backend.throttler()

    def only(self, kind: str) -> None:
        import pytest

        if self.kind != kind:
            pytest.skip(f"about the {kind} backend's own mechanics")
