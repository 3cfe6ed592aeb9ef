"""Several real `emitter run` replicas on one PostgreSQL (a throwaway cluster) and the loopback
intake as Datadog: a schedule slot fires once, a throttle holds across replicas, a SIGKILLed
replica's events are delivered by the others, and a database restart loses nothing accepted."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from emitter.delivery.backend import opened
from tests.intake import FakeIntake, Fault, intake_fixture  # noqa: F401
from tests.test_daemon import Daemon, free_port, rules_file
from tests.test_daemon import daemons as daemons  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


def replica(daemons: list[Daemon], tmp: Path, intake: FakeIntake, url: str, *extra: str,
            name: str, env: dict[str, str] | None = None) -> Daemon:
    home = tmp / name
    home.mkdir(exist_ok=True)
    d = Daemon([str(tmp / "rules"), "--state-url", url, "--grace", "3", *extra], intake, home,
               env=env)
    daemons.append(d)
    return d


def post(port: int, path: str, payload: Any) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                 data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_until(check: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_schedule_slot_fires_once_across_three_replicas(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    rules_file(tmp_path, """\
  - id: tick
    trigger: {type: schedule, every: 1s}
    event:
      title: "tick {{ scheduled_timestamp | int }}"
      text: slot
""")
    url = pg_cluster.new_database()
    fleet = [replica(daemons, tmp_path, intake, url, name=f"r{i}") for i in range(3)]
    for d in fleet:
        d.started()
    time.sleep(10)
    for d in fleet:
        assert d.stop() == 0
    slots = Counter(e["title"] for e in intake.events)
    assert len(slots) >= 8  # about ten seconds of slots, each seen...
    assert set(slots.values()) == {1}, slots  # ...exactly once
    ticks = sorted(int(t.split()[1]) for t in slots)
    assert ticks == list(range(ticks[0], ticks[-1] + 1))  # and none missed


def test_throttle_holds_across_replicas(tmp_path: Path, intake: FakeIntake,
                                        daemons: list[Daemon], pg_cluster: Any) -> None:
    rules_file(tmp_path, """\
  - id: first
    trigger: {type: webhook, path: /first}
    params: {payload: {type: object, example: {n: 1}}}
    throttle: {key: "one", window: 1h, mode: first}
    event: {title: "first {{ payload.n }}", text: x}
  - id: summ
    trigger: {type: webhook, path: /summ}
    params: {payload: {type: object, example: {n: 1}}}
    throttle: {key: "one", window: 12s, mode: summary}
    event: {title: "summ {{ payload.n }}", text: x}
""")
    url = pg_cluster.new_database()
    ports = [free_port() for _ in range(3)]
    fleet = [replica(daemons, tmp_path, intake, url, "--listen", f"127.0.0.1:{port}",
                     name=f"r{i}") for i, port in enumerate(ports)]
    for d in fleet:
        d.started()
    answers: Counter[int] = Counter()
    lock = threading.Lock()

    def sender(k: int) -> None:
        for n in range(k, 600, 6):
            for path in ("/first", "/summ"):
                code = post(ports[n % 3], path, {"n": n})
                with lock:
                    answers[code] += 1

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {202: 1200}
    summary = lambda: [e for e in intake.events if "throttle:summary" in e.get("tags", [])]  # noqa: E731
    wait_until(lambda: summary(), 60, "the summary")
    time.sleep(2)  # a second summary would come within the same flush tick
    for d in fleet:
        assert d.stop() == 0
    titles = [e["title"] for e in intake.events]
    assert len([t for t in titles if t.startswith("first ")]) == 1
    assert len([t for t in titles if t.startswith("summ ")]) == 1
    (only,) = summary()
    assert only["title"].startswith("599 more in 12s: summ ")


def test_a_change_check_runs_on_one_replica_at_a_time(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    runs, flag = tmp_path / "runs.log", tmp_path / "red"
    rules_file(tmp_path, f"""\
  - id: chk
    trigger:
      type: command
      command: [sh, -c, 'echo $PPID >> {runs}; test ! -e {flag}']
      every: 1s
      timeout: 2s
      on: change
    event: {{title: "chk {{{{ previous_state }}}}->{{{{ state }}}}", text: x}}
""")
    url = pg_cluster.new_database()
    fleet = [replica(daemons, tmp_path, intake, url, name=f"r{i}") for i in range(3)]
    for d in fleet:
        d.started()
    ran = lambda: runs.read_text().split() if runs.exists() else []  # noqa: E731
    wait_until(lambda: len(ran()) >= 4, 30, "a few runs")
    flag.write_text("")
    wait_until(lambda: intake.events, 30, "the failed check's event")
    seen = len(ran())
    wait_until(lambda: len(ran()) >= seen + 3, 30, "runs after the change")
    (holder,) = set(ran())  # every run so far on one replica: the lease holder's
    assert [e["title"] for e in intake.events] == ["chk ok->failed"]
    victim = next(d for d in fleet if str(d.proc.pid) == holder)
    assert victim.stop() == 0  # its lease runs out, another replica takes the check over
    flag.unlink()  # and reads the shared state: it reports green, not red again
    wait_until(lambda: len(intake.events) >= 2, 60, "the check back to green")
    time.sleep(3)
    for d in fleet:
        if d is not victim:
            assert d.stop() == 0
    assert [e["title"] for e in intake.events] == ["chk ok->failed", "chk failed->ok"]
    assert len(set(ran())) == 2  # the victim's runs, then one other replica's


def test_a_killed_replica_leaves_its_events_to_the_others(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    rules_file(tmp_path, """\
  - id: idle
    trigger: {type: manual}
    event: {title: idle, text: x}
""")
    url = pg_cluster.new_database() + "&lease=3"
    with opened(url) as backend:
        for start in range(0, 3000, 500):
            backend.outbox.enqueue([("bulk", json.dumps({"title": f"e{n}", "text": "x"}).encode())
                                    for n in range(start, start + 500)])
    intake.set_mode(Fault.slow(0.02))  # a drain of a few seconds, so the kill lands mid-way
    fleet = [replica(daemons, tmp_path, intake, url, name=f"r{i}") for i in range(3)]
    for d in fleet:
        d.started()
    intake.wait_for_events(600, timeout=60)
    victim = fleet[0]
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(10)
    with opened(url) as backend:  # its leases have not run out yet (lease=3)
        held = sum(r.inflight for r in backend.outbox.replicas() if r.pid == victim.proc.pid)
    wait_until(lambda: len({e["title"] for e in intake.events}) >= 3000, 120, "every event")
    for d in fleet[1:]:
        assert d.stop() == 0
    seen = Counter(e["title"] for e in intake.events)
    assert set(seen) == {f"e{n}" for n in range(3000)}
    duplicates = sum(seen.values()) - len(seen)
    print(f"duplicates after the kill: {duplicates} (the victim held {held} leases)")
    assert duplicates <= held


def test_a_database_restart_loses_nothing_accepted(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    rules_file(tmp_path, """\
  - id: hook
    trigger: {type: webhook, path: /hook}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "hook {{ payload.n }}", text: x}
""")
    url = pg_cluster.new_database()
    port = free_port()
    d = replica(daemons, tmp_path, intake, url, "--listen", f"127.0.0.1:{port}", name="r0")
    d.started()
    answers: dict[int, int] = {}
    stop = threading.Event()

    def sender() -> None:
        n = 0
        while not stop.is_set():
            answers[n] = post(port, "/hook", {"n": n})
            n += 1
            time.sleep(0.01)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        wait_until(lambda: len(answers) > 100, 30, "requests before the stop")
        pg_cluster.stop_immediate()
        wait_until(lambda: 503 in answers.values(), 30, "a 503 while the database is down")
        health = _healthz(port)
        time.sleep(2)
        pg_cluster.restart()
        count = len(answers)
        wait_until(lambda: list(answers.values())[count:].count(202) > 100, 60,
                   "202s after the restart")
    finally:
        stop.set()
        thread.join()
    assert health["database"] == "unreachable"
    assert set(answers.values()) <= {202, 503}
    accepted = {f"hook {n}" for n, code in answers.items() if code == 202}
    try:
        wait_until(lambda: accepted <= {e["title"] for e in intake.events}, 60, "every 202")
    except AssertionError:
        missing = sorted(accepted - {e["title"] for e in intake.events})
        raise AssertionError(f"{len(missing)} accepted event(s) never delivered: {missing[:20]}"
                             "; the daemon said:\n" + "\n".join(d.raw[-60:])) from None
    refused = {f"hook {n}" for n, code in answers.items() if code == 503}
    # A refusal is never delivered, even for a request whose COMMIT was in flight when the
    # server died: the daemon asks the restarted server how that transaction ended.
    in_doubt = sorted(refused & {e["title"] for e in intake.events})
    resolved = [line for line in d.lines if str(line.get("msg", "")).startswith("database COMMIT")]
    print(f"in-doubt COMMITs resolved: {len(resolved)}: {resolved}")
    assert not in_doubt, (f"{len(in_doubt)} refused event(s) delivered: {in_doubt[:20]}"
                          "; the daemon said:\n" + "\n".join(d.raw[-60:]))
    assert _healthz(port)["database"] == "reachable"
    assert d.stop() == 0


def _healthz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


def test_a_delivery_sent_to_two_replicas_at_once_makes_one_event(
        tmp_path: Path, intake: FakeIntake, daemons: list[Daemon], pg_cluster: Any) -> None:
    from tests.test_webhook_redelivery import GITHUB_RULE, SECRET, github_delivery
    from tests.test_webhook_redelivery import post as post_signed

    rules_file(tmp_path, GITHUB_RULE)  # the preset dedups on X-GitHub-Delivery
    url = pg_cluster.new_database()
    ports = [free_port() for _ in range(2)]
    fleet = [replica(daemons, tmp_path, intake, url, "--listen", f"127.0.0.1:{port}",
                     name=f"r{i}", env={"GH_HOOK_SECRET": SECRET})
             for i, port in enumerate(ports)]
    for d in fleet:
        d.started()
    answers: list[tuple[int, int, Any]] = []
    lock = threading.Lock()

    def send(n: int, port: int, gate: threading.Barrier) -> None:
        gate.wait()
        code, body = post_signed(port, "/hooks/github", *github_delivery(n, f"d-{n}"))
        while code == 503:  # the twin is being accepted on the other replica: retry
            time.sleep(0.2)
            code, body = post_signed(port, "/hooks/github", *github_delivery(n, f"d-{n}"))
        with lock:
            answers.append((n, code, body))

    for n in range(30):
        gate = threading.Barrier(2)
        pair = [threading.Thread(target=send, args=(n, port, gate)) for port in ports]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
    wait_until(lambda: len(intake.events) >= 30, 60, "one event per delivery")
    time.sleep(2)  # a second event for some delivery would be sent by now
    for d in fleet:
        assert d.stop() == 0
    assert {code for _, code, _ in answers} == {202}
    assert sorted(b.get("accepted", 0) for _, _, b in answers) == [0] * 30 + [1] * 30
    assert Counter(e["title"] for e in intake.events) == {f"push {n}": 1 for n in range(30)}
