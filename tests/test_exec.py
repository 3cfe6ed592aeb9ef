"""`emitter exec`: the wrapped command's output, exit code and signals (wrap.py), and the
command end to end against the loopback intake."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from emitter.commands.wrap import _forwarding, _Tail, run_wrapped

PY = sys.executable


def _run(code: str, **kwargs: object) -> tuple[object, bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    result = run_wrapped([PY, "-c", code], stdout=out, stderr=err, **kwargs)  # type: ignore[arg-type]
    return result, out.getvalue(), err.getvalue()


def test_exit_code_and_output_pass_through_unchanged() -> None:
    code = (
        "import sys\n"
        "sys.stdout.write('a' * 100000 + '\\n'); sys.stdout.flush()\n"
        "sys.stderr.write('oops \\u00e9\\n')\n"
        "sys.exit(3)"
    )
    result, out, err = _run(code, tail_bytes=50)
    assert result.exit_code == 3  # type: ignore[attr-defined]
    # every byte reaches the terminal even though the kept tail is bounded
    assert out == b"a" * 100000 + b"\n"
    assert err == "oops \u00e9\n".encode()
    assert result.stdout == "a" * 49 + "\n"  # type: ignore[attr-defined]
    assert result.stderr == "oops \u00e9\n"  # type: ignore[attr-defined]
    assert result.duration > 0  # type: ignore[attr-defined]
    # `output` holds both streams' chunks in arrival order; the order across two pipes is
    # not fixed, and only a single write is one chunk (print() makes two when unbuffered,
    # e.g. under PYTHONUNBUFFERED=1), hence os.write.
    both, _, _ = _run("import os; os.write(1, b'out\\n'); os.write(2, b'err\\n')")
    assert both.output in ("out\nerr\n", "err\nout\n")  # type: ignore[attr-defined]


def test_killed_by_signal_gives_128_plus_n() -> None:
    result, _, _ = _run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert result.exit_code == 128 + signal.SIGKILL  # type: ignore[attr-defined]
    assert result.signal == signal.SIGKILL  # type: ignore[attr-defined]


def test_missing_command_is_127_with_a_reason() -> None:
    result = run_wrapped(["/nonexistent/tool", "x"], stdout=io.BytesIO(), stderr=io.BytesIO())
    assert result.exit_code == 127
    assert "/nonexistent/tool" in result.error and result.stderr == result.error


def test_command_string_is_shell_quoted() -> None:
    result, _, _ = _run("pass")
    assert result.command.startswith(PY)  # type: ignore[attr-defined]
    assert "'pass'" not in result.command  # type: ignore[attr-defined]
    r2 = run_wrapped(["echo", "a b", "c'd"], stdout=io.BytesIO(), stderr=io.BytesIO())
    assert r2.command == "echo 'a b' 'c'\"'\"'d'"


def test_tail_keeps_last_bytes_and_drops_cut_utf8() -> None:
    tail = _Tail(5)
    for chunk in (b"hello ", "w\u00e9rld".encode()):
        tail.add(chunk)
    # last 5 bytes of "hello wérld" are "\xa9rld"? no: b"\xc3\xa9rld" is 5 bytes
    assert tail.text() == "\u00e9rld"
    tail = _Tail(4)
    tail.add("w\u00e9rld".encode())  # last 4 bytes start inside the é
    assert tail.text() == "rld"


def test_sigterm_is_forwarded_to_the_child(tmp_path: Path) -> None:
    """The wrapper (a real `python -c run_wrapped(...)` process) gets SIGTERM; the child traps
    it, writes a marker and exits 7; the wrapper exits with the child's code."""
    marker = tmp_path / "got-term"
    child = (
        "import signal, sys, time\n"
        f"def h(*a): open({str(marker)!r}, 'w').write('x'); sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, h)\n"
        "print('ready', flush=True)\n"
        # Short sleeps: a signal that lands just before a long sleep() begins is handled
        # (by Python, in the main thread) only when that sleep ends. This child is ours,
        # so it must not have the race the wrapper is tested for.
        "for _ in range(600): time.sleep(0.05)\n"
    )
    wrapper = (
        "import sys\n"
        "from emitter.commands.wrap import run_wrapped\n"
        f"r = run_wrapped([sys.executable, '-c', {child!r}])\n"
        "sys.exit(r.exit_code)\n"
    )
    proc = subprocess.Popen([PY, "-c", wrapper], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        # "ready" comes from the child, so the wrapper is past starting it: its forwarding
        # must be in place already (it is set up before the child starts).
        assert proc.stdout.readline().strip() == b"ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # also on failure: a leaked pipe fails a later test
    assert marker.read_text() == "x"


def test_a_signal_before_the_command_is_attached_still_reaches_it() -> None:
    """A stop signal that lands while the command is being started is kept and passed on
    once the command exists: the wrapper neither dies of it nor drops it."""
    with _forwarding(forward_sigint=True) as forwarding:
        signal.raise_signal(signal.SIGTERM)  # our handler runs now, before Popen
        child = subprocess.Popen([PY, "-c", "import time; time.sleep(30)"])
        try:
            forwarding.attach(child)
            assert child.wait(timeout=20) == -signal.SIGTERM
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def test_a_signal_the_main_thread_did_not_wake_for_is_still_forwarded() -> None:
    """Python runs signal handlers in the main thread only, between bytecodes. A SIGTERM
    that lands just before the wrapper's blocking wait for the command begins, or that the
    kernel gives to an output thread, does not wake that wait: forwarding it would wait
    for the command to end. Here it is sent to another thread on purpose."""
    ready = threading.Event()

    class Out(io.BytesIO):
        def write(self, data: Any) -> int:
            if b"ready" in bytes(data):
                ready.set()
            return super().write(data)

    def signal_another_thread() -> None:
        if ready.wait(20):
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    sender = threading.Thread(target=signal_another_thread)
    sender.start()
    child = ("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
             "print('ready', flush=True)\n"
             "for _ in range(600): time.sleep(0.05)\n")  # short: see the test above
    try:
        result = run_wrapped([PY, "-c", child], stdout=Out(), stderr=io.BytesIO())
    finally:
        sender.join()
    assert ready.is_set()
    assert result.exit_code == 7  # forwarded, not handled after the child's 30 s sleep
    assert result.duration < 25


@pytest.mark.skipif(not hasattr(os, "getpgid"), reason="POSIX only")
def test_child_gets_its_own_group_when_not_on_a_terminal() -> None:
    code = "import os; print(os.getpgid(0))"
    out = io.BytesIO()
    run_wrapped([PY, "-c", code], stdout=out, stderr=io.BytesIO(), own_process_group=True)
    assert int(out.getvalue()) != os.getpgid(0)
    out = io.BytesIO()
    start = time.monotonic()
    run_wrapped([PY, "-c", code], stdout=out, stderr=io.BytesIO(), own_process_group=False)
    assert int(out.getvalue()) == os.getpgid(0)
    assert time.monotonic() - start < 30


# ---- `emitter exec` end to end (subprocess, loopback intake) ---------------------------------

from tests.intake import (  # noqa: E402
    INTAKE_KEY,
    FakeIntake,
    Fault,
    intake_fixture,  # noqa: E402, F401
)

REPO = Path(__file__).resolve().parent.parent
JOBS = str(REPO / "rules" / "jobs.yaml")


def _exec(args: list[str], env: dict[str, str],
          timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PY, "-m", "emitter", "exec", *args], capture_output=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _env(intake: FakeIntake | None, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DD_API_KEY", "DATADOG_HOST")}
    env["HOME"] = str(tmp)
    if intake is not None:
        env.update({"DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY})
    return env


@pytest.mark.slow
def test_exec_passes_the_exit_code_and_sends_the_event(intake: FakeIntake, tmp_path: Path) -> None:
    code = "import sys; print('dumped 3 tables'); print('warn: slow', file=sys.stderr); sys.exit(4)"
    proc = _exec([JOBS, "--rule", "job-finished", "--var", "job=backup", "--", PY, "-c", code],
                 _env(intake, tmp_path))
    assert proc.returncode == 4, proc.stderr.decode()
    assert proc.stdout.decode() == "dumped 3 tables\n"  # the job's own output, untouched
    assert "warn: slow" in proc.stderr.decode()
    (event,) = intake.events
    assert event["title"] == "backup failed (exit 4)"
    assert event["alert_type"] == "error"
    assert "dumped 3 tables" in event["text"] and "warn: slow" in event["text"]
    assert event["tags"] == ["job:backup"]


@pytest.mark.slow
def test_exec_exit_code_survives_a_refused_event(intake: FakeIntake, tmp_path: Path) -> None:
    intake.set_mode(Fault.reject(400, "Event too far in the past"))
    proc = _exec([JOBS, "--rule", "job-finished", "--var", "job=x", "--", "true"],
                 _env(intake, tmp_path))
    assert proc.returncode == 0
    assert "the event was not sent" in proc.stderr.decode()
    assert "Event too far in the past" in proc.stderr.decode()


@pytest.mark.slow
def test_exec_runs_the_job_even_without_a_key_or_with_a_bad_rule(tmp_path: Path) -> None:
    proc = _exec([JOBS, "--rule", "job-finished", "--var", "job=x", "--", "sh", "-c", "exit 9"],
                 _env(None, tmp_path))
    assert proc.returncode == 9
    assert "DD_API_KEY" in proc.stderr.decode()
    proc = _exec([JOBS, "--rule", "no-such-rule", "--", "sh", "-c", "echo ran; exit 5"],
                 _env(None, tmp_path))
    assert proc.returncode == 5 and proc.stdout == b"ran\n"
    assert "no-such-rule" in proc.stderr.decode()


def test_exec_without_a_command_is_a_usage_error(tmp_path: Path) -> None:
    proc = _exec([JOBS, "--rule", "job-finished"], _env(None, tmp_path))
    assert proc.returncode == 2


# ---- `emitter exec` through the outbox (--state-dir, as `emitter fire`) ---------------------


def _outbox_status(state: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([PY, "-m", "emitter", "outbox", "status", "--state-dir", str(state),
                           "--format", "json"], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    status = json.loads(proc.stdout)
    assert isinstance(status, dict)
    return status


@pytest.mark.slow
def test_exec_with_a_state_dir_leaves_an_undelivered_event_in_the_outbox(
        intake: FakeIntake, tmp_path: Path) -> None:
    intake.set_mode(Fault.error(503))
    env, state = _env(intake, tmp_path), tmp_path / "state"
    proc = _exec([JOBS, "--rule", "job-finished", "--var", "job=x", "--state-dir", str(state),
                  "--deadline", "1", "--", "sh", "-c", "exit 3"], env)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err  # the job's code, whatever happened to the event
    assert "left in the outbox as id 1" in err and "HTTP 503" in err
    assert f"emitter outbox drain --state-dir {state}" in err
    assert intake.events == [] and intake.requests  # it was tried, and refused
    status = _outbox_status(state, env)
    assert (status["pending"], status["dead"]) == (1, 0)
    human = subprocess.run([PY, "-m", "emitter", "outbox", "status", "--state-dir", str(state)],
                           capture_output=True, text=True, env=env, timeout=60)
    assert "pending     1" in human.stdout


@pytest.mark.slow
def test_exec_with_a_state_dir_delivers_and_empties_the_outbox(intake: FakeIntake,
                                                               tmp_path: Path) -> None:
    env = {**_env(intake, tmp_path), "EMITTER_STATE_DIR": str(tmp_path / "state")}
    proc = _exec([JOBS, "--rule", "job-finished", "--var", "job=x", "--", "true"], env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "event sent: " in proc.stderr.decode()
    assert [e["title"] for e in intake.events] == ["x succeeded"]
    status = _outbox_status(tmp_path / "state", env)
    assert (status["pending"], status["inflight"], status["dead"], status["events"]) == (0, 0, 0, 0)
    assert status["counters"]["delivered"] == 1  # it went through the outbox


@pytest.mark.slow
def test_exec_with_a_state_dir_keeps_a_refused_event_as_a_dead_letter(intake: FakeIntake,
                                                                      tmp_path: Path) -> None:
    intake.set_mode(Fault.reject(400, "Event too far in the past"))
    env, state = _env(intake, tmp_path), tmp_path / "state"
    proc = _exec([JOBS, "--rule", "job-finished", "--var", "job=x", "--state-dir", str(state),
                  "--", "true"], env)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "Event too far in the past" in err and "kept as dead letter 1" in err
    assert _outbox_status(state, env)["dead"] == 1
