"""`emitter migrate` and `emitter outbox ...` on the shared backend, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from emitter.delivery.backend import opened


def emitter(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emitter", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_migrate_applies_once_and_reports(pg_cluster: Any) -> None:
    url = pg_cluster.new_database()
    before = emitter("migrate", "--status", "--state-url", url)
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == ["0001_shared_backend.sql  pending",
                                          "0002_state_counts.sql  pending"]
    done = emitter("migrate", env={"EMITTER_STATE_URL": url})
    assert done.returncode == 0 and "schema at version 2" in done.stdout, done.stderr
    again = emitter("migrate", "--state-url", url)
    assert again.returncode == 0 and "schema at version 2" in again.stdout
    assert emitter("migrate", "--status", "--state-url", url).stdout.split() == [
        "0001_shared_backend.sql", "applied", "0002_state_counts.sql", "applied"]


def test_migrate_without_a_url_or_a_server(pg_cluster: Any) -> None:
    assert emitter("migrate").returncode == 2
    gone = emitter("migrate", "--state-url", "postgresql://emitter@/x?host=/nonexistent")
    assert gone.returncode == 6
    assert "is unavailable" in gone.stderr and "Traceback" not in gone.stderr


def test_outbox_status_shows_the_fleet_backlog_and_each_replicas_leases(
        pg_cluster: Any) -> None:
    url = pg_cluster.new_database()
    with opened(url) as one, opened(url) as two:
        one.outbox.enqueue([("r", b'{"title": "a"}')] * 5)
        assert len(one.outbox.claim(2)) == 2
        assert len(two.outbox.claim(1)) == 1
        one.outbox.renew()
        two.outbox.renew()
        shown = emitter("outbox", "status", "--state-url", url, "--format", "json")
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert (status["pending"], status["inflight"]) == (2, 3)
        assert sorted(r["inflight"] for r in status["replicas"]) == [1, 2]
        text = emitter("outbox", "status", "--state-url", url).stdout
        assert "replicas    2" in text and "leases 2" in text and "leases 1" in text
        listed = emitter("outbox", "list", "--state-url", url, "--format", "json")
        assert len(json.loads(listed.stdout)) == 5
