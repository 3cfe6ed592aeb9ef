"""systemd's notify protocol (`Type=notify`): READY=1, RELOADING=1, STOPPING=1, STATUS= and the
watchdog, sent as datagrams to the Unix socket named by NOTIFY_SOCKET.

Written here rather than taken from a library: the protocol is one `sendto` per message, and
the libraries that wrap it either need libsystemd or are unmaintained. When NOTIFY_SOCKET is
unset (not started by systemd) every call does nothing. A name starting with `@` is an
abstract socket. Failures to send are logged once and never stop the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger("emitter.daemon")


class Notifier:
    """Sends state changes to systemd. The daemon's main loop calls `tick()`, which pets the
    watchdog when it is due: a main loop that hangs stops the petting, which is the point."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._warned = False
        self._next_pet = 0.0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 messages (half of WATCHDOG_USEC), None without one."""
        return self._interval

    def send(self, *fields: str) -> bool:
        """One datagram of newline-separated `KEY=value` fields; True when it was sent."""
        if not self._address:
            return False
        message = "\n".join(fields).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(message, self._address)
                return True
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.warning("cannot notify systemd at NOTIFY_SOCKET: %s", exc)
                return False

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))
        self.tick()

    def reloading(self) -> None:
        # systemd 253+ wants MONOTONIC_USEC with RELOADING=1 to match it with the next READY=1.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def tick(self, now: float | None = None) -> None:
        """WATCHDOG=1 when one is due (every half watchdog timeout)."""
        if self._interval is None or not self._address:
            return
        now = time.monotonic() if now is None else now
        if now >= self._next_pet:
            self._next_pet = now + self._interval
            self.send("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half the watchdog timeout, as systemd advises; None when no watchdog is set for us
    (WATCHDOG_PID, when present, must be our own pid)."""
    raw = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None
