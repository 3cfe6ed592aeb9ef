"""Test guards: no test reaches past loopback, and the real environment never leaks in."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise RuntimeError(f"test tried to reach {address!r}: only loopback is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise RuntimeError(f"test tried to reach {address!r}: only loopback is allowed")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


_DD_VARS = (
    "DD_API_KEY",
    "DD_SITE",
    "DATADOG_HOST",
    "DD_ENV",
    "DD_SERVICE",
    "DD_VERSION",
    "DD_TAGS",
    "EMITTER_STATE_DIR",
    "GITHUB_ACTIONS",
)


@pytest.fixture(autouse=True)
def _clean_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    for name in _DD_VARS:
        monkeypatch.delenv(name, raising=False)
    # A per-test HOME so a default state directory never lands in the real one.
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    yield


# ---- the two storage backends (emitter.delivery.backend) ------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster for the whole session (tests/pgcluster.py); skipped with
    the reason when this machine has no server binaries."""
    from tests.pgcluster import Cluster

    reason = Cluster.available()
    if reason is not None:
        pytest.skip(f"PostgreSQL tests need a server: {reason}")
    cluster = Cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(params=["sqlite", "postgres"])
def place(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """Where a test keeps its state: a fresh directory (SQLite) or a fresh database
    (PostgreSQL); tests/backends.py opens outboxes, stores and throttlers there."""
    from tests.backends import Place

    if request.param == "sqlite":
        return Place("sqlite", str(tmp_path / "state"))
    return Place("postgres", request.getfixturevalue("pg_cluster").new_database())
