"""Wake-ups for the file trigger: Linux inotify where the platform has it, a plain timeout
elsewhere.

`FileWatch.wait(timeout)` returns as soon as something changed in the directory of a
followed file (a write, a create, a rename, a delete) or when `timeout` passes, whichever is
first; the caller then reads every file as it always did, so a missed or unsupported
notification (NFS, some FUSE mounts, a non-Linux system) only costs latency up to `timeout`,
never a line. The directory is watched, not the file, so a rotation's new file and a file
that does not exist yet are seen as well.

inotify is reached through ctypes on libc's own `inotify_init1` / `inotify_add_watch`: three
calls and one read loop, which a dependency (inotify_simple is the same ctypes wrapper) would
not make shorter or safer.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import sys
import threading
from collections.abc import Iterable

# <sys/inotify.h>
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x002, 0x004, 0x008
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x040, 0x080, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO
         | _IN_CREATE | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF)
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, 0o2000000


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        return libc
    except (OSError, AttributeError):  # no libc by that name, or one without inotify
        return None


class FileWatch:
    """Wakes a file-tail loop when a followed file's directory changes (see the module doc)."""

    def __init__(self, paths: Iterable[str], *, use_inotify: bool = True) -> None:
        self._fd = -1
        self._wake_r, self._wake_w = os.pipe()  # stop() interrupts a wait at once
        os.set_blocking(self._wake_r, False)
        self._libc: ctypes.CDLL | None = None
        self._watched: set[str] = set()
        self._lock = threading.Lock()
        libc = _libc() if use_inotify else None
        if libc is not None:
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd >= 0:
                self._fd, self._libc = fd, libc
        for path in paths:
            self.add(path)

    @property
    def notified(self) -> bool:
        """True when changes wake the loop (inotify); False when it only times out."""
        return self._fd >= 0

    def add(self, path: str) -> None:
        """Watch the directory holding `path`, and the one holding its target when it is a
        symlink (again, if a directory was removed and made anew)."""
        if self._fd < 0 or self._libc is None:
            return
        with self._lock:
            for real in {os.path.abspath(path), os.path.realpath(path)}:
                directory = os.path.dirname(real)
                if self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK) >= 0:
                    self._watched.add(directory)

    def wait(self, timeout: float) -> bool:
        """Block until a change or `timeout`; True when woken by a change or by `wake()`."""
        fds = [self._wake_r] + ([self._fd] if self._fd >= 0 else [])
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):  # closed under us by close(): a stop is coming
            return False
        for fd in ready:
            self._drain(fd)
        return bool(ready)

    def wake(self) -> None:
        """End a wait now (stop)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    @staticmethod
    def _drain(fd: int) -> None:
        # The events themselves are not needed: any change means "read every file".
        try:
            while os.read(fd, 65536):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._wake_r = self._wake_w = -1
