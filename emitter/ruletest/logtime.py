"""Timestamps as log lines write them, for `emitter replay` (throttling on the log's own time).

Accepted forms (the value of a `ts` or `timestamp` named group):

* ISO 8601 / RFC 3339: `2026-01-01T09:30:00Z`, `2026-01-01T09:30:00.123+02:00`,
  `2026-01-01 09:30:00`, `2026-01-01 09:30:00,123` (Python logging's comma); RFC 5424
  syslog uses this form too.
* Apache/nginx common and combined log: `10/Oct/2025:13:55:36 -0700` (brackets allowed).
* BSD syslog (RFC 3164): `Oct 10 13:55:36`, `Oct  1 13:55:36` (no year: `default_year`).
* POSIX time: `1767225600`, `1767225600.25`; 13 digits are milliseconds.

A time without a zone is taken in `default_tz` (UTC unless the command says otherwise).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    start=1)}
_APACHE = re.compile(
    r"^\[?(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\s+([+-])(\d{2})(\d{2}))?\]?$")
_SYSLOG = re.compile(r"^([A-Za-z]{3})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")
_EPOCH = re.compile(r"^\d{9,13}(?:\.\d+)?$")
_ISO_COMMA = re.compile(r"^(.*\d{2}:\d{2}:\d{2}),(\d+)(.*)$")


def _iso(text: str, tz: tzinfo) -> float | None:
    value = text
    comma = _ISO_COMMA.match(value)
    if comma:
        value = f"{comma.group(1)}.{comma.group(2)}{comma.group(3)}"
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.timestamp()


def _apache(text: str) -> float | None:
    m = _APACHE.match(text)
    if m is None or m.group(2).lower() not in _MONTHS:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    tz: tzinfo = timezone.utc
    if sign:
        offset = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(offset if sign == "+" else -offset)
    try:
        return datetime(int(year), _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss),
                        tzinfo=tz).timestamp()
    except ValueError:
        return None


def _syslog(text: str, year: int, tz: tzinfo) -> float | None:
    m = _SYSLOG.match(text)
    if m is None or m.group(1).lower() not in _MONTHS:
        return None
    mon, day, hh, mm, ss, frac = m.groups()
    micro = int((frac or "0").ljust(6, "0"))
    try:
        return datetime(year, _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss), micro,
                        tzinfo=tz).timestamp()
    except ValueError:
        return None


def parse_log_time(text: str, *, default_year: int | None = None,
                   default_tz: tzinfo = timezone.utc) -> float | None:
    """POSIX seconds for a log timestamp in one of the forms above, or None."""
    value = text.strip()
    if not value:
        return None
    if _EPOCH.match(value):
        number = float(value)
        return number / 1000 if len(value.split(".")[0]) == 13 else number
    if value[0].isdigit() and "/" not in value[:6]:
        return _iso(value, default_tz)
    if value[0] == "[" or (value[0].isdigit() and "/" in value):
        return _apache(value)
    year = default_year if default_year is not None else datetime.now(timezone.utc).year
    return _syslog(value, year, default_tz)


TIMESTAMP_GROUPS = ("ts", "timestamp")
