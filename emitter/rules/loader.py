"""Rule files → `Rule` records: finds the files, checks each against the rule schema, builds
frozen records with defaults merged, and reports every problem of every file in one run."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from emitter.errors import UsageError
from emitter.problems import Location, Problem
from emitter.rules.budget import Budget, parse_budget
from emitter.rules.model import MISSING, FieldValue, Param, Rule, Throttle, Tmpl
from emitter.rules.schemacheck import check_rules_schema, describe, dotted, quote_hint
from emitter.rules.triggerspec import build_trigger, duration_at
from emitter.rules.yamlload import MAX_BYTES, JsonPath, YamlDoc, load_yaml

RULE_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")  # rule tests, read by `emitter test`, not rules
EVENT_FIELDS = (
    "title", "text", "date_happened", "priority", "host", "tags", "alert_type",
    "aggregation_key", "source_type_name",
)
# Names the template context already provides; a param must not hide them.
RESERVED_PARAMS = frozenset({"rule", "now", "hostname", "env"})
_TYPES: Mapping[str, tuple[str, Any]] = {
    "string": ("a string", lambda v: isinstance(v, str)),
    "integer": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "boolean": ("true or false", lambda v: isinstance(v, bool)),
    "list": ("a list", lambda v: isinstance(v, list)),
    "object": ("a mapping", lambda v: isinstance(v, dict)),
}


@dataclass(frozen=True)
class LoadResult:
    """Rules that loaded without errors, every problem found (sorted), and the files read."""

    rules: tuple[Rule, ...]
    problems: tuple[Problem, ...]
    files: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not any(p.is_error for p in self.problems)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def find_rule_files(paths: Sequence[str]) -> list[str]:
    """Files named on the command line, and every *.yaml/*.yml below named directories
    (sorted, hidden directories and *.test.yaml skipped). Raises UsageError for a missing path."""
    found: list[str] = []
    seen: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            candidates = _walk(path)
        elif os.path.exists(path):
            candidates = [path]
        else:
            raise UsageError(f"{path}: no such file or directory")
        for file in candidates:
            real = os.path.realpath(file)
            if real not in seen:
                seen.add(real)
                found.append(file)
    return found


def _walk(top: str) -> list[str]:
    files: list[str] = []
    for folder, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(
            os.path.join(folder, name) for name in names
            if name.endswith(RULE_SUFFIXES) and not name.endswith(TEST_SUFFIXES)
            and not name.startswith(".")
        )
    return sorted(files)


def load_rules(paths: Sequence[str]) -> LoadResult:
    """Load every rule file under `paths`; problems of all files are collected, never raised."""
    files = find_rule_files(paths)
    rules: list[Rule] = []
    problems: list[Problem] = []
    id_places: dict[str, Location] = {}
    for file in files:
        slots, file_problems = load_file(file)
        problems.extend(file_problems)
        for rid, id_place, rule in slots:
            first = id_places.setdefault(rid, id_place)
            if first is id_place:
                if rule is not None:
                    rules.append(rule)
                continue
            problems.append(Problem(
                f"duplicate rule id {rid!r}: first defined at {first}, again here "
                "(ids must be unique across all files loaded)",
                id_place, rule_id=rid, check="duplicate-id",
            ))
    problems.sort(key=_problem_order)
    return LoadResult(tuple(rules), tuple(problems), tuple(files))


def _problem_order(problem: Problem) -> tuple[str, int, int]:
    where = problem.location
    return (where.path, where.line, where.col) if where else ("", 0, 0)


RuleSlot = tuple[str, Location, "Rule | None"]


FileLoad = tuple[list[RuleSlot], list[Problem]]
# The last load of each file, by path, with a digest of the bytes it was built from. The daemon
# checks its rules exactly as `validate` does and then builds its rule set from them: the
# second load of an unchanged file is this record, not a second parse (a reload re-parses
# only the files whose bytes changed). One entry per path: bounded by the files named.
_LAST: dict[str, tuple[bytes, FileLoad]] = {}
_LAST_LOCK = threading.Lock()


def load_file(path: str) -> FileLoad:
    """Each rule of one file as (id, place of the id, the record or None when it has errors),
    and the file's problems. The records are frozen, so an unchanged file's are shared."""
    digest = _digest(path)
    with _LAST_LOCK:
        last = _LAST.get(path)
    if digest is not None and last is not None and last[0] == digest:
        return list(last[1][0]), list(last[1][1])
    loaded = _load_file(path)
    if digest is not None and _digest(path) == digest:  # unchanged while it was parsed
        with _LAST_LOCK:
            _LAST[path] = (digest, loaded)
    return list(loaded[0]), list(loaded[1])


def _digest(path: str) -> bytes | None:
    """A digest of a regular file's bytes; None for anything else (never remembered: the
    parser reports it)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO never blocks
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            raw = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    return hashlib.blake2b(raw, digest_size=20).digest()


def _load_file(path: str) -> FileLoad:
    doc, problems = load_yaml(path)
    if doc is None:
        return [], problems
    if doc.data is None:
        return [], [Problem("the file is empty; a rule file starts with `version: 1`",
                            Location(path, 1, 1), check="schema")]
    checked = check_rules_schema(doc)
    problems = [problem for _, problem in checked]
    bad_rules = {path[1] for path, _ in checked if path[:1] == ("rules",) and len(path) >= 2}
    # A broken top level or `defaults` would taint every rule: build none of them.
    if any(len(path) < 2 or path[0] != "rules" for path, _ in checked):
        bad_rules = set(range(len(_raw_rules(doc))))
    builder = _FileBuilder(doc) if len(bad_rules) < len(_raw_rules(doc)) else None
    slots: list[RuleSlot] = []
    for index, raw in enumerate(_raw_rules(doc)):
        rid = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(rid, str):
            continue
        rule = None
        if builder is not None and index not in bad_rules:
            rule = builder.rule(index, raw)
        slots.append((rid, doc.location(("rules", index, "id")), rule))
    return slots, problems + (builder.problems if builder else [])


def _raw_rules(doc: YamlDoc) -> list[Any]:
    rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
    return rules if isinstance(rules, list) else []


class _FileBuilder:
    """Builds the `Rule` records of one schema-valid file, collecting semantic problems."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        defaults = doc.data.get("defaults") or {}
        self.default_event: dict[str, Any] = defaults.get("event") or {}
        self.default_unified: bool = defaults.get("unified_tags", True)

    def rule(self, index: int, raw: dict[str, Any]) -> Rule | None:
        base: JsonPath = ("rules", index)
        rid: str = raw["id"]
        before = len(self.problems)
        trigger, trigger_problems = build_trigger(self.doc, (*base, "trigger"), raw["trigger"])
        self.problems.extend(p._replace(rule_id=rid) for p in trigger_problems)
        params = self._params(base, rid, raw.get("params") or {})
        event = self._event(base, rid, raw["event"])
        throttle = self._throttle(base, rid, raw.get("throttle"))
        budget = self._budget(base, rid, raw.get("budget") or {})
        if len(self.problems) > before or trigger is None:
            return None
        return Rule(
            id=rid,
            location=self.doc.location(base),
            trigger=trigger,
            event=event,
            description=raw.get("description", ""),
            params=params,
            when=self._tmpl((*base, "when"), raw.get("when")),
            foreach=self._tmpl((*base, "foreach"), raw.get("foreach")),
            throttle=throttle,
            env=tuple(raw.get("env", ())),
            unified_tags=raw.get("unified_tags", self.default_unified),
            budget=budget,
        )

    def _problem(self, path: JsonPath, rid: str, message: str, *, key: bool = False) -> None:
        where = self.doc.key_location(path) if key else self.doc.location(path)
        self.problems.append(Problem(message, where, rule_id=rid, check="schema"))

    def _tmpl(self, path: JsonPath, text: str | None) -> Tmpl | None:
        return None if text is None else Tmpl(text, self.doc.location(path))

    def _field(self, path: JsonPath, value: Any) -> FieldValue:
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            # Only date_happened takes a number, and the schema let this one through as an
            # integer (JSON Schema counts 1767225600.0 as one): it is sent as the integer.
            return int(value)
        return Tmpl(value, self.doc.location(path))

    def _event(self, base: JsonPath, rid: str, raw: dict[str, Any]) -> Mapping[str, FieldValue]:
        merged: dict[str, FieldValue] = {}
        for name in EVENT_FIELDS:
            if name == "tags":
                tags = self._tags(("defaults", "event"), self.default_event)
                tags += self._tags((*base, "event"), raw)
                if tags:
                    merged["tags"] = tags
            elif name in raw:
                merged[name] = self._field((*base, "event", name), raw[name])
            elif name in self.default_event:
                merged[name] = self._field(("defaults", "event", name), self.default_event[name])
        for needed in ("title", "text"):
            if needed not in merged:
                self._problem((*base, "event"), rid,
                              f"event has no {needed}: set `{needed}` here or in defaults.event")
        return MappingProxyType(merged)

    def _budget(self, base: JsonPath, rid: str, raw: dict[str, Any]) -> Budget:
        budget, problems = parse_budget(raw)
        for key, message in problems:
            self._problem((*base, "budget", key), rid, message)
        return budget

    def _tags(self, path: JsonPath, event: dict[str, Any]) -> tuple[Tmpl, ...]:
        tags = event.get("tags", [])
        return tuple(Tmpl(t, self.doc.location((*path, "tags", i))) for i, t in enumerate(tags))

    def _throttle(self, base: JsonPath, rid: str, raw: dict[str, Any] | None) -> Throttle | None:
        if raw is None:
            return None
        path = (*base, "throttle")
        window, problems = duration_at(self.doc, (*path, "window"), raw["window"], positive=True)
        self.problems.extend(p._replace(rule_id=rid) for p in problems)
        key = self._tmpl((*path, "key"), raw.get("key")) or Tmpl("", self.doc.location(path))
        return Throttle(key=key, window=window or 0.0, mode=raw.get("mode", "first"))

    def _params(self, base: JsonPath, rid: str, raw: dict[str, Any]) -> tuple[Param, ...]:
        params = []
        for name, spec in raw.items():
            path = (*base, "params", name)
            if name in RESERVED_PARAMS:
                self._problem(path, rid, f"parameter name {name!r} is reserved: templates "
                              f"already have `{name}`; choose another name", key=True)
            kind = spec.get("type", "string")
            enum = spec.get("enum")
            for i, value in enumerate(enum or []):
                self._check_type(rid, (*path, "enum", i), kind, value)
            for attr in ("example", "default"):
                if attr in spec and self._check_type(rid, (*path, attr), kind, spec[attr]):
                    self._check_enum(rid, (*path, attr), enum, spec[attr])
            params.append(Param(
                name=name, type=kind, description=spec.get("description", ""),
                example=spec.get("example", MISSING), default=spec.get("default", MISSING),
                enum=tuple(enum) if enum is not None else None,
                location=self.doc.key_location(path),
            ))
        return tuple(params)

    def _check_type(self, rid: str, path: JsonPath, kind: str, value: Any) -> bool:
        wanted, accepts = _TYPES[kind]
        if accepts(value):
            return True
        hint = quote_hint(self.doc, path) if kind == "string" else ""
        self._problem(path, rid, f"{dotted(path)}: the parameter is declared {kind}, so this "
                      f"must be {wanted}, got {describe(value)}{hint}")
        return False

    def _check_enum(self, rid: str, path: JsonPath, enum: list[Any] | None, value: Any) -> None:
        if enum is not None and value not in enum:
            choices = ", ".join(repr(e) for e in enum)
            self._problem(path, rid, f"{dotted(path)}: {value!r} is not one of the parameter's "
                          f"enum values: {choices}")
