"""The package layout holds: imports run with the pipeline (a stage imports only stages below
it), the core never imports the test runner or the CLI, and no module grows past ~400 lines.

Read from the source with `ast`, function-level imports included (a lazy import is still a
dependency), so the test needs nothing imported and sees every path.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emitter"

# Each top-level part of emitter and its place in the pipeline: a part may import only parts
# of a lower rank. Records everyone shares are rank 0 (they may import each other); the CLI
# is on top.
RANK: dict[str, int] = {
    "emitter": 0, "errors": 0, "problems": 0, "schemas": 0, "settings": 0, "firing": 0,
    "redaction": 0, "backoff": 0, "counters": 0, "httpmsg": 0,
    "schemaverdict": 0, "schemadocs": 0,
    "rules": 1, "state": 1,
    "templates": 2, "events": 2,
    "sinks": 3, "triggers": 3,
    "validate": 4, "delivery": 4,
    "daemon": 5,
    "ruletest": 6,
    "commands": 7,
    "cli": 8, "__main__": 9,
}
CORE = ("rules", "templates", "events", "triggers", "state", "delivery", "sinks", "daemon",
        "validate", "firing", "errors", "problems", "settings", "schemas", "schemaverdict",
        "redaction", "counters")

# Imports against the order that another change is removing; the lead empties this list.
# (importing module, imported module)
KNOWN_AGAINST_ORDER: frozenset[tuple[str, str]] = frozenset({
    # per-rule counters and the event log line are records the daemon exposes, not daemon parts
    ("emitter.delivery.pipeline", "emitter.daemon.logs"),
})

MAX_LINES = 400
# Modules another change is splitting right now; the lead empties this list.
KNOWN_LONG: frozenset[str] = frozenset()


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every emitter module `name` imports (`from a import b` gives a.b when b is a module)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _part(module: str) -> str:
    """The top-level part of emitter a module belongs to (`emitter` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _edges() -> Iterator[tuple[str, str]]:
    known = {name for name, _ in _modules()}
    for name, path in _modules():
        for target in _imports(name, path):
            if target in known and _part(target) != _part(name):
                yield name, target


def test_every_part_of_the_package_has_a_rank() -> None:
    parts = {_part(name) for name, _ in _modules()}
    assert parts == set(RANK), "give a new part of emitter its place in RANK"


def test_the_core_never_imports_the_test_runner_or_the_cli() -> None:
    wrong = [(a, b) for a, b in _edges() if _part(a) in CORE
             and _part(b) in ("ruletest", "commands", "cli", "__main__")]
    assert wrong == []


def test_imports_run_with_the_pipeline() -> None:
    against = {(a, b) for a, b in _edges() if 0 < RANK[_part(b)] >= RANK[_part(a)]}
    assert sorted(against - KNOWN_AGAINST_ORDER) == [], "a stage imports a stage above it"
    assert sorted(KNOWN_AGAINST_ORDER - against) == [], "fixed: drop it from the known list"


def _length(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_400_lines() -> None:
    sizes = {str(path.relative_to(PACKAGE.parent)): _length(path) for _, path in _modules()}
    long = {name for name, lines in sizes.items() if lines > MAX_LINES}
    assert sorted(long - KNOWN_LONG) == [], {n: sizes[n] for n in long - KNOWN_LONG}
    assert sorted(KNOWN_LONG - long) == [], "split: drop it from the known list"
