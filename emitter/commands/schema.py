"""`emitter schema rules|event|ruletest`: print a JSON Schema (for editors and CI tooling)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, cast

from emitter.schemas import SchemaName, load_schema

NAMES = ("rules", "event", "ruletest")


def get_schema(name: str) -> dict[str, Any]:
    return load_schema(cast(SchemaName, name))


def run(args: argparse.Namespace) -> int:
    text = json.dumps(get_schema(args.name), indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print a JSON Schema: rules, event or ruletest",
        description="Print one of emitter's JSON Schemas (draft 2020-12). Point an editor at it "
        "with a `# yaml-language-server: $schema=...` modeline.",
    )
    parser.add_argument("name", choices=NAMES, help="rules (rule files), event (the body sent "
                        "to Datadog) or ruletest (*.test.yaml files)")
    parser.set_defaults(run=run)
