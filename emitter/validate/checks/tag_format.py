"""Lint check `tag-format`: tags Datadog would rewrite (capitals, spaces, other characters,
a trailing ':', over 200 characters, not starting with a letter)."""

from __future__ import annotations

import re

from emitter.events.limits import TAG_MAX
from emitter.problems import Problem
from emitter.validate.checks.base import LintCheck, LintInput, Options, is_template, literal_parts

_TAG_CHAR = re.compile(r"[\w\-:./]")  # \w: Unicode letters, digits, underscore
_KEEPS_CASE = ("host:", "device:")


def tag_issue(tag: str, *, whole: bool = True, keeps_case: bool = False,
              max_length: int = TAG_MAX) -> str | None:
    """Why Datadog would rewrite `tag` (or a literal piece of one when not `whole`), or None."""
    if whole and len(tag) > max_length:
        return f"is {len(tag)} characters; Datadog keeps at most {max_length}"
    bad = sorted({c for c in tag if not _TAG_CHAR.fullmatch(c)})
    if " " in bad:
        return "contains a space; Datadog rewrites it to _"
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"contains {shown}; Datadog rewrites characters outside letters, digits " \
               "and _ - : . / to _"
    if tag != tag.lower() and not (keeps_case or tag.startswith(_KEEPS_CASE)):
        return "has capitals; Datadog lowercases tags (except host: and device:)"
    if whole and tag.endswith(":"):
        return "ends with ':'; Datadog drops or rewrites such tags"
    if whole and tag and not tag[0].isalpha():
        return "does not start with a letter; Datadog rewrites it"
    return None


def _literal_tag_issue(text: str, max_length: int) -> str | None:
    if not is_template(text):
        return tag_issue(text, max_length=max_length)
    parts = [p for p in literal_parts(text) if p]
    keeps_case = text.startswith(_KEEPS_CASE)
    for part in parts:
        issue = tag_issue(part, whole=False, keeps_case=keeps_case)
        if issue is not None:
            return f"has literal text {part!r} that {issue}"
    if parts and text.startswith(parts[0]) and not parts[0][0].isalpha():
        return "does not start with a letter; Datadog rewrites it"
    if parts and text.endswith(parts[-1]) and parts[-1].endswith(":"):
        return "ends with ':'; Datadog drops or rewrites such tags"
    return None


def check(item: LintInput, options: Options) -> list[Problem]:
    max_length = int(options["max-length"])
    problems: list[Problem] = []
    tags = item.rule.event.get("tags")
    written = tags if isinstance(tags, tuple) else ()
    flagged: set[int] = set()
    for index, tmpl in enumerate(written):
        issue = _literal_tag_issue(tmpl.text, max_length)
        if issue is not None:
            flagged.add(index)
            problems.append(CHECK.problem(f"tag {tmpl.text!r} {issue}", tmpl.location,
                                          item.rule.id, f"$.tags[{index}]"))
    seen: set[str] = set()
    for event in item.examples:
        for index, tag in enumerate(event.get("tags") or ()):
            if index in flagged or not isinstance(tag, str) or tag in seen:
                continue
            seen.add(tag)
            issue = tag_issue(tag, max_length=max_length)
            if issue is not None:
                where = written[index].location if index < len(written) else item.rule.location
                problems.append(CHECK.problem(f"tag {tag!r} (rendered from the examples) "
                                              f"{issue}", where, item.rule.id,
                                              f"$.tags[{index}]"))
    return problems


CHECK = LintCheck(
    id="tag-format",
    description="a tag Datadog would rewrite: capitals, spaces or characters outside "
    "letters, digits and _ - : . /, a trailing ':', over 200 characters, not starting with "
    "a letter",
    options={"max-length": TAG_MAX},
    run=check,
)
