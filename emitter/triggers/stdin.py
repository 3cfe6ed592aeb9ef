"""The `stdin` trigger: JSON lines on a stream, one object per line, as `payload`.

Each line holding a JSON object fires every stdin rule once (in one dispatch call).
A line that is not a JSON object (malformed, nested too deeply, a number over Python's
4,300-digit limit...) or longer than `max_line` bytes (1 MiB) is reported through
`on_error` with its line number, counted in `lines_skipped` and skipped; the reader goes on.
Blank lines are ignored. Lines already read and waiting (a burst) are dispatched together,
up to MAX_BATCH, so a burst costs one durable commit, not one per line; a lone line is never
held back waiting for company. End of input ends the trigger cleanly: `done` is set and
`reached_eof` is true (the daemon may then drain and exit when stdin was its only input);
a stop sets `done` only.
A dispatch error is reported and the same lines are retried with back-off until accepted or
the trigger is stopped (a dispatch commits all of its events or none).
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
MAX_BATCH = 512  # lines of a burst dispatched (and committed) together


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
            payloads, ended = self._read_burst()
            if payloads:
                self._deliver(payloads)
            if ended:
                break
        self.done.set()

    def _read_burst(self) -> tuple[list[dict[str, Any]], bool]:
        """The next line's payload plus those of the lines already waiting behind it (at
        most MAX_BATCH lines), and whether the input ended."""
        payloads: list[dict[str, Any]] = []
        waiting = getattr(self._stream, "has_line", None)
        for _ in range(MAX_BATCH):
            raw = self._stream.readline(self._max_line + 1)
            if not raw:
                self.reached_eof = not self._stop.is_set() and bool(
                    getattr(self._stream, "ended", True))  # a LineHandle knows; a file: EOF
                return payloads, True
            self.lines_read += 1
            if len(raw) > self._max_line and not raw.endswith(b"\n"):
                self._skip_rest_of_line()
                self._skip(f"longer than {self._max_line} bytes")
            elif (payload := self._parse(raw)) is not None:
                payloads.append(payload)
            if waiting is None or not waiting():
                break
        return payloads, False

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

    def _deliver(self, payloads: list[dict[str, Any]]) -> None:
        backoff = Backoff()
        at = time.time()
        firings = []
        for payload in payloads:
            variables = line_variables(payload)
            firings += [Firing(rid, "stdin", variables, at) for rid in self.rule_ids]
        while firings and not self._stop.is_set():
            try:
                self._dispatch(firings)
                self.counted(len(firings))
                return
            except Exception as exc:  # noqa: BLE001 - retry the same lines
                self.report(None, f"stdin line {self.lines_read}: not accepted, retrying: {exc}")
                self._stop.wait(backoff.failed())
