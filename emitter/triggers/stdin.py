"""The `stdin` trigger: JSON lines on a stream, one object per line, as `payload`.

Each line holding a JSON object fires every stdin rule once (in one dispatch call).
A line that is not a JSON object (malformed, nested too deeply, a number over Python's
4,300-digit limit...) or longer than `max_line` bytes (1 MiB) is reported through
`on_error` with its line number, counted in `lines_skipped` and skipped; the reader goes on.
Blank lines are ignored. End of input ends the trigger cleanly: `done` is set and
`reached_eof` is true (the daemon may then drain and exit when stdin was its only input);
a stop sets `done` only.
A dispatch error is reported and the same line is retried with back-off until accepted or
the trigger is stopped.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

from emitter.rules.model import Rule, StdinTrigger
from emitter.triggers.base import Backoff, Dispatch, Firing, OnError, RunnerBase
from emitter.triggers.kinds.stdin import line_variables

MAX_LINE = 1 << 20


class StdinRunner(RunnerBase):
    def __init__(
        self,
        rules: Sequence[Rule],
        dispatch: Dispatch,
        on_error: OnError,
        *,
        stream: BinaryIO | None = None,
        max_line: int = MAX_LINE,
    ) -> None:
        super().__init__("stdin", on_error)
        self._dispatch = dispatch
        self.rule_ids = tuple(r.id for r in rules if isinstance(r.trigger, StdinTrigger))
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._max_line = max_line
        self.done = threading.Event()  # the reader has ended (end of input, or stopped)
        self.reached_eof = False  # it ended because the input did (not a stop)
        self.lines_read = 0
        self.lines_skipped = 0  # bad lines reported and skipped

    def start(self) -> None:
        self._start_thread(self._run)

    def _run(self) -> None:
        # `done` is set only here: a crash (restarted by the guard) is not an end of input.
        while not self._stop.is_set():
            raw = self._stream.readline(self._max_line + 1)
            if not raw:
                self.reached_eof = not self._stop.is_set() and bool(
                    getattr(self._stream, "ended", True))  # a LineHandle knows; a file: EOF
                break
            self.lines_read += 1
            if len(raw) > self._max_line and not raw.endswith(b"\n"):
                self._skip_rest_of_line()
                self._skip(f"longer than {self._max_line} bytes")
                continue
            payload = self._parse(raw)
            if payload is not None:
                self._deliver(payload)
        self.done.set()

    def _skip(self, why: str) -> None:
        self.lines_skipped += 1
        self.report(None, f"stdin line {self.lines_read}: {why}; skipped")

    def _skip_rest_of_line(self) -> None:
        while True:
            more = self._stream.readline(self._max_line)
            if not more or more.endswith(b"\n"):
                return

    def _parse(self, raw: bytes) -> dict[str, Any] | None:
        text = raw.strip()
        if not text:
            return None
        try:
            payload = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            self._skip(f"not JSON ({reason})")
            return None
        except RecursionError:
            self._skip("JSON nested too deeply")
            return None
        except ValueError as exc:  # e.g. an integer over sys.get_int_max_str_digits() digits
            self._skip(f"JSON value refused ({exc})")
            return None
        if not isinstance(payload, dict):
            self._skip(f"a JSON {type(payload).__name__}, expected an object")
            return None
        return payload

    def _deliver(self, payload: dict[str, Any]) -> None:
        backoff = Backoff()
        at = time.time()
        variables = line_variables(payload)
        firings = [Firing(rid, "stdin", variables, at) for rid in self.rule_ids]
        while firings and not self._stop.is_set():
            try:
                self._dispatch(firings)
                self.counted(len(firings))
                return
            except Exception as exc:  # noqa: BLE001 - retry the same line
                self.report(None, f"stdin line {self.lines_read}: not accepted, retrying: {exc}")
                self._stop.wait(backoff.failed())

