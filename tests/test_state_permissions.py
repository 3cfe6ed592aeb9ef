"""State files are private (issue 9 item 11): the state directory is created 0700 and the
outbox's and state store's files (db, -wal, -shm, the sender lock) 0600 whatever the umask;
an existing directory or file that others may read is warned about at start."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from emitter.delivery.outbox import Outbox
from emitter.delivery.sender import take_sender_lock
from emitter.state.dirs import resolve_state_dir
from emitter.state.store import StateStore


@pytest.fixture
def open_umask() -> Iterator[None]:
    saved = os.umask(0o022)  # the common default: files 0644, directories 0755
    yield
    os.umask(saved)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_state_is_private(tmp_path: Path, open_umask: None) -> None:
    state = resolve_state_dir(str(tmp_path / "a" / "state"), {})
    assert mode(state) == 0o700
    with Outbox.in_dir(state) as outbox:
        outbox.enqueue([("r", b'{"title":"secret","text":"x"}')])
        os.close(take_sender_lock(outbox.path))
        with StateStore(state / "state.sqlite3") as store:
            store.put("ns", "k", {"v": 1})
            files = sorted(p.name for p in state.iterdir())
            assert {"outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm",
                    "state.sqlite3", "state.sqlite3-wal"} <= set(files), files
            wide = {name: oct(mode(state / name)) for name in files
                    if mode(state / name) != 0o600}
    assert wide == {}


def test_wider_existing_state_is_warned_about(tmp_path: Path, open_umask: None,
                                              caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "outbox.sqlite3").write_bytes(b"")
    os.chmod(state / "outbox.sqlite3", 0o644)
    with caplog.at_level(logging.WARNING, logger="emitter.state.dirs"):
        resolve_state_dir(str(state), {})
    text = caplog.text
    assert f"state directory {state} has mode 0755" in text
    assert f"state file {state / 'outbox.sqlite3'} has mode 0644" in text
    assert "chmod 700" in text and "chmod 600" in text


def test_private_state_gives_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = resolve_state_dir(str(tmp_path / "state"), {})
    with Outbox.in_dir(state):
        pass
    with caplog.at_level(logging.WARNING, logger="emitter.state.dirs"):
        resolve_state_dir(str(state), {})
    assert caplog.text == ""
