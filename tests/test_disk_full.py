"""A full disk under the state directory (issue 9 item 1), on a real small tmpfs: the outbox
refuses new events with OutboxUnavailableError (webhooks answer 503), no sender thread dies,
health says not ok, delivery resumes by itself when space returns, and an outcome that could
not be recorded is kept and retried, so no event reaches the intake twice."""

from __future__ import annotations

import errno
import http.client
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emitter.delivery.outbox import Outbox
from emitter.delivery.retry import RetryPolicy
from emitter.delivery.sender import Sender
from emitter.errors import OutboxUnavailableError
from emitter.settings import Settings
from emitter.sinks.registry import sink_factory
from tests.intake import INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture
from tests.test_daemon import Daemon, free_port, rules_file, start
from tests.test_daemon import daemons as daemons  # noqa: F401 - the `daemons` fixture

FAST = RetryPolicy(max_attempts=1_000_000, base=0.01, cap=0.1, deadline=3600)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file; returns it (unlink to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def body(n: int) -> bytes:
    return b'{"title":"event %d","text":"%s"}' % (n, b"x" * 2000)


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_enqueue_on_a_full_disk_is_refused_then_accepted_again(small_disk: Path) -> None:
    with Outbox.in_dir(small_disk) as outbox:
        outbox.enqueue([("r", body(0))])
        filler = fill(small_disk)
        with pytest.raises(OutboxUnavailableError, match="full"):
            for n in range(100):
                outbox.enqueue([("r", body(n)) for _ in range(20)])
        filler.unlink()
        assert outbox.enqueue([("r", body(1))])


def test_webhook_answers_503_while_the_disk_is_full(small_disk: Path, tmp_path: Path,
                                                    intake: FakeIntake,
                                                    daemons: list[Daemon]) -> None:
    rules_file(tmp_path, "  - id: hook\n    trigger: {type: webhook, path: /h}\n"
                         '    event: {title: "{{ payload.t }}", text: "' + "x" * 3000 + '"}\n')
    port = free_port()
    d = start(daemons, tmp_path, intake, "--listen", f"127.0.0.1:{port}",
              "--state-dir", str(small_disk / "state"))
    assert _post(("127.0.0.1", port), 0) == 202
    intake.wait_for_events(1, timeout=15)
    filler = fill(small_disk)
    statuses = [_post(("127.0.0.1", port), n) for n in range(1, 200)]
    assert 503 in statuses and 500 not in statuses, statuses
    filler.unlink()
    assert _post(("127.0.0.1", port), 999) == 202  # accepted again, no restart
    wait_until(lambda: "n999" in [e["title"] for e in intake.events], 30, "n999 delivered")
    assert d.stop() == 0


def _post(address: tuple[str, int], n: int) -> int:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("POST", "/h", body=b'{"t": "n%d"}' % n,
                     headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def _held(sender: Sender) -> bool:
    health = sender.health()
    return not health.ok and "settler" in health.failing and health.unsettled > 0


def test_delivery_survives_a_full_disk_and_resumes(small_disk: Path,
                                                   intake: FakeIntake) -> None:
    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})
    factory = sink_factory("datadog", settings, timeout=5)
    n = 40
    with Outbox.in_dir(small_disk) as outbox:
        outbox.enqueue([("r", body(i)) for i in range(n)])
        intake.set_mode(Fault.slow(0.1))  # answers arrive after the disk has filled
        sender = Sender(outbox, factory, workers=2, policy=FAST)
        sender.start()
        try:
            intake.wait_for(1, timeout=15)  # a batch is claimed and being sent
            filler = fill(small_disk)
            # Outcomes the outbox cannot record are held, not dropped; no thread dies.
            wait_until(lambda: _held(sender), 30, "an outcome held while the disk is full")
            assert sender.health().threads_alive
            filler.unlink()  # space is back: delivery resumes by itself, no restart
            assert sender.drain(timeout=60), sender.health()
            wait_until(lambda: sender.health().ok, 30, "health to be ok again")
        finally:
            assert sender.stop(10)
        restarted = Sender(outbox, factory, workers=2, policy=FAST)  # a restart sends nothing
        restarted.start()
        try:
            assert restarted.drain(timeout=30)
        finally:
            restarted.stop(10)
    sent = Counter(e["title"] for e in intake.events)
    assert set(sent) == {f"event {i}" for i in range(n)}
    assert [t for t, times in sent.items() if times > 1] == []


def test_throttle_state_that_cannot_be_saved_never_re_dispatches(small_disk: Path,
                                                                 tmp_path: Path) -> None:
    from emitter.counters import Metrics
    from emitter.delivery.pipeline import Pipeline, RuleSet, context_factory
    from emitter.delivery.throttle import Throttler
    from emitter.firing import Firing
    from emitter.rules.loader import load_rules
    from emitter.state.store import StateStore
    from emitter.templates.compiler import compile_rules

    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: t\n    trigger: {type: stdin}\n"
                     "    throttle: {key: \"{{ payload.k }}\", window: 60s}\n"
                     "    event: {title: \"{{ payload.k }}\", text: x}\n")
    compiled, _ = compile_rules(load_rules([str(rules)]).rules)
    store = StateStore(small_disk / "state.sqlite3")
    try:
        with Outbox(tmp_path / "outbox.sqlite3") as outbox:
            pipe = Pipeline(RuleSet.of(compiled), outbox, metrics=Metrics(),
                            context=context_factory("h", (), {}),
                            throttler=Throttler(store), store=store)
            fill(small_disk)
            for n in range(50):  # each a new window: a write the full disk refuses
                pipe.dispatch([Firing("t", "stdin", {"payload": {"k": f"k{n}"}}, time.time())])
            pipe.dispatch([Firing("t", "stdin", {"payload": {"k": "k0"}}, time.time())])
            titles = [json.loads(r.body)["title"] for r in outbox.list_events(limit=100)]
    finally:
        store.close()
    assert titles == [f"k{n}" for n in range(50)]  # each once; the repeat still throttled
