"""The `stdin` trigger: JSON lines on a stream, one object per line, as `payload`.

Each line holding a JSON object fires every stdin rule once (in one dispatch call).
A line that is not a JSON object, or longer than `max_line` bytes (1 MiB), is reported
through `on_error` with its line number and skipped; blank lines are ignored. End of input
ends the trigger cleanly and sets `done` (the daemon may exit when stdin was its only input).
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
        self.done = threading.Event()
        self.lines_read = 0

    def start(self) -> None:
        self._start_thread(self._run)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                raw = self._stream.readline(self._max_line + 1)
                if not raw:
                    return
                self.lines_read += 1
                if len(raw) > self._max_line and not raw.endswith(b"\n"):
                    self._skip_rest_of_line()
                    self.report(None, f"stdin line {self.lines_read}: longer than "
                                      f"{self._max_line} bytes, skipped")
                    continue
                payload = self._parse(raw)
                if payload is not None:
                    self._deliver(payload)
        finally:
            self.done.set()

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
            self.report(None, f"stdin line {self.lines_read}: not JSON ({reason}), skipped")
            return None
        if not isinstance(payload, dict):
            self.report(None, f"stdin line {self.lines_read}: a JSON {type(payload).__name__}, "
                              "expected an object; skipped")
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

