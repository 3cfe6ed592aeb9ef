"""What issue 3 must show, on loopback: the intake down then up, kill -9 mid-drain, a 429
storm, permanent refusals, a full outbox, deadlines, and an unwritable state directory."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emitter.delivery.outbox import Outbox
from emitter.delivery.retry import RetryPolicy
from emitter.delivery.sender import Sender
from emitter.delivery.settler import Settler
from emitter.errors import OutboxFullError
from emitter.settings import Settings
from emitter.sinks.registry import sink_factory
from tests.intake import INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture

FAST = RetryPolicy(max_attempts=1_000_000, base=0.02, cap=0.2, deadline=3600)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_nagle(monkeypatch: pytest.MonkeyPatch) -> None:
    # See tests/test_sender.py: without it every answer waits ~40 ms for a delayed ACK.
    from tests import intake

    monkeypatch.setattr(intake._Handler, "disable_nagle_algorithm", True, raising=False)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.in_dir(tmp_path)
    yield box
    box.close()


def marked(n: int, **extra: object) -> bytes:
    return json.dumps({"title": f"event {n}", "text": "body", **extra}).encode()


def delivered_titles(intake: FakeIntake) -> Counter[str]:
    return Counter(e["title"] for e in intake.events)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def start_sender(outbox: Outbox, intake: FakeIntake, **kwargs: object) -> Sender:
    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})
    kwargs.setdefault("policy", FAST)
    sender = Sender(outbox, sink_factory("datadog", settings, timeout=5), **kwargs)
    sender.start()
    return sender


def test_intake_down_then_up_loses_nothing(intake: FakeIntake, outbox: Outbox) -> None:
    intake.down()
    outbox.enqueue([("r", marked(i)) for i in range(200)])
    sender = start_sender(outbox, intake)
    try:
        # attempts fail with "connection refused" meanwhile
        assert wait_until(lambda: outbox.status().counters["retried"] > 0, timeout=20)
        assert outbox.status().pending + outbox.status().inflight == 200
        intake.up()
        assert sender.drain(timeout=30)
    finally:
        sender.stop(5)
    assert delivered_titles(intake) == Counter(f"event {i}" for i in range(200))
    assert outbox.status().dead == 0


@pytest.mark.slow
def test_kill_9_mid_drain_loses_nothing(intake: FakeIntake, tmp_path: Path) -> None:
    total = 3000
    with Outbox.in_dir(tmp_path) as box:
        for start in range(0, total, 500):
            box.enqueue([("r", marked(i)) for i in range(start, start + 500)])
    intake.set_mode(Fault.slow(0.002))  # a realistic few ms per answer
    env = {**os.environ, "DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url,
           "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-m", "emitter", "outbox", "drain", "--state-dir", str(tmp_path),
         "--until-empty"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        intake.wait_for(total // 3, timeout=60)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    received_before = len(intake.requests)
    assert 0 < received_before < total, "the kill must land mid-way"
    conn = sqlite3.connect(tmp_path / "outbox.sqlite3")
    (in_flight_at_kill,) = conn.execute(
        "SELECT count(*) FROM events WHERE state = 'inflight'").fetchone()
    conn.close()
    intake.set_mode(None)
    with Outbox.in_dir(tmp_path) as box:  # the restart
        sender = start_sender(box, intake)
        try:
            assert sender.drain(timeout=60)
        finally:
            sender.stop(5)
    got = delivered_titles(intake)
    assert set(got) == {f"event {i}" for i in range(total)}, "an event was lost"
    duplicates = sum(got.values()) - total
    print(f"kill -9 after {received_before} requests: {in_flight_at_kill} in flight, "
          f"{duplicates} duplicate(s)")
    assert duplicates <= in_flight_at_kill
    # In flight = claimed (in a worker or queued for one) or sent but not yet recorded.
    assert in_flight_at_kill <= 4 + 32 + Settler.LIMIT


# How late a request that another worker had already started (before a 429 reached the
# sender) may land at the intake after that 429. A few ms on a quiet machine, tens of ms
# on a loaded one (one GIL for the intake and the four workers); generous on purpose, and
# still well short of the reset, so most of each window must be silent.
ON_THE_WIRE = 0.3


def test_429_storm_waits_for_the_reset(intake: FakeIntake, outbox: Outbox) -> None:
    reset, workers = 1.0, 4
    intake.set_mode(Fault.rate_limited(reset=reset))
    calm = threading.Timer(1.5, intake.set_mode, args=(None,))
    calm.start()
    outbox.enqueue([("r", marked(i)) for i in range(60)])
    sender = start_sender(outbox, intake, workers=workers)
    try:
        assert sender.drain(timeout=30)
    finally:
        sender.stop(5)
        calm.cancel()
    requests = intake.requests
    limited = [r for r in requests if r.status == 429]
    assert limited, "the storm must have happened"
    for answer in limited:
        window = [r for r in requests if answer.time < r.time < answer.time + reset]
        # Each worker has its own sink and kept-alive connection: the worker that got this
        # 429 sends nothing on it before the reset time, with no margin at all.
        same = [r for r in window if r.client_port == answer.client_port]
        assert same == [], f"{len(same)} request(s) from the 429's own worker before the reset"
        # The others pause too; only requests they had started before the 429 reached the
        # sender may still land, and those arrive within ON_THE_WIRE.
        late = [round(r.time - answer.time, 3) for r in window
                if r.time > answer.time + ON_THE_WIRE]
        assert late == [], f"request(s) {late} s after a 429, before its {reset} s reset"
    # Paused together: 429s more than ON_THE_WIRE apart are a reset apart, each such round
    # at most one per worker (measured on the intake's clock, not the timer's).
    span = limited[-1].time - limited[0].time
    assert len(limited) <= workers * (span / reset + 1)
    assert delivered_titles(intake) == Counter(f"event {i}" for i in range(60))
    assert sender.counters().rate_limited >= 1


def test_429_with_only_retry_after_is_honoured(intake: FakeIntake, outbox: Outbox) -> None:
    intake.enqueue(Fault.rate_limited(reset=None, retry_after=0.6))
    outbox.enqueue([("r", marked(i)) for i in range(5)])
    sender = start_sender(outbox, intake, workers=1)
    try:
        assert sender.drain(timeout=20)
    finally:
        sender.stop(5)
    first, second = intake.requests[:2]
    assert first.status == 429 and second.time - first.time >= 0.6


def test_permanent_refusals_become_dead_letters_others_flow(
    intake: FakeIntake, outbox: Outbox
) -> None:
    intake.enqueue(Fault.slow(0), Fault.reject(403, "Forbidden"),
                   Fault.reject(400, "Invalid alert_type"))
    old = int(time.time()) - 30 * 86400  # the intake answers 400 text/plain, like Datadog
    outbox.enqueue([("r", marked(i)) for i in range(30)] + [("old", marked(99, date_happened=old))])
    sender = start_sender(outbox, intake, workers=1)
    try:
        assert sender.drain(timeout=30)
    finally:
        sender.stop(5)
    dead = outbox.list(dead=True)
    reasons = sorted((row.last_status, row.last_error) for row in dead)
    assert reasons == [(400, "Event too far in the past"), (400, "Invalid alert_type"),
                       (403, "Forbidden")]
    assert sum(delivered_titles(intake).values()) == 28
    assert sender.counters().dead == 3 and outbox.status().pending == 0


def test_full_outbox_refuses_new_keeps_accepted(intake: FakeIntake, tmp_path: Path) -> None:
    intake.down()
    with Outbox.in_dir(tmp_path, max_events=50) as box:
        box.enqueue([("r", marked(i)) for i in range(50)])
        sender = start_sender(box, intake)
        try:
            with pytest.raises(OutboxFullError, match="full.*nothing already accepted was dropped"):
                box.enqueue([("r", marked(50))])
            intake.up()
            assert sender.drain(timeout=30)
            box.enqueue([("r", marked(51))])  # room again once delivered
            assert sender.drain(timeout=30)
        finally:
            sender.stop(5)
        assert box.status().counters["refused"] == 1
    expected = Counter(f"event {i}" for i in [*range(50), 51])
    assert delivered_titles(intake) == expected


def test_deadline_turns_retries_into_a_dead_letter(intake: FakeIntake, outbox: Outbox) -> None:
    intake.set_mode(Fault.error(503, "Service Unavailable"))
    sender = start_sender(outbox, intake, workers=1)
    try:
        # Queued once the sender runs (it wakes on enqueue), so its start-up on a loaded
        # machine does not eat the deadline meant for retries.
        outbox.enqueue([("r", marked(1))], deadline=1.0)
        assert sender.drain(timeout=20)
    finally:
        sender.stop(5)
    (row,) = outbox.list(dead=True)
    assert row.last_status == 503 and row.attempts >= 2
    assert row.last_error and row.last_error.startswith("deadline passed after")
    assert "Service Unavailable" in row.last_error


@pytest.mark.parametrize("where", ["under-a-file", "/sys/emitter-state"])
def test_unwritable_state_dir_is_a_startup_error(tmp_path: Path, where: str) -> None:
    if where == "under-a-file":
        (tmp_path / "f").write_text("")
        where = str(tmp_path / "f" / "state")
    done = subprocess.run(
        [sys.executable, "-m", "emitter", "outbox", "drain", "--state-dir", where,
         "--sink", "stdout", "--until-empty"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 6
    assert f"state directory {where} " in done.stderr  # unusable, or missing: never created
    assert "Traceback" not in done.stderr
