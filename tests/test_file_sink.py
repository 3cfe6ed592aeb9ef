"""The file sink: JSON lines, appended, fsynced, private."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from emitter.events.encode import Encoded
from emitter.sinks.base import Outcome
from emitter.sinks.file import FileSink


def test_events_become_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = FileSink(path)
    events = [{"title": "Déployé", "text": "a\nb", "tags": ["x:y"]}, {"title": "2", "text": ""}]
    for event in events:
        assert sink.send(Encoded.of(event)).outcome is Outcome.DELIVERED
    sink.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == events
    assert "Déployé" in lines[0]  # kept readable, not \u-escaped
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"old": 1}\n')
    sink = FileSink(path)
    results = sink.send_many([Encoded.of({"n": 1}), Encoded.of({"n": 2})])
    sink.close()
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2
    assert path.read_text().splitlines() == ['{"old": 1}', '{"n":1}', '{"n":2}']


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sinks = [FileSink(path, fsync=False) for _ in range(4)]

    def write(sink: FileSink, k: int) -> None:
        for i in range(100):
            sink.send(Encoded.of({"k": k, "i": i, "pad": "x" * 500}))

    threads = [threading.Thread(target=write, args=(s, k)) for k, s in enumerate(sinks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sink in sinks:
        sink.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 400 and len({(r["k"], r["i"]) for r in rows}) == 400


def test_unwritable_path_is_retry(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    sink = FileSink(blocker / "audit.jsonl")
    result = sink.send(Encoded.of({"title": "t", "text": "x"}))
    assert result.outcome is Outcome.RETRY and "Not a directory" in result.errors[0]


def test_the_line_is_the_encoded_bytes_unchanged(tmp_path: Path) -> None:
    event = Encoded.of({"title": "Déployé ✓", "text": "a\nb", "tags": ["k:v"]})
    sink = FileSink(tmp_path / "a.jsonl")
    assert sink.send(event).outcome is Outcome.DELIVERED
    assert (tmp_path / "a.jsonl").read_bytes() == event.body + b"\n"


def test_nan_is_refused_by_the_one_encoder() -> None:
    with pytest.raises(ValueError):
        Encoded.of({"title": float("nan")})
