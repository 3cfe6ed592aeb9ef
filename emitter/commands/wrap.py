"""Running a wrapped command for `emitter exec`: output passed through live, tails kept.

`run_wrapped(argv)` starts the command without a shell, copies its stdout and stderr to
ours as they arrive (nothing is held back or lost), keeps a bounded tail of each and of the
two interleaved, forwards termination signals to it, and returns a `WrappedResult` whose
`exit_code` follows the shell's convention (128+N when the command died of signal N, 127
when it could not be started).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import BinaryIO

from emitter.triggers.childenv import child_environ

DEFAULT_TAIL = 8192  # bytes of each stream kept for the event; the template picks what to show
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
WAIT_SLICE = 1.0  # seconds per Popen.wait(timeout) call; see _wait_handling_signals

# Signals a supervisor (systemd, docker, CI runner) sends to mean "stop" or "reload".
_FORWARDED = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


@dataclass(frozen=True)
class WrappedResult:
    argv: tuple[str, ...]
    exit_code: int
    duration: float  # seconds, wall clock
    stdout: str  # tails, decoded as UTF-8 with replacement characters
    stderr: str
    output: str  # both streams interleaved in arrival order (by chunk)
    started: float  # time.time() at start
    signal: int | None = None  # the signal that killed it, if any
    error: str = ""  # why it could not be started, when exit_code is 126/127

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def variables(self) -> dict[str, object]:
        """What the rule's templates see."""
        return {
            "exit_code": self.exit_code,
            "duration": round(self.duration, 3),
            "command": self.command,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "output": self.output,
            "signal": self.signal,
            "started": int(self.started),
        }


class _Tail:
    """The last `limit` bytes written, cheap to append to (a deque of chunks)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        while self._chunks and self._size - len(self._chunks[0]) >= self.limit:
            self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        data = b"".join(self._chunks)[-self.limit :] if self.limit else b""
        # Drop a UTF-8 sequence cut in half at the start rather than show a replacement char.
        start = 0
        while start < min(4, len(data)) and (data[start] & 0xC0) == 0x80:
            start += 1
        return data[start:].decode("utf-8", errors="replace")


def _pump(
    src: BinaryIO, dst: BinaryIO | None, tails: Sequence[_Tail], lock: threading.Lock
) -> None:
    read = getattr(src, "read1", src.read)
    while True:
        chunk = read(65536)
        if not chunk:
            break
        if dst is not None:
            try:
                dst.write(chunk)
                dst.flush()
            except (BrokenPipeError, ValueError, OSError):
                dst = None  # our reader went away: keep draining so the child never blocks
        with lock:
            for tail in tails:
                tail.add(chunk)
    src.close()


def _exit_code(returncode: int) -> tuple[int, int | None]:
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def _start_failure(argv: tuple[str, ...], exc: OSError, started: float) -> WrappedResult:
    code = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE
    message = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
    return WrappedResult(argv, code, time.monotonic() - started, "", message, message,
                         time.time(), error=message)


def run_wrapped(
    argv: Sequence[str],
    *,
    tail_bytes: int = DEFAULT_TAIL,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    own_process_group: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> WrappedResult:
    """Run `argv`, pass its output through to `stdout`/`stderr` (ours by default), wait.
    The command's environment is `env`, else ours without credentials
    (emitter.triggers.childenv).

    When our stdin is not a terminal (CI, cron, systemd) the command gets its own session
    and every forwarded signal reaches it exactly once. On a terminal it stays in our
    foreground group so it can read the terminal and a Ctrl-C reaches it directly; then
    SIGINT is not forwarded a second time.
    """
    args = tuple(argv)
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr.buffer
    if own_process_group is None:
        own_process_group = not _stdin_is_tty()
    started_mono, started_wall = time.monotonic(), time.time()
    tails = (_Tail(tail_bytes), _Tail(tail_bytes), _Tail(tail_bytes))
    # Forwarding is in place before the command starts: a SIGTERM that comes as soon as
    # the command is running (it may already have written output) must reach it, not end
    # us and leave it orphaned.
    with _forwarding(forward_sigint=own_process_group) as forwarding:
        try:
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=own_process_group,
                env=dict(env) if env is not None else child_environ(os.environ),
            )
        except OSError as exc:
            return _start_failure(args, exc, started_mono)
        forwarding.attach(proc)
        returncode = _wait_pumping(proc, out, err, tails)
    code, sig = _exit_code(returncode)
    return WrappedResult(
        args, code, time.monotonic() - started_mono, tails[0].text(), tails[1].text(),
        tails[2].text(), started_wall, signal=sig,
    )


def _wait_pumping(
    proc: subprocess.Popen[bytes], out: BinaryIO, err: BinaryIO,
    tails: tuple[_Tail, _Tail, _Tail],
) -> int:
    """Copy the command's output while it runs; its return code once both pipes ended."""
    lock = threading.Lock()
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out, (tails[0], tails[2]), lock),
                         daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err, (tails[1], tails[2]), lock),
                         daemon=True),
    ]
    for t in pumps:
        t.start()
    returncode = _wait_handling_signals(proc)
    for t in pumps:
        t.join()
    return returncode


def _wait_handling_signals(proc: subprocess.Popen[bytes]) -> int:
    """`proc.wait()`, but never one blocking call. Python runs signal handlers in the main
    thread only, between bytecodes: a signal that lands just before a blocking wait starts,
    or that the kernel gives to a pump thread, would be handled (and forwarded) only when
    the command ended. `wait(timeout)` polls with short sleeps (documented; 50 ms at most
    in CPython), and pending handlers run between them."""
    while True:
        try:
            return proc.wait(timeout=WAIT_SLICE)
        except subprocess.TimeoutExpired:
            continue


def _stdin_is_tty() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, ValueError, OSError):
        return False


class _forwarding:
    """While active, signals sent to us are passed to the child instead of killing us;
    those that come before the child is attached are passed on as soon as it is."""

    def __init__(self, *, forward_sigint: bool) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._early: list[int] = []
        self._forward_sigint = forward_sigint
        self._saved: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        early, self._early = self._early, []
        for signum in early:
            self._send(signum)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and not self._forward_sigint:
            return  # the terminal already sent it to the whole foreground group
        if self._proc is None:
            self._early.append(signum)
        else:
            self._send(signum)

    def _send(self, signum: int) -> None:
        assert self._proc is not None
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signum)

    def __enter__(self) -> _forwarding:
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set from the main thread
        for sig in _FORWARDED:
            self._saved[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._saved.items():
            signal.signal(sig, old)
