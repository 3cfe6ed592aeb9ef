"""Safe YAML loading that keeps every value's place: YAML core types only, no duplicate keys,
bounded size, alias expansion and nesting; one document per file."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from emitter.problems import Location, Problem
from emitter.rules import yaml12

JsonPath = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based (line, col)

MAX_BYTES = 1_048_576
MAX_ALIAS_NODES = 10_000  # values reached again through aliases; stops "billion laughs"
MAX_DEPTH = 100

# Both safe loaders read plain scalars by the YAML 1.2 core schema (see yaml12). The C
# composer is several times faster; both only build nodes, never Python objects.
PY_LOADER: Any = yaml12.core_schema(yaml.SafeLoader)
C_LOADER: Any = yaml12.core_schema(yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else None
_Loader: Any = C_LOADER or PY_LOADER
_T = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL = yaml12.STR, yaml12.INT, yaml12.FLOAT, yaml12.BOOL
_SEQ, _MAP, _MERGE, _TIMESTAMP = (_T + n for n in ("seq", "map", "merge", "timestamp"))
# Converts already-resolved scalar nodes only: bool/int/float/null, never arbitrary objects.
_CONVERT = yaml12.CONVERT


@dataclass(frozen=True)
class YamlDoc:
    """Plain data (dict, list, str, int, float, bool, None) from one file, with its places."""

    path: str
    data: Any
    marks: Mapping[JsonPath, Mark] = field(default_factory=dict, repr=False, compare=False)
    key_marks: Mapping[JsonPath, Mark] = field(default_factory=dict, repr=False, compare=False)
    plain: Mapping[JsonPath, str] = field(default_factory=dict, repr=False, compare=False)
    # Unquoted strings YAML 1.1 would have read as a boolean or a number (`yes`, `1:30`).
    legacy: Mapping[JsonPath, str] = field(default_factory=dict, repr=False, compare=False)

    def location(self, json_path: JsonPath) -> Location:
        """Where the value at `json_path` starts, or its nearest ancestor that exists."""
        for end in range(len(json_path), -1, -1):
            mark = self.marks.get(json_path[:end])
            if mark is not None:
                return Location(self.path, *mark)
        return Location(self.path, 1, 1)

    def key_location(self, json_path: JsonPath) -> Location:
        """Where the key of the value at `json_path` is written (the value's place for items)."""
        mark = self.key_marks.get(json_path)
        return Location(self.path, *mark) if mark else self.location(json_path)

    def plain_scalar(self, json_path: JsonPath) -> str | None:
        """The source text when the value was an unquoted scalar YAML read as bool/null/number."""
        return self.plain.get(json_path)

    def yaml11_spelling(self, json_path: JsonPath) -> str | None:
        """The source text when the value is an unquoted string that YAML 1.1 (and emitter
        before it read YAML 1.2) took for a boolean or a number: `yes`, `off`, `1:30`."""
        return self.legacy.get(json_path)


class _Abort(Exception):
    """A limit was hit: building the document stops at once."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def load_yaml(path: str, *, max_bytes: int = MAX_BYTES) -> tuple[YamlDoc | None, list[Problem]]:
    """Read one YAML file safely. Returns the document (None on any error) and the problems."""
    text, problem = _read_text(path, max_bytes)
    if problem is not None:
        return None, [problem]
    assert text is not None
    node, problem = _compose(path, text)
    if problem is not None:
        return None, [problem]
    builder = _Builder(path)
    try:
        data = builder.build(node, (), 0, False) if node is not None else None
    except _Abort as stop:
        return None, _sorted([*builder.problems, stop.problem])
    if builder.problems:
        return None, _sorted(builder.problems)
    doc = YamlDoc(path, data, builder.marks, builder.key_marks, builder.plain, builder.legacy)
    return doc, []


def _sorted(problems: list[Problem]) -> list[Problem]:
    def place(problem: Problem) -> tuple[int, int]:
        where = problem.location
        return (where.line, where.col) if where else (0, 0)

    return sorted(problems, key=place)


def _problem(path: str, line: int, col: int, message: str) -> Problem:
    return Problem(message, Location(path, line, col), check="yaml")


def _read_text(path: str, max_bytes: int) -> tuple[str | None, Problem | None]:
    def too_big(size: int) -> Problem:
        return _problem(
            path, 1, 1, f"file is {size} bytes, over the {max_bytes}-byte limit for a rule file; "
            "split it into several files",
        )

    try:
        # Non-blocking, and checked after opening: a FIFO or a device would block or never end.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None, _problem(path, 1, 1, "not a regular file (a FIFO, device or "
                                      "socket cannot be a rule file)")
            if info.st_size > max_bytes:
                return None, too_big(info.st_size)
            raw = handle.read(max_bytes + 1)  # the file may have grown since fstat()
    except OSError as exc:
        return None, _problem(path, 1, 1, f"cannot read the file: {exc.strerror or exc}")
    if len(raw) > max_bytes:
        return None, too_big(len(raw))
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        return None, _problem(path, line, col, f"not valid UTF-8 (byte 0x{bad}); save as UTF-8")


def _compose(path: str, text: str) -> tuple[Node | None, Problem | None]:
    loader = _Loader(text)
    try:
        return loader.get_single_node(), None
    except yaml.MarkedYAMLError as exc:
        return None, _syntax_problem(path, exc)
    except yaml.YAMLError as exc:
        return None, _problem(path, 1, 1, f"YAML error: {exc}")
    except RecursionError:
        return None, _problem(path, 1, 1, "YAML nesting is too deep")
    finally:
        loader.dispose()


def _syntax_problem(path: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if exc.context == "expected a single document in the stream":
        return _problem(
            path, line, col,
            "a second YAML document starts here; a rule file holds one document "
            "(put every rule under one `rules:` list, or use another file)",
        )
    message = f"YAML syntax error: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    elif exc.context:
        message += f" ({exc.context})"
    return _problem(path, line, col, message)


def _bad_scalar(node: ScalarNode, exc: Exception) -> str:
    """Why a scalar tagged (or resolved) as a number or boolean is not one."""
    shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
    digits = sum(char.isdigit() for char in node.value)
    if "digits" in str(exc):
        return (f"a number with {digits} digits is too long (at most 4300 digits); "
                "quote it to keep it as text")
    wanted = {_INT: "an integer", _FLOAT: "a number", _BOOL: "true or false"}
    return (f"{_short_tag(node.tag)} {shown!r} is not {wanted.get(node.tag, 'valid')}: "
            "fix the value or drop the tag")


def _mark(node: Node) -> Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


class _Builder:
    """Turns a node graph into plain data, recording places; collects tag and key problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.marks: dict[JsonPath, Mark] = {}
        self.key_marks: dict[JsonPath, Mark] = {}
        self.plain: dict[JsonPath, str] = {}
        self.legacy: dict[JsonPath, str] = {}
        self._seen: set[int] = set()
        self._active: set[int] = set()
        self._expanded = 0
        self._alias_site: Mark = (1, 1)
        # A merged mapping's pairs, worked out once, and how many pairs merging it visits when
        # its own merges are followed as YAML defines them (what other readers of the file pay).
        self._merged: dict[int, tuple[list[tuple[Node, Node]], int]] = {}
        self._weight = 0  # of the mapping whose pairs are being collected

    def build(self, node: Node, where: JsonPath, depth: int, expanding: bool) -> Any:
        nid, mark = id(node), _mark(node)
        again = nid in self._seen
        if again and not expanding:
            # An alias: the composer forgot where it was written; its container did not.
            self._alias_site = self.marks.get(where[:-1], mark)
        expanding = expanding or again
        self._enter(nid, mark, depth, expanding)
        self._seen.add(nid)
        self.marks[where] = mark
        if isinstance(node, ScalarNode):
            return self._scalar(node, where)
        self._active.add(nid)
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, _SEQ)
                return [self.build(c, (*where, i), depth + 1, expanding)
                        for i, c in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            self._check_tag(node, _MAP)
            return self._mapping(node, where, depth, expanding)
        finally:
            self._active.discard(nid)

    def _enter(self, nid: int, mark: Mark, depth: int, expanding: bool) -> None:
        if nid in self._active:
            raise _Abort(_problem(self.path, *mark, "an alias refers to its own parent "
                                  "(recursive data cannot be a rule)"))
        if depth > MAX_DEPTH:
            raise _Abort(_problem(self.path, *mark, f"nested more than {MAX_DEPTH} levels deep"))
        if expanding:
            self._expanded += 1
            if self._expanded > MAX_ALIAS_NODES:
                raise _Abort(_problem(
                    self.path, *self._alias_site,
                    f"aliases expand to more than {MAX_ALIAS_NODES} values (an alias bomb?); "
                    "write the values out or share them through `defaults`",
                ))

    def _check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            self._bad_tag(node)

    def _bad_tag(self, node: Node) -> None:
        line, col = _mark(node)
        self.problems.append(_problem(
            self.path, line, col,
            f"tag {_short_tag(node.tag)} is not allowed: rule files hold only plain YAML "
            "(strings, numbers, booleans, null, lists and mappings); nothing is constructed "
            "or executed from tags",
        ))

    def _scalar(self, node: ScalarNode, where: JsonPath) -> Any:
        tag = node.tag
        # An unquoted date stays the text the user wrote; JSON has no date type.
        if tag in (_STR, _TIMESTAMP):
            if tag == _STR and not node.style and yaml12.yaml11_reading(node.value):
                self.legacy[where] = node.value
            return node.value
        convert = _CONVERT.get(tag)
        if convert is None:
            self._bad_tag(node)
            return None
        if not node.style:  # plain: None from the Python parser, "" from libyaml
            self.plain[where] = node.value
        try:
            return convert(node)
        except (ValueError, KeyError, OverflowError) as exc:
            self.problems.append(_problem(self.path, *_mark(node), _bad_scalar(node, exc)))
            return None

    def _mapping(self, node: MappingNode, where: JsonPath, depth: int, expanding: bool) -> Any:
        result: dict[str, Any] = {}
        for key_node, value_node in self._pairs(node, depth, report=True):
            key = key_node.value
            here = (*where, key)
            self.key_marks[here] = _mark(key_node)
            result[key] = self.build(value_node, here, depth + 1, expanding)
        return result

    def _pairs(self, node: MappingNode, depth: int, *, report: bool) -> list[tuple[Node, Node]]:
        """The mapping's own pairs (first of duplicates kept), then merged ones (`<<: *base`)."""
        if depth > MAX_DEPTH:
            raise _Abort(_problem(self.path, *_mark(node), "merge keys nest too deep"))
        pairs: list[tuple[Node, Node]] = []
        first: dict[str, Node] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not self._good_key(key_node, report):
                continue
            if key_node.value in first:
                if report:
                    self._duplicate(key_node, first[key_node.value])
                continue
            first[key_node.value] = key_node
            pairs.append((key_node, value_node))
        for source in merges:
            for key_node, value_node in self._merge_sources(source, depth):
                if key_node.value not in first:
                    first[key_node.value] = key_node
                    pairs.append((key_node, value_node))
        return pairs

    def _merge_sources(self, source: Node, depth: int) -> list[tuple[Node, Node]]:
        """The pairs `<<: source` merges in. Each merged pair counts in the alias expansion
        budget as YAML would expand it (a merge repeats values as an alias does: `<<: [*a, *a]`
        level on level grows tenfold a level), though a mapping's pairs are worked out once."""
        mappings = source.value if isinstance(source, SequenceNode) else [source]
        pairs: list[tuple[Node, Node]] = []
        for mapping in mappings:
            if not isinstance(mapping, MappingNode):
                self.problems.append(_problem(
                    self.path, *_mark(mapping),
                    "a merge key `<<` takes a mapping or a list of mappings",
                ))
                continue
            known = self._merged.get(id(mapping))
            if known is None:
                outer, self._weight = self._weight, 0
                merged = self._pairs(mapping, depth + 1, report=False)
                known = self._merged[id(mapping)] = (merged, self._weight + len(mapping.value))
                self._weight = outer
            self._weight += known[1]
            self._count_merge(known[1], source)
            pairs.extend(known[0])
        return pairs

    def _count_merge(self, count: int, source: Node) -> None:
        self._expanded += count
        if self._expanded > MAX_ALIAS_NODES:
            raise _Abort(_problem(
                self.path, *_mark(source),
                f"merge keys `<<` and aliases expand to more than {MAX_ALIAS_NODES} values "
                "(a merge-key bomb?); write the values out or share them through `defaults`",
            ))

    def _good_key(self, key_node: Node, report: bool) -> bool:
        if isinstance(key_node, ScalarNode) and (
            key_node.tag in _CONVERT or key_node.tag in (_STR, _TIMESTAMP)
        ):
            return True
        if report:
            if isinstance(key_node, ScalarNode):
                self._bad_tag(key_node)
            else:
                self.problems.append(_problem(
                    self.path, *_mark(key_node), "a mapping key must be a plain string",
                ))
        return False

    def _duplicate(self, key_node: Node, first: Node) -> None:
        line, col = _mark(key_node)
        self.problems.append(_problem(
            self.path, line, col,
            f"duplicate key {key_node.value!r}: first at line {_mark(first)[0]}, again at line "
            f"{line} (YAML would silently keep only the last one)",
        ))
