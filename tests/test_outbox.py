"""The durable outbox and the state directory: states, bounds, durability, concurrency."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emitter.delivery.outbox import CLAIM_LEASE, Outbox
from emitter.errors import ConfigError, OutboxFullError
from emitter.state.dirs import resolve_state_dir
from tests.backends import Place


def body(n: int) -> bytes:
    return json.dumps({"title": f"event {n}", "text": "t"}).encode()


@pytest.fixture
def outbox(place: Place) -> Outbox:
    with place.outbox() as box:
        yield box


# ---- states --------------------------------------------------------------------------------


def test_enqueue_claim_deliver(outbox: Outbox) -> None:
    ids = outbox.enqueue([("r1", body(1)), ("r2", body(2))])
    assert len(ids) == 2 and ids[0] < ids[1]
    rows = outbox.claim(10)
    assert [r.id for r in rows] == ids
    assert [r.body for r in rows] == [body(1), body(2)]
    assert all(r.state == "inflight" and r.attempts == 1 for r in rows)
    assert outbox.claim(10) == []  # inflight rows are not claimed twice
    outbox.mark_delivered(ids[0])
    status = outbox.status()
    assert (status.pending, status.inflight, status.dead, status.events) == (0, 1, 0, 1)
    assert status.counters["accepted"] == 2 and status.counters["delivered"] == 1


def test_claim_is_bounded_and_oldest_first(outbox: Outbox) -> None:
    ids = outbox.enqueue([("r", body(i)) for i in range(25)])
    assert [r.id for r in outbox.claim(10)] == ids[:10]
    assert [r.id for r in outbox.claim(10)] == ids[10:20]


def test_retry_waits_until_due(outbox: Outbox) -> None:
    (event_id,) = outbox.enqueue([("r", body(1))])
    outbox.claim(1)
    later = time.time() + 60
    outbox.mark_retry(event_id, later, 503, "Service Unavailable")
    assert outbox.claim(1) == []
    assert outbox.next_due() == pytest.approx(later)
    (row,) = outbox.claim(1, now=later + 1)
    assert row.attempts == 2 and row.last_status == 503
    assert outbox.status().counters["retried"] == 1


def test_dead_letters_keep_status_and_reason(outbox: Outbox) -> None:
    ids = outbox.enqueue([("r", body(1)), ("r", body(2))])
    outbox.claim(2)
    outbox.mark_dead(ids[0], 400, "Event too far in the past")
    (dead,) = outbox.list(dead=True)
    assert (dead.id, dead.state, dead.last_status) == (ids[0], "dead", 400)
    assert dead.last_error == "Event too far in the past"
    assert [r.id for r in outbox.list()] == [ids[1]]
    status = outbox.status()
    assert status.dead == 1 and "HTTP 400: Event too far in the past" in (status.last_error or "")
    assert outbox.claim(5) == []  # dead letters are never claimed


def test_retry_dead_letters_with_fresh_deadline(outbox: Outbox) -> None:
    ids = outbox.enqueue([("r", body(i)) for i in range(3)], deadline=1)
    outbox.claim(3)
    for event_id in ids:
        outbox.mark_dead(event_id, 403, "Forbidden")
    assert outbox.retry([ids[0], 999_999]) == [ids[0]]
    (row,) = outbox.claim(5)
    assert row.id == ids[0] and row.attempts == 1
    assert row.deadline > time.time() + outbox.deadline - 60
    assert outbox.retry(all_dead=True) == ids[1:]
    assert outbox.status().dead == 0


def test_purge_dead_older_than(outbox: Outbox) -> None:
    ids = outbox.enqueue([("r", body(i)) for i in range(3)])
    outbox.claim(3)
    outbox.mark_dead(ids[0], 400, "bad")
    outbox.mark_dead(ids[1], 400, "bad")
    assert outbox.purge_dead(older_than=3600) == 0
    assert outbox.purge_dead() == 2
    assert outbox.status().events == 1  # the inflight one is untouched


def test_release_inflight_and_unclaim(outbox: Outbox) -> None:
    ids = outbox.enqueue([("r", body(i)) for i in range(4)])
    outbox.claim(4)
    outbox.unclaim(ids[:1])
    (row,) = outbox.claim(4)
    assert row.id == ids[0] and row.attempts == 1  # an untried claim does not count
    assert outbox.release_inflight() == 4
    assert len(outbox.claim(10)) == 4


def test_claimed_enqueue_is_leased(outbox: Outbox) -> None:
    (event_id,) = outbox.enqueue([("r", body(1))], claimed=True)
    assert outbox.claim(1) == []
    # A claimer that died gives the event up once its lease has run out.
    (row,) = outbox.claim(1, now=time.time() + CLAIM_LEASE + 1)
    assert row.id == event_id


# ---- bounds ----------------------------------------------------------------------------


def test_full_by_count_refuses_and_keeps_old(place: Place) -> None:
    with place.outbox(max_events=3) as box:
        kept = box.enqueue([("r", body(i)) for i in range(3)])
        with pytest.raises(OutboxFullError, match=r"is full \(3 events.*refused 1 new event"):
            box.enqueue([("r", body(9))])
        assert [r.id for r in box.list()] == kept
        assert box.status().counters["refused"] == 1
        box.claim(1)
        box.mark_delivered(kept[0])
        assert len(box.enqueue([("r", body(10))])) == 1  # room again


def test_full_is_all_or_nothing_and_counts_bytes(place: Place) -> None:
    with place.outbox(max_events=100, max_bytes=100) as box:
        box.enqueue([("r", b"x" * 60)])
        with pytest.raises(OutboxFullError, match="100 bytes"):
            box.enqueue([("r", b"y" * 10), ("r", b"z" * 40)])
        assert box.status().events == 1 and box.status().bytes == 60


def test_dead_letters_count_toward_the_bound(place: Place) -> None:
    with place.outbox(max_events=2) as box:
        ids = box.enqueue([("r", body(1)), ("r", body(2))])
        box.claim(2)
        for event_id in ids:
            box.mark_dead(event_id, 400, "bad")
        with pytest.raises(OutboxFullError, match="purge --dead"):
            box.enqueue([("r", body(3))])
        box.purge_dead()
        box.enqueue([("r", body(3))])


# ---- durability and concurrency ------------------------------------------------------------


def test_settings_are_wal_and_full_sync(place: Place, outbox: Outbox) -> None:
    import sqlite3

    place.only("sqlite")
    conn = sqlite3.connect(outbox.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert outbox._writer._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_acknowledged_events_survive_a_killed_process(place: Place) -> None:
    """A child enqueues and is killed (os._exit: no close, no cleanup) right after the
    acknowledgement; every acknowledged event is there when the outbox is reopened."""
    script = (
        "import os, sys\n"
        "from emitter.delivery.backend import open_backend\n"
        "box = open_backend(sys.argv[1]).outbox\n"
        "for i in range(50):\n"
        "    box.enqueue([('r', b'{\"n\": %d}' % i)])\n"
        "print('acked', flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, place.location], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "acked", done.stderr
    with place.outbox() as box:
        assert sorted(json.loads(r.body)["n"] for r in box.list(limit=100)) == list(range(50))


def test_concurrent_enqueues_are_grouped_and_all_kept(place: Place, outbox: Outbox) -> None:
    place.only("sqlite")  # PostgreSQL groups concurrent commits itself
    commits = 0
    real_commit = outbox._writer._commit

    def counting(batch: list) -> None:
        nonlocal commits
        commits += 1
        real_commit(batch)

    outbox._writer._commit = counting  # type: ignore[method-assign]
    ids: list[int] = []
    lock = threading.Lock()

    def producer(k: int) -> None:
        for i in range(40):
            got = outbox.enqueue([(f"r{k}", body(k * 1000 + i))])
            with lock:
                ids.extend(got)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 800
    assert outbox.status().events == 800
    assert commits < 800  # concurrent callers shared transactions


def test_one_failing_op_does_not_undo_the_others(place: Place) -> None:
    with place.outbox(max_events=5) as box:
        results: list[object] = []

        def try_enqueue(n: int) -> None:
            try:
                results.append(box.enqueue([("r", body(i)) for i in range(n)]))
            except OutboxFullError as exc:
                results.append(exc)

        threads = [threading.Thread(target=try_enqueue, args=(n,)) for n in (3, 3, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = sum(len(r) for r in results if isinstance(r, list))
        assert box.status().events == accepted <= 5
        assert any(isinstance(r, OutboxFullError) for r in results)


def test_a_second_process_sees_the_writes(place: Place, outbox: Outbox) -> None:
    with place.outbox() as other:
        outbox.enqueue([("r", body(1))])
        assert other.status().pending == 1
        other.claim(1)
        assert outbox.status().inflight == 1


def test_list_is_bounded(outbox: Outbox) -> None:
    outbox.enqueue([("r", body(i)) for i in range(30)])
    assert len(outbox.list(limit=7)) == 7


# ---- the state directory -------------------------------------------------------------------


def test_state_dir_order(tmp_path: Path) -> None:
    env = {"EMITTER_STATE_DIR": str(tmp_path / "env"), "XDG_STATE_HOME": str(tmp_path / "xdg"),
           "HOME": str(tmp_path / "home")}
    assert resolve_state_dir(str(tmp_path / "flag"), env) == tmp_path / "flag"
    assert resolve_state_dir(None, env) == tmp_path / "env"
    del env["EMITTER_STATE_DIR"]
    assert resolve_state_dir(None, env) == tmp_path / "xdg" / "emitter"
    del env["XDG_STATE_HOME"]
    assert resolve_state_dir(None, env) == tmp_path / "home" / ".local" / "state" / "emitter"


def test_state_dir_is_private(tmp_path: Path) -> None:
    path = resolve_state_dir(str(tmp_path / "new" / "state"), {})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert list(path.iterdir()) == []  # the probe file is gone


def test_state_dir_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"not-a-dir/state \(from --state-dir\) is not usable: "
                       r"cannot create it: Not a directory"):
        resolve_state_dir(str(blocker / "state"), {})
    with pytest.raises(ConfigError, match="it is not a directory"):
        resolve_state_dir(None, {"EMITTER_STATE_DIR": str(blocker)})


@pytest.mark.parametrize("path", ["/proc/self", "/sys"])
def test_unwritable_state_dir_is_refused_even_for_root(path: str) -> None:
    """Directories the kernel refuses writes to whoever asks (tests run as root, so chmod
    proves nothing): the probe must fail and say so."""
    if not os.path.isdir(path):
        pytest.skip(f"{path} not mounted here")
    with pytest.raises(ConfigError, match=rf"{path} \(from EMITTER_STATE_DIR\) is not usable: "
                       "cannot write to it"):
        resolve_state_dir(None, {"EMITTER_STATE_DIR": path})
