"""One transaction per batch on the shared backend: a trigger's progress (file position, command
state, webhook delivery id) commits with its events or not at all. The failure is real: the
server refuses the COMMIT (a deferred constraint trigger), with real `emitter run` replicas."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from emitter.delivery.backend import opened
from tests.intake import FakeIntake, intake_fixture  # noqa: F401
from tests.test_daemon import Daemon, free_port, rules_file
from tests.test_daemon import daemons as daemons  # noqa: F401 - the fixture
from tests.test_pg_fleet import replica, wait_until

pytestmark = pytest.mark.slow

# A real failure at COMMIT: a deferred constraint trigger on the state table refuses a row of
# a namespace named in `refuse_commit` (file positions, command state, webhook delivery ids),
# so the transaction fails after every statement in it (the outbox rows' too) succeeded.
_FAIL_AT_COMMIT = """
CREATE TABLE refuse_commit (namespace TEXT);
CREATE FUNCTION refuse_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM refuse_commit r WHERE r.namespace = NEW.namespace) THEN
    RAISE EXCEPTION 'injected failure at commit';
  END IF;
  RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER refuse_position AFTER INSERT OR UPDATE ON kv
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_position();
"""


def test_a_failed_commit_of_a_file_position_cannot_fire_twice(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    import psycopg

    log_file = tmp_path / "app.log"
    log_file.write_text("start\n")
    rules_file(tmp_path, f"""\
  - id: boom
    trigger: {{type: file, path: {log_file}, match: 'boom (?P<n>[0-9]+)'}}
    event: {{title: "boom {{{{ n }}}}", text: x}}
""")
    url = pg_cluster.new_database()
    with opened(url):
        pass  # migrated
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FAIL_AT_COMMIT)
    first = replica(daemons, tmp_path, intake, url, name="r0")
    first.started()
    with psycopg.connect(url, autocommit=True) as conn:
        wait_until(lambda: conn.execute("SELECT count(*) FROM kv WHERE namespace = 'file'"
                                        ).fetchone() == (1,), 30, "the start position saved")
        conn.execute("INSERT INTO refuse_commit VALUES ('file')")
        with log_file.open("a") as fh:
            fh.write("boom 1\n")
        wait_until(lambda: "injected failure at commit" in "\n".join(first.raw), 30,
                   "the refused commit")
        time.sleep(2)  # an event that escaped the rolled-back batch would be delivered now
        assert intake.events == []
        assert first.stop() == 0
        conn.execute("DELETE FROM refuse_commit")
    second = replica(daemons, tmp_path, intake, url, name="r1")
    second.started()  # from the last committed position: before "boom 1"
    wait_until(lambda: intake.events, 30, "the event")
    time.sleep(2)
    assert second.stop() == 0
    assert [e["title"] for e in intake.events] == ["boom 1"]


def test_a_failed_commit_of_a_delivery_id_refuses_the_delivery_whole(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    import psycopg

    from tests.test_webhook_redelivery import GITHUB_RULE, SECRET, github_delivery
    from tests.test_webhook_redelivery import post as post_signed

    rules_file(tmp_path, GITHUB_RULE)
    url = pg_cluster.new_database()
    with opened(url):
        pass  # migrated
    port = free_port()
    d = replica(daemons, tmp_path, intake, url, "--listen", f"127.0.0.1:{port}", name="r0",
                env={"GH_HOOK_SECRET": SECRET})
    d.started()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FAIL_AT_COMMIT)
        conn.execute("INSERT INTO refuse_commit VALUES ('webhook-deliveries')")
        code, _ = post_signed(port, "/hooks/github", *github_delivery(1, "d-1"))
        assert code == 503  # the events and the id rolled back together: the sender retries
        time.sleep(2)
        assert intake.events == []
        conn.execute("DELETE FROM refuse_commit")
    assert post_signed(port, "/hooks/github", *github_delivery(1, "d-1")) == (
        202, {"accepted": 1})
    assert post_signed(port, "/hooks/github", *github_delivery(1, "d-1")) == (
        202, {"accepted": 0, "duplicates": 1})
    wait_until(lambda: intake.events, 30, "the event")
    time.sleep(2)
    assert d.stop() == 0
    assert [e["title"] for e in intake.events] == ["push 1"]


def test_a_failed_commit_of_a_command_state_fires_the_change_once(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    import psycopg

    rules_file(tmp_path, """\
  - id: chk
    trigger: {type: command, command: [sh, -c, 'exit 1'], every: 1s, on: change}
    event: {title: "chk {{ previous_state }}->{{ state }}", text: x}
""")
    url = pg_cluster.new_database()
    with opened(url):
        pass  # migrated
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FAIL_AT_COMMIT)
        conn.execute("INSERT INTO refuse_commit VALUES ('command')")
        d = replica(daemons, tmp_path, intake, url, name="r0")
        d.started()
        wait_until(lambda: "\n".join(d.raw).count("injected failure at commit") >= 3, 30,
                   "three refused commits")
        assert intake.events == []  # each run's event rolled back with its state
        conn.execute("DELETE FROM refuse_commit")
    wait_until(lambda: intake.events, 30, "the event")
    time.sleep(3)  # later runs see the saved state: no second event
    assert d.stop() == 0
    assert [e["title"] for e in intake.events] == ["chk ok->failed"]
