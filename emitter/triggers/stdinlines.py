"""Standard input for the daemon's `stdin` trigger: lines read so that a stop never hangs.

A thread blocked in `sys.stdin.buffer.readline()` cannot be stopped, keeps a reload or a
SIGTERM waiting for its grace period, and makes the interpreter abort at exit (the stdin
buffer's lock is held). `StdinLines` reads the file descriptor itself with `select`, and
hands each runner a `handle()` whose `readline` returns b"" (end of input, as far as the
runner knows) soon after the handle is stopped. Bytes read but not yet returned stay in the
shared buffer, so the runner started after a reload continues exactly where the last ended.
"""

from __future__ import annotations

import os
import select
import threading

POLL = 0.1  # seconds between looks at the stop flag while no input arrives
CHUNK = 65536


class StdinLines:
    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._buf = bytearray()
        self._eof = False
        self._lock = threading.Lock()  # one reader at a time (one stdin unit runs at once)

    def handle(self) -> LineHandle:
        return LineHandle(self)

    @property
    def ended(self) -> bool:
        """The input reached its end and every byte of it was handed out."""
        return self._eof and not self._buf

    def _take(self, limit: int) -> bytes | None:
        """A complete line (or `limit` bytes, or the rest at EOF) from the buffer, if any."""
        end = self._buf.find(b"\n")
        if end >= 0 and (limit < 0 or end < limit):
            cut = end + 1
        elif 0 <= limit <= len(self._buf):
            cut = limit
        elif self._eof:
            cut = len(self._buf)
        else:
            return None
        line = bytes(self._buf[:cut])
        del self._buf[:cut]
        return line

    def _fill(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], POLL)
            except (OSError, ValueError):
                self._eof = True
                return
            if ready:
                try:
                    data = os.read(self._fd, CHUNK)
                except OSError:
                    data = b""
                if not data:
                    self._eof = True
                else:
                    self._buf += data
                return

    def has_line(self) -> bool:
        """A complete line is already read and waiting (the next `readline` will not block)."""
        return b"\n" in self._buf or (self._eof and bool(self._buf))

    def readline(self, limit: int, stop: threading.Event) -> bytes:
        with self._lock:
            while not stop.is_set():
                line = self._take(limit)
                if line is not None:
                    return line
                self._fill(stop)
            return b""


class LineHandle:
    """What one StdinRunner reads from; `stop()` makes its next `readline` return b""."""

    def __init__(self, source: StdinLines) -> None:
        self._source = source
        self._stop = threading.Event()

    def readline(self, limit: int = -1) -> bytes:
        return self._source.readline(limit, self._stop)

    def has_line(self) -> bool:
        return not self._stop.is_set() and self._source.has_line()

    @property
    def ended(self) -> bool:
        """b"" from `readline` was the end of the input, not this handle's stop."""
        return self._source.ended

    def stop(self) -> None:
        self._stop.set()
