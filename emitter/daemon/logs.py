"""Structured logging for the daemon: text or JSON lines, secrets redacted, per-event lines
at debug and per-rule traffic summaries at info.

`configure(level, fmt, secrets=...)` installs one stderr handler on the `emitter` logger.
`log_event(...)` writes the per-event line (rule id, trigger, outcome, extra fields); routine
outcomes (queued, sent, throttled) are logged at DEBUG, because formatting a line per event
cost a fifth of the daemon's throughput (issue 13); `TrafficSummary` says the same at INFO
once per period, one line per rule. A `RedactingFilter` on the handler masks every secret it
was given wherever it appears: the message, its arguments, extra fields and tracebacks.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TextIO

from emitter.redaction import MIN_SECRET

LogFormat = Literal["text", "json"]
LEVELS = ("debug", "info", "warning", "error")
MASK = "***"
ROOT = "emitter"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class RedactingFilter(logging.Filter):
    """Replaces each secret (API keys, HMAC secrets) by `***` in everything a record carries.

    Attached to the handler, not the logger, so records from child loggers pass through it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short "secrets" would mask ordinary words; real keys are long. Longest first,
        # so a secret containing another is masked whole.
        found = {*self._secrets, *(s for s in secrets if s and len(s) >= MIN_SECRET)}
        self._secrets = tuple(sorted(found, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        for key, value in _fields(record).items():
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
            elif not isinstance(value, (int, float, bool, type(None))):
                setattr(record, key, self.redact(str(value)))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _timestamp(created: float) -> str:
    frac = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{frac:03d}Z"


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """`2024-05-01T12:00:00.123Z INFO event rule=x trigger=file outcome=queued`."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), record.levelname, record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extra fields, and `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        obj.update(_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            obj["exc"] = record.exc_text
        return json.dumps(obj, ensure_ascii=False, default=str)


def configure(
    level: str = "info",
    fmt: LogFormat = "text",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the `emitter` loggers to `stream` (stderr by default); returns the handler."""
    logger = logging.getLogger(ROOT)
    for old in list(logger.handlers):
        if getattr(old, "_emitter_owned", False):
            logger.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(secrets))
    handler._emitter_owned = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler


def add_secrets(secrets: Iterable[str]) -> None:
    """Mask more values (e.g. webhook tokens read once the rules are known) from now on."""
    values = list(secrets)
    for handler in logging.getLogger(ROOT).handlers:
        for flt in handler.filters:
            if isinstance(flt, RedactingFilter):
                flt.add(values)


_event_logger = logging.getLogger(f"{ROOT}.event")
# The run's own lines (start, reload, stop) keep one logger name whichever daemon module says them.
LIFECYCLE = f"{ROOT}.daemon.lifecycle"


def event_logged(level: int) -> bool:
    """Whether an event line at `level` would be written (skip building its fields if not)."""
    return _event_logger.isEnabledFor(level)


def log_event(
    rule_id: str,
    trigger: str,
    outcome: str,
    *,
    level: int = logging.DEBUG,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """The one line per event: `event rule=<id> trigger=<type> outcome=<outcome> ...`;
    at DEBUG unless told (problems are logged at WARNING or ERROR by their callers)."""
    if not _event_logger.isEnabledFor(level):
        return
    extra: dict[str, Any] = {"rule": rule_id, "trigger": trigger, "outcome": outcome}
    if fields:
        extra.update({k: v for k, v in fields.items() if k not in _STANDARD})
    _event_logger.log(level, "event", extra=extra)


SUMMARY_EVERY = 10.0  # seconds between two traffic summaries
# The counters (emitter.counters.COUNTERS) a summary reports, in this order, when not zero.
SUMMARY_COUNTERS = ("fired", "queued", "throttled", "invalid", "refused", "sent", "failed",
                    "dead")
Snapshot = Callable[[], Mapping[tuple[str, str], int]]


class TrafficSummary:
    """At INFO, every `every` seconds, one `summary` line per rule whose counters moved:
    `summary rule=<id> seconds=10.0 fired=.. queued=.. sent=..` (the counts since the last
    line). Reads the daemon's own counters (`Metrics.snapshot`), so it adds nothing to the
    per-event path; `tick()` is called from the daemon's loop, `flush()` once at stop."""

    def __init__(self, snapshot: Snapshot, every: float = SUMMARY_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._snapshot = snapshot
        self._every = every
        self._clock = clock
        self._since = clock()
        self._last: dict[tuple[str, str], int] = dict(snapshot())

    def tick(self) -> None:
        if self._clock() - self._since >= self._every:
            self.flush()

    def flush(self) -> None:
        now, counts = self._clock(), dict(self._snapshot())
        moved: dict[str, dict[str, int]] = {}
        for (name, rule_id), n in counts.items():
            delta = n - self._last.get((name, rule_id), 0)
            if delta and name in SUMMARY_COUNTERS:
                moved.setdefault(rule_id, {})[name] = delta
        seconds = round(now - self._since, 1)
        self._last, self._since = counts, now
        for rule_id in sorted(moved):
            ordered = {k: moved[rule_id][k] for k in SUMMARY_COUNTERS if k in moved[rule_id]}
            _event_logger.info("summary", extra={"rule": rule_id, "seconds": seconds, **ordered})
