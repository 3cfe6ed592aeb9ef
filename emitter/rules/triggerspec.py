"""A rule's `trigger` block (already schema-valid) → a trigger record from emitter.rules.model, with
regexes compiled, cron expressions and time zones checked, durations parsed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from emitter.problems import Problem
from emitter.rules.durations import parse_duration
from emitter.rules.model import (
    CommandTrigger,
    FileTrigger,
    ManualTrigger,
    ScheduleTrigger,
    StdinTrigger,
    Trigger,
    WebhookTrigger,
)
from emitter.rules.webhookauth import V1_SIGNATURE_HEADER, build_auth
from emitter.rules.yamlload import JsonPath, YamlDoc

CRON_FIELDS = "minute hour day-of-month month day-of-week"


class _Collector:
    def __init__(self, doc: YamlDoc, path: JsonPath) -> None:
        self.doc, self.path = doc, path
        self.problems: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        where = self.doc.location((*self.path, key))
        self.problems.append(Problem(f"trigger.{key}: {message}", where, check="trigger"))

    def duration(self, raw: dict[str, Any], key: str, default: float) -> float:
        if key not in raw:
            return default
        seconds, problems = duration_at(self.doc, (*self.path, key), raw[key], positive=True)
        self.problems.extend(problems)
        return seconds if seconds is not None else default

    def regex(self, raw: dict[str, Any], key: str) -> re.Pattern[str] | None:
        if key not in raw:
            return None
        try:
            return re.compile(raw[key])
        except re.error as exc:
            at = f" at position {exc.pos}" if exc.pos is not None else ""
            self.add(key, f"invalid regular expression {raw[key]!r}: {exc.msg}{at}")
            return None


def duration_at(
    doc: YamlDoc, path: JsonPath, value: Any, *, positive: bool
) -> tuple[float | None, list[Problem]]:
    """Parse a duration written at `path`; a problem at its place when it is not one."""
    name = ".".join(str(p) for p in path[2:]) if path[:1] == ("rules",) else str(path[-1])
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        return None, [Problem(f"{name}: {exc}", doc.location(path), check="schema")]
    if positive and seconds <= 0:
        return None, [Problem(f"{name}: must be longer than zero", doc.location(path),
                              check="schema")]
    return seconds, []


def build_trigger(
    doc: YamlDoc, path: JsonPath, raw: dict[str, Any]
) -> tuple[Trigger | None, list[Problem]]:
    """The trigger record, or None with the problems that prevented it."""
    collect = _Collector(doc, path)
    trigger = _BUILDERS[raw["type"]](collect, raw)
    if collect.problems:
        return None, collect.problems
    return trigger, []


def _manual(collect: _Collector, raw: dict[str, Any]) -> Trigger:
    return ManualTrigger()


def _stdin(collect: _Collector, raw: dict[str, Any]) -> Trigger:
    return StdinTrigger()


def _schedule(collect: _Collector, raw: dict[str, Any]) -> Trigger | None:
    cron = raw.get("cron")
    if cron is not None and not _cron_ok(cron):
        collect.add("cron", f"{cron!r} is not a valid cron expression ({CRON_FIELDS})")
    timezone = raw.get("timezone", "UTC")
    import zoneinfo  # here and shlex below: only rules with such triggers pay the import

    try:
        zoneinfo.ZoneInfo(timezone)
    except (ValueError, KeyError, OSError):
        collect.add("timezone", f"unknown time zone {timezone!r}; use an IANA name such as "
                    "UTC or Europe/Paris")
    every = collect.duration(raw, "every", 0.0) if "every" in raw else None
    return ScheduleTrigger(every=every, cron=cron, timezone=timezone)


def _cron_ok(expression: str) -> bool:
    fields = expression.split()
    if not (len(fields) == 5 or (len(fields) == 1 and fields[0].startswith("@"))):
        return False
    from croniter import croniter  # here, not at the top: most rules have no cron trigger

    try:
        return bool(croniter.is_valid(expression))
    except Exception:  # noqa: BLE001 - croniter raises several unrelated types on bad input
        return False


def _file(collect: _Collector, raw: dict[str, Any]) -> Trigger | None:
    match = collect.regex(raw, "match")
    exclude = collect.regex(raw, "exclude")
    if match is None:
        return None
    return FileTrigger(path=raw["path"], match=match, exclude=exclude,
                       from_beginning=raw.get("from_beginning", False))


def _webhook(collect: _Collector, raw: dict[str, Any]) -> Trigger:
    auth, dedup, problems = build_auth(collect.doc, collect.path, raw)
    collect.problems.extend(problems)
    return WebhookTrigger(
        path=raw["path"],
        token_env=raw.get("token_env"),
        hmac_secret_env=raw.get("hmac_secret_env"),
        signature_header=raw.get("signature_header", V1_SIGNATURE_HEADER),
        auth=auth,
        dedup=dedup,
    )


def _command(collect: _Collector, raw: dict[str, Any]) -> Trigger | None:
    command = raw["command"]
    if isinstance(command, str):
        import shlex

        try:
            command = shlex.split(command)
        except ValueError as exc:
            collect.add("command", f"cannot split {raw['command']!r} into arguments: {exc}")
            return None
        if not command:
            collect.add("command", "the command is empty")
            return None
    every = collect.duration(raw, "every", 60.0)
    timeout = collect.duration(raw, "timeout", 30.0)
    return CommandTrigger(command=tuple(command), every=every, timeout=timeout,
                          on=raw.get("on", "always"))


_BUILDERS: dict[str, Callable[[_Collector, dict[str, Any]], Trigger | None]] = {
    "manual": _manual,
    "stdin": _stdin,
    "schedule": _schedule,
    "file": _file,
    "webhook": _webhook,
    "command": _command,
}
