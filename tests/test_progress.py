"""Progress on long work: `emitter replay` and `emitter outbox drain` show a bar on stderr
when stderr is a real terminal (a pseudo-terminal here), write exactly their summary and
nothing else when stderr is a pipe, never import tqdm then, and fall back to no bar when tqdm
is missing."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from emitter.commands.progress import progress
from emitter.commands.replay import summary_lines
from emitter.delivery.outbox import Outbox
from emitter.rules.loader import load_rules
from emitter.ruletest.replay import replay_log
from emitter.templates.compiler import compile_rules

REPO = Path(__file__).resolve().parent.parent
RULES = """\
version: 1
rules:
  - id: timeouts
    trigger:
      type: file
      path: /var/log/app.log
      match: '^(?P<ts>\\S+) ERROR upstream (?P<upstream>\\w+) timed out'
    throttle: {key: "{{ upstream }}", window: 10m}
    event:
      title: "{{ upstream }} timed out"
      text: "{{ line }}"
"""
# tqdm's bar: "replay:  42%|████▎     | 1.23M/2.93M [00:00<00:00, 9.87MB/s]"
BAR = re.compile(rb"replay: +\d+%\|")
# a module named in `python -X importtime` output
IMPORTED = re.compile(r"\|\s+(tqdm|rich)(\.\S+)?\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A rule file and a log of a few MiB (several of the replay's 1 MiB reads)."""
    where = tmp_path_factory.mktemp("progress")
    rules = where / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    lines = []
    for i in range(60_000):
        stamp = f"2026-03-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        if i % 97 == 0:
            lines.append(f"{stamp} ERROR upstream u{i % 5} timed out")
        else:
            lines.append(f"{stamp} INFO request {i} served in {i % 900}ms from the cache")
    log = where / "app.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert log.stat().st_size > 3 << 20
    return rules, log


def _argv(workload: tuple[Path, Path], *python_flags: str) -> list[str]:
    rules, log = workload
    return [sys.executable, *python_flags, "-m", "emitter", "replay", str(rules),
            "--file", str(log)]


def _expected_stderr(workload: tuple[Path, Path]) -> str:
    """What replay writes to stderr without progress: its summary table, computed here."""
    rules, log = workload
    loaded = load_rules([str(rules)])
    compiled, problems = compile_rules(loaded.rules)
    assert loaded.ok and not problems
    result = replay_log(list(compiled), str(log))
    assert result.counts["timeouts"]["matched"] > 0
    return "\n".join(summary_lines(result.counts)) + "\n"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": os.pathsep.join([*extra.pop("front", "").split(), str(REPO)]),
            **extra}


def _run_in_pty(argv: list[str], env: dict[str, str], stdout: Path) -> tuple[int, bytes]:
    """Run with stderr on the slave side of a fresh pseudo-terminal (80x24, as a terminal
    window would be) and stdout to a file; return the exit code and all the terminal got."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with stdout.open("wb") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=slave,
                                 cwd=REPO, env=env)
    os.close(slave)
    got = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, "no output from the child for 120 s"
            try:
                block = os.read(master, 65536)
            except OSError:  # EIO: every slave end closed, the child is done
                break
            if not block:
                break
            got += block
    finally:
        os.close(master)
    return child.wait(timeout=120), bytes(got)


def test_a_terminal_sees_a_progress_bar(workload: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("tqdm", reason="the progress extra (tqdm) is not installed")
    code, seen = _run_in_pty(_argv(workload, "-X", "importtime"), _env(), tmp_path / "out")
    assert code == 0, seen.decode(errors="replace")
    assert BAR.search(seen), seen[-2000:]
    assert IMPORTED.search(seen.decode(errors="replace"))  # the import probe does see tqdm
    # the summary still follows, whole (the terminal turns \n into \r\n)
    assert _expected_stderr(workload).replace("\n", "\r\n").encode() in seen
    assert (tmp_path / "out").read_bytes().count(b"\n") > 0  # events went to stdout


def test_a_pipe_gets_the_summary_only(workload: tuple[Path, Path]) -> None:
    done = subprocess.run(_argv(workload), cwd=REPO, env=_env(), capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == _expected_stderr(workload).encode()


def test_without_a_terminal_tqdm_is_never_imported(workload: tuple[Path, Path]) -> None:
    done = subprocess.run(_argv(workload, "-X", "importtime"), cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "emitter.commands.progress" in done.stderr  # the probe lists what was imported
    assert IMPORTED.findall(done.stderr) == []


def test_a_terminal_without_tqdm_gets_no_bar_and_no_error(workload: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    # A `tqdm` that cannot be imported, ahead of any installed one on the path.
    (tmp_path / "shadow" / "tqdm").mkdir(parents=True)
    (tmp_path / "shadow" / "tqdm" / "__init__.py").write_text(
        "raise ImportError('tqdm is not installed here')\n")
    env = _env(front=str(tmp_path / "shadow"))
    code, seen = _run_in_pty(_argv(workload), env, tmp_path / "out")
    assert code == 0, seen.decode(errors="replace")
    assert seen == _expected_stderr(workload).replace("\n", "\r\n").encode()


def test_a_stream_that_is_not_a_terminal_gets_nothing() -> None:
    stream = io.StringIO()
    with progress("drain", 10, stream=stream) as advance:
        for _ in range(10):
            advance(1)
    assert stream.getvalue() == ""


def _filled_outbox(state: Path, count: int) -> list[str]:
    state.mkdir(mode=0o700)  # private, as emitter creates it (a wider one is warned about)
    titles = [f"event {i}" for i in range(count)]
    with Outbox.in_dir(state) as box:
        box.enqueue([("r", json.dumps({"title": t, "text": "x"}).encode()) for t in titles])
    return titles


def _drain_argv(state: Path, audit: Path) -> list[str]:
    return [sys.executable, "-m", "emitter", "outbox", "drain", "--sink", "file",
            "--sink-path", str(audit), "--until-empty", "--timeout", "60",
            "--state-dir", str(state)]


def test_drain_shows_a_bar_on_a_terminal(tmp_path: Path) -> None:
    pytest.importorskip("tqdm", reason="the progress extra (tqdm) is not installed")
    titles = _filled_outbox(tmp_path / "state", 300)
    audit = tmp_path / "audit.jsonl"
    code, seen = _run_in_pty(_drain_argv(tmp_path / "state", audit), _env(), tmp_path / "out")
    assert code == 0, seen.decode(errors="replace")
    assert re.search(rb"drain: +\d+%\|", seen), seen[-2000:]
    assert b"sent 300, retried 0, dead 0; 0 left in the outbox\r\n" in seen
    assert sorted(json.loads(line)["title"] for line in audit.read_text().splitlines()) == \
        sorted(titles)


def test_drain_on_a_pipe_writes_its_summary_only(tmp_path: Path) -> None:
    _filled_outbox(tmp_path / "state", 300)
    done = subprocess.run(_drain_argv(tmp_path / "state", tmp_path / "audit.jsonl"), cwd=REPO,
                          env=_env(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"sent 300, retried 0, dead 0; 0 left in the outbox\n"
