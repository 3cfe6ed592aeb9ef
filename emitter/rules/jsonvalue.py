"""JSON values a user hands emitter outside a rule file (`--var`, `--vars-file`, saved webhook
payloads): parsed with the same bounds as rule files, every failure a ValueError in words."""

from __future__ import annotations

import json
from typing import Any

from emitter.rules.yamlload import MAX_DEPTH


def parse_json(text: str | bytes) -> Any:
    """The JSON value in `text`; ValueError (a JSONDecodeError for bad syntax) when it is not
    JSON, nests more than MAX_DEPTH levels, or holds a number too long to convert."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # Python's 4300-digit limit on integer conversion
        if "digits" in str(exc):
            raise ValueError("a number has more than 4300 digits") from None
        raise
    if _depth(value) > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return value


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            todo.extend((item, level + 1) for item in node)
    return deepest
