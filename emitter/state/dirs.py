"""The state directory (where the outbox lives): which one, created private (0700, files
0600: queued events hold private text), proven writable; a warning when it is wider."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from emitter.errors import ConfigError

STATE_ENV = "EMITTER_STATE_DIR"
_PROBE_NAME = ".emitter-write-probe"
DIR_MODE = 0o700
FILE_MODE = 0o600
log = logging.getLogger(__name__)


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/emitter, else ~/.local/state/emitter (the XDG base-directory default)."""
    xdg = environ.get("XDG_STATE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):  # the XDG spec says relative values are to be ignored
        return Path(xdg) / "emitter"
    home = environ.get("HOME", "").strip() or str(Path.home())
    return Path(home) / ".local" / "state" / "emitter"


def choose_state_dir(flag: str | None, environ: Mapping[str, str]) -> Path:
    """The state directory the flag or environment asks for, without touching the disk."""
    if flag:
        return Path(flag).expanduser()
    from_env = environ.get(STATE_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return default_state_dir(environ)


def resolve_state_dir(flag: str | None, environ: Mapping[str, str]) -> Path:
    """The state directory: `--state-dir`, then EMITTER_STATE_DIR, then the XDG default.

    Creates it (mode 0700: events may hold private text) and proves it writable by creating,
    fsyncing and removing a probe file. Raises ConfigError with the path and the reason when
    it cannot be used, so a bad disk is a startup error, not a lost event later.
    """
    path = choose_state_dir(flag, environ)
    source = "--state-dir" if flag else (STATE_ENV if environ.get(STATE_ENV) else "default")
    if path.exists() and not path.is_dir():
        raise ConfigError(_unusable(path, source, "it is not a directory", None))
    existed = path.is_dir()
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(_unusable(path, source, "cannot create it", exc)) from exc
    if existed:
        for warning in wider_than_private(path):
            log.warning("%s", warning)
    _probe(path, source)
    return path.resolve()


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists. SQLite gives a database's -wal
    and -shm files the database file's own mode, so this keeps all three private whatever
    the umask."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def wider_than_private(path: Path) -> list[str]:
    """Warnings for the state directory and the files in it that others may read."""
    found = []
    for item in [path, *sorted(path.iterdir())]:
        try:
            mode = item.lstat().st_mode
        except OSError:
            continue  # removed meanwhile
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) or not mode & 0o077:
            continue
        want = DIR_MODE if stat.S_ISDIR(mode) else FILE_MODE
        kind = "state directory" if item == path else "state file"
        found.append(f"{kind} {item} has mode {stat.S_IMODE(mode):04o}, readable by other "
                     f"users (queued events may hold private text); `chmod {want:o} {item}`")
    return found


def _probe(path: Path, source: str) -> None:
    probe = path / f"{_PROBE_NAME}.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(_unusable(path, source, "cannot write to it", exc)) from exc


def _unusable(path: Path, source: str, what: str, exc: OSError | None) -> str:
    reason = f": {exc.strerror or exc}" if exc is not None else ""
    return (
        f"state directory {path} (from {source}) is not usable: {what}{reason}. "
        f"Pass --state-dir or set {STATE_ENV} to a writable directory."
    )
