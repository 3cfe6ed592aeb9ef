"""The hover text of the schemas: every property's `markdownDescription`, written from its
`description`, allowed values and `examples` (and, for a rule's event fields, from
schemas/event.schema.json), so the plain and the markdown text never drift.

`python -m emitter.schemadocs` reports drift (exit 1); `--write` rewrites the schema files in
place, touching only the `markdownDescription` members (the files' hand layout is kept).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_NAMES = ("rules", "event", "ruletest")
MD = "markdownDescription"
# Keywords whose values are data or discriminators, not property schemas an editor hovers.
_NOT_SCHEMAS = frozenset({"if", "examples", "enum", "const", "default"})
_RULE_EVENT = "#/$defs/event/properties/"


# -- a JSON reader that remembers where each member is, so an edit keeps the hand layout --

@dataclass
class Node:
    """A JSON value with its span in the text; objects keep their members' spans."""

    value: Any
    start: int
    end: int
    members: dict[str, Member] = field(default_factory=dict)
    items: list[Node] = field(default_factory=list)


@dataclass
class Member:
    key_start: int
    node: Node


_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _parse(text: str, i: int) -> Node:
    i = _skip(text, i)
    if text[i] == "{":
        return _parse_object(text, i)
    if text[i] == "[":
        return _parse_array(text, i)
    value, end = _DECODER.raw_decode(text, i)
    return Node(value, i, end)


def _parse_object(text: str, start: int) -> Node:
    node = Node({}, start, start)
    i = _skip(text, start + 1)
    while text[i] != "}":
        key_start = i
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = _skip(text, i)
        assert text[i] == ":", f"':' expected at {i}"
        child = _parse(text, i + 1)
        node.members[key] = Member(key_start, child)
        node.value[key] = child.value
        node.end = i = _skip(text, child.end)
        if text[i] == ",":
            node.end = i + 1
            i = _skip(text, i + 1)
    node.end = i + 1
    return node


def _parse_array(text: str, start: int) -> Node:
    node = Node([], start, start)
    i = _skip(text, start + 1)
    while text[i] != "]":
        child = _parse(text, i)
        node.items.append(child)
        node.value.append(child.value)
        i = _skip(text, child.end)
        if text[i] == ",":
            i = _skip(text, i + 1)
    node.end = i + 1
    return node


def parse(text: str) -> Node:
    return _parse(text, 0)


# -- which schemas are properties, and what their hover says --

def properties(node: Any, where: str = "#") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(JSON pointer, property name, subschema) of every property schema, in file order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _NOT_SCHEMAS:
                continue
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    if isinstance(sub, dict):
                        yield f"{where}/properties/{name}", name, sub
                        yield from properties(sub, f"{where}/properties/{name}")
                continue
            yield from properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from properties(value, f"{where}/{i}")


def _target(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref", "")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target: dict[str, Any] = schema["$defs"][ref[len("#/$defs/"):]]
        return target
    return {}


def description(schema: dict[str, Any], prop: dict[str, Any]) -> str:
    """The property's plain text: its own, else that of the $def it refers to."""
    return str(prop.get("description") or _target(schema, prop).get("description", ""))


def examples(schema: dict[str, Any], prop: dict[str, Any]) -> list[Any]:
    """The property's examples: its own, else those of the $def it refers to."""
    found = prop.get("examples", _target(schema, prop).get("examples", []))
    return list(found)


def plain_to_markdown(text: str) -> str:
    """Plain text as markdown shows it: `*`, `_` and `<` outside code spans are escaped (a
    `<token>` would vanish as an HTML tag, `'_' or '_'` would turn italic)."""
    spans = text.split("`")
    for i in range(0, len(spans), 2):
        spans[i] = re.sub(r"([*_<\\])", r"\\\1", spans[i])
    return "`".join(spans)


def _code(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`" if not isinstance(value, str) \
        else f"`{value}`"


def _allowed(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "Allowed values: " + ", ".join(_code(v) for v in prop["enum"]) + "."
    if "const" in prop:
        return f"Allowed value: {_code(prop['const'])}."
    return ""


def _rendered(field_schema: dict[str, Any]) -> str:
    """What the event field must be once its template is rendered, read from the event schema."""
    if "enum" in field_schema:
        shape = "one of " + ", ".join(_code(v) for v in field_schema["enum"])
    elif field_schema.get("type") == "integer":
        shape = "an integer"
    elif field_schema.get("type") == "array":
        shape = "a list of strings"
    elif "maxLength" in field_schema:
        shape = f"a string of at most {field_schema['maxLength']} characters"
    else:
        shape = "a string"
    if "default" in field_schema:
        shape += f" (default {_code(field_schema['default'])})"
    return f"Rendered, it must be {shape}."


class _Literal(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, the way one writes them in a rule file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Literal.add_representer(str, _str)


def example_block(name: str, value: Any) -> str:
    text = yaml.dump({name: value}, Dumper=_Literal, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=88)
    return f"```yaml\n{text.rstrip()}\n```"


def markdown(schema: dict[str, Any], pointer: str, name: str, prop: dict[str, Any],
             event: dict[str, Any]) -> str:
    """The hover text of one property; `event` is event.schema.json (for a rule's event fields)."""
    parts = [plain_to_markdown(description(schema, prop))]
    if pointer.startswith(_RULE_EVENT) and schema.get("$id", "").endswith("/rules.schema.json"):
        field_schema = event["properties"][name]
        parts.append(f"Datadog's `{name}`: {plain_to_markdown(field_schema['description'])}")
        parts.append(_rendered(field_schema))
    elif allowed := _allowed(prop):
        parts.append(allowed)
    shown = examples(schema, prop)
    if shown:
        parts.append("Example:" if len(shown) == 1 else "Examples:")
        parts.extend(example_block(name, value) for value in shown)
    return "\n\n".join(part for part in parts if part)


# -- check and rewrite --

def _locate(root: Node, pointer: str) -> Node:
    node = root
    for step in pointer.split("/")[1:]:
        node = node.items[int(step)] if isinstance(node.value, list) else node.members[step].node
    return node


def _edit(text: str, obj: Node, want: str) -> tuple[int, int, str]:
    """The (start, end, replacement) that gives `obj` the markdownDescription `want`."""
    quoted = json.dumps(want, ensure_ascii=False)
    if MD in obj.members:
        current = obj.members[MD].node
        return current.start, current.end, quoted
    anchor_key = "description" if "description" in obj.members else next(iter(obj.members))
    anchor = obj.members[anchor_key].node
    lead = text[obj.start + 1:next(iter(obj.members.values())).key_start]
    sep = ",\n" + lead.rsplit("\n", 1)[1] if "\n" in lead else ", "
    return anchor.end, anchor.end, f"{sep}\"{MD}\": {quoted}"


def sync_text(text: str, event: dict[str, Any]) -> tuple[str, list[str]]:
    """The schema text with every property's markdownDescription as generated, and the
    pointers that differed."""
    tree = parse(text)
    schema = tree.value
    edits: list[tuple[int, int, str]] = []
    drift: list[str] = []
    for pointer, name, prop in properties(schema):
        want = markdown(schema, pointer, name, prop, event)
        if prop.get(MD) != want:
            drift.append(pointer)
            edits.append(_edit(text, _locate(tree, pointer), want))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text, drift


def sync(root: Path = ROOT, *, write: bool = False) -> list[str]:
    """What differs from the generated hover text (rewritten when `write`)."""
    folder = root / "schemas"
    event = json.loads((folder / "event.schema.json").read_text(encoding="utf-8"))
    drift: list[str] = []
    for name in SCHEMA_NAMES:
        path = folder / f"{name}.schema.json"
        text = path.read_text(encoding="utf-8")
        fixed, found = sync_text(text, event)
        drift.extend(f"schemas/{path.name}: {pointer}: {MD} differs" for pointer in found)
        if write and fixed != text:
            path.write_text(fixed, encoding="utf-8")
    return drift


if __name__ == "__main__":
    writing = "--write" in sys.argv[1:]
    problems = sync(write=writing)
    print("\n".join(problems) or "markdownDescription matches every schema's descriptions")
    if problems and not writing:
        print("run: python -m emitter.schemadocs --write")
    sys.exit(1 if problems and not writing else 0)
