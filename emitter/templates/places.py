"""Where in the rule file a template's own line is: for messages about a template, its
syntax errors and its failing lines (block and quoted scalars counted as YAML writes them)."""

from __future__ import annotations

import linecache

from jinja2.exceptions import TemplateSyntaxError

from emitter.problems import Location, Problem
from emitter.rules.model import Tmpl


def _closes_on_line(line: str, start: int) -> bool:
    """Whether the quoted YAML scalar opening at `line[start]` also closes on this line."""
    quote, i = line[start], start + 1
    while i < len(line):
        char = line[i]
        if quote == '"' and char == "\\":
            i += 2
            continue
        if char == quote:
            if quote == "'" and line[i + 1:i + 2] == "'":  # '' is an escaped quote
                i += 2
                continue
            return True
        i += 1
    return False


def location_in(tmpl: Tmpl, line: int) -> Location:
    """The file place of line `line` (1-based) of a template that starts at `tmpl.location`.

    Only called on error paths, so it may read the rule file: for a block scalar (`|`, `>`)
    the template's first line is the file line after the indicator; a quoted scalar that
    closes on its first line (newlines written as \\n) stays at its start.
    """
    loc = tmpl.location
    linecache.checkcache(loc.path)  # the file may have changed since a previous error
    source = linecache.getline(loc.path, loc.line)
    opener = source[loc.col - 1:loc.col]
    block = opener in ("|", ">")
    if (line <= 1 and not block) or (opener in ("'", '"')
                                     and _closes_on_line(source, loc.col - 1)):
        return loc
    file_line = loc.line + line - (0 if block else 1)
    text = linecache.getline(loc.path, file_line)
    indent = len(text) - len(text.lstrip(" ")) if text.strip() else 0
    return Location(loc.path, file_line, indent + 1)


def syntax_problem(tmpl: Tmpl, exc: TemplateSyntaxError, rule_id: str, what: str) -> Problem:
    return Problem(
        message=f"template syntax error in {what}: {exc.message}",
        location=location_in(tmpl, exc.lineno or 1),
        rule_id=rule_id,
        check="template",
    )
