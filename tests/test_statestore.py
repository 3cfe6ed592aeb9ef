"""StateStore: JSON values per namespace, atomic put_many with deletes, persistence across
reopen, concurrent writers; on both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from emitter.errors import ConfigError
from emitter.state.store import StateStore
from tests.backends import Place


def test_values_round_trip_and_survive_reopen(place: Place) -> None:
    with place.store() as store:
        assert store.get("file", "a") is None
        store.put("file", "a", {"offset": 10, "inode": 2**40})
        store.put_many("cmd", {"x": "ok", "y": [1, None, True]})
        store.put("file", "a", {"offset": 11, "inode": 2**40})
    with place.store() as store:
        assert store.get("file", "a") == {"offset": 11, "inode": 2**40}
        assert store.items("cmd") == {"x": "ok", "y": [1, None, True]}
        assert store.get("cmd", "a") is None  # namespaces are separate


def test_put_many_with_delete_is_one_transaction(place: Place) -> None:
    with place.store() as store:
        store.put_many("ns", {"a": 1, "b": 2})
        store.put_many("ns", {"c": 3}, delete=["a"])
        assert store.items("ns") == {"b": 2, "c": 3}
        with pytest.raises(TypeError):
            store.put_many("ns", {"d": 4, "e": object()}, delete=["b"])
        assert store.items("ns") == {"b": 2, "c": 3}  # nothing of the failed call landed
        store.delete("ns", ["b", "c", "missing"])
        assert store.items("ns") == {}


def test_thread_safe_concurrent_writers(place: Place) -> None:
    with place.store() as store:
        def work(n: int) -> None:
            for i in range(50):
                store.put("t", f"{n}-{i}", i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.items("t")) == 200


def test_unusable_path_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="state store"):
        StateStore(blocker / "sub" / "state.sqlite3")

