"""`emitter replay --state-url`: the throttle runs on the shared backend's engine and gives what
the in-memory replay gives, and the database keeps nothing of it (private temporary tables in
a transaction rolled back at the end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emitter.cli import main
from emitter.delivery.backend import opened
from emitter.ruletest.replay import ReplayOptions, replay_log
from tests.test_replay import _generate
from tests.test_replay import compiled as compiled  # noqa: F401 - the fixture


def rows(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                for t in ("kv", "throttle_windows", "throttle_summaries", "once_keys")}


def test_replay_on_postgres_matches_memory_and_keeps_nothing(
        tmp_path: Path, compiled: list, pg_cluster: Any) -> None:  # type: ignore[type-arg]
    log = tmp_path / "app.log"
    _generate(log)
    url = pg_cluster.new_database()
    with opened(url) as backend:  # a fleet's live state, which the replay must not touch
        backend.store.put("command", "live", {"state": "ok"})
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:  # a live window the replay must not see
        conn.execute("INSERT INTO throttle_windows (rule_id, key, mode, start_at, end_at, count)"
                     " VALUES ('timeouts', 'alpha', 'first', 0, 1e12, 1)")
    before = rows(url)
    memory = replay_log(compiled, str(log))
    shared = replay_log(compiled, str(log), ReplayOptions(state_url=url))
    assert shared.events == memory.events and shared.counts == memory.counts
    assert sum(row["throttled"] for row in shared.counts.values()) > 0  # the throttle ran
    assert rows(url) == before == {"kv": 1, "throttle_windows": 1, "throttle_summaries": 0,
                                   "once_keys": 0}


def test_the_command_takes_the_url(tmp_path: Path, pg_cluster: Any,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_replay import RULES

    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    log = tmp_path / "app.log"
    _generate(log)
    url = pg_cluster.new_database()
    args = ["replay", str(tmp_path / "rules.yaml"), "--file", str(log)]
    assert main(args) == 0
    memory = capsys.readouterr()
    assert main([*args, "--state-url", url]) == 0
    shared = capsys.readouterr()
    assert shared.out == memory.out and shared.out
    assert main([*args, "--state-url", "/tmp/x"]) == 2
    assert "expected postgresql://" in capsys.readouterr().err
