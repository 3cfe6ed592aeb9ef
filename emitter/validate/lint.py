"""Lint checks for rules: warnings about things that are valid but probably not meant.

Each check is a small function with a stable id (the `check` of its Problems), in the style
of yamllint. `emitter validate` runs them all through `lint_rules`; `--strict` turns their
warnings into errors. Checks look at the rule as written (literal parts of templates) and at
the events rendered from the params' examples, because a template alone rarely tells what
Datadog will receive.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError

from emitter.problems import Location, Problem, Severity
from emitter.rules.model import FieldValue, Rule, Tmpl
from emitter.templates.compiler import (
    ENV,
    CompiledRule,
    CompiledTemplate,
    Expression,
    compile_expression,
    compile_template,
    names_in,
    split_simple,
)

# check id -> what it warns about (shown by docs and `--help`-style listings)
CHECKS: dict[str, str] = {
    "tag-format": "a tag Datadog would rewrite: capitals, spaces or characters outside "
    "letters, digits and _ - : . /, a trailing ':', over 200 characters, not starting with "
    "a letter",
    "source-type-name": "a source_type_name that is not in Datadog's list of known sources",
    "field-length": "a templated title, text or aggregation_key that renders to 90% or more "
    "of its limit with the examples given, so longer real values will make it invalid",
    "constant-when": "a `when:` that references no variable, so it is always true or always "
    "false",
    "unused-param": "a declared param that no template, `when`, `foreach` or throttle key uses",
    "untested-rule": "a rule that no *.test.yaml case covers (only with --require-tests)",
}

TAG_MAX = 200
LIMITS = {"title": 100, "text": 4000, "aggregation_key": 100}
NEAR_LIMIT = 0.9
_TAG_CHAR = re.compile(r"[\w\-:./]")  # \w: Unicode letters, digits, underscore
_KEEPS_CASE = ("host:", "device:")
_MARKERS = ("{{", "{%", "{#")

Examples = Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class LintInput:
    """What every check sees for one rule."""

    rule: Rule
    compiled: CompiledRule | None
    examples: Sequence[Mapping[str, Any]]  # events rendered from the params' examples


def _warn(check: str, message: str, location: Location | None, rule_id: str,
          json_path: str | None = None) -> Problem:
    return Problem(message, location, Severity.WARNING, rule_id, json_path, check)


def is_template(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


@lru_cache(maxsize=4096)
def _parse(text: str) -> nodes.Template | None:
    try:
        return ENV.parse(text)
    except TemplateSyntaxError:
        return None  # compile_rule reports it; lint has nothing to add


def literal_parts(text: str) -> tuple[str, ...]:
    """The literal text pieces of a template, in order (the whole text when it has no markup)."""
    if not is_template(text):
        return (text,)
    simple = split_simple(text)
    if simple is not None:  # literal text and placeholders: no parse needed
        head, pairs = simple
        return tuple(part for part in (head, *(tail for _, _, tail in pairs)) if part)
    ast = _parse(text)
    if ast is None:
        return ()
    return tuple(node.data for node in ast.find_all(nodes.TemplateData))


def variables_of(tmpl: Tmpl, *, expression: bool = False) -> frozenset[str] | None:
    """Names a template (or a bare expression such as `when:`) reads from its context; None
    when it does not compile. The compiled form comes from the compile caches, which the rule's
    own compile (when lint has no compiled rule) has usually filled."""
    try:
        return names_in(compile_expression(tmpl) if expression else compile_template(tmpl))
    except Exception:  # noqa: BLE001 - compile_rule reports why it does not compile
        return None


# ---- tag-format ---------------------------------------------------------------------------


def tag_issue(tag: str, *, whole: bool = True, keeps_case: bool = False) -> str | None:
    """Why Datadog would rewrite `tag` (or a literal piece of one when not `whole`), or None."""
    if whole and len(tag) > TAG_MAX:
        return f"is {len(tag)} characters; Datadog keeps at most {TAG_MAX}"
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


def _literal_tag_issue(text: str) -> str | None:
    if not is_template(text):
        return tag_issue(text)
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


def check_tag_format(item: LintInput) -> list[Problem]:
    problems: list[Problem] = []
    tags = item.rule.event.get("tags")
    written = tags if isinstance(tags, tuple) else ()
    flagged: set[int] = set()
    for index, tmpl in enumerate(written):
        issue = _literal_tag_issue(tmpl.text)
        if issue is not None:
            flagged.add(index)
            problems.append(_warn("tag-format", f"tag {tmpl.text!r} {issue}", tmpl.location,
                                  item.rule.id, f"$.tags[{index}]"))
    seen: set[str] = set()
    for event in item.examples:
        for index, tag in enumerate(event.get("tags") or ()):
            if index in flagged or not isinstance(tag, str) or tag in seen:
                continue
            seen.add(tag)
            issue = tag_issue(tag)
            if issue is not None:
                where = written[index].location if index < len(written) else item.rule.location
                problems.append(_warn("tag-format", f"tag {tag!r} (rendered from the examples) "
                                      f"{issue}", where, item.rule.id, f"$.tags[{index}]"))
    return problems


# ---- source-type-name ---------------------------------------------------------------------


@cache
def known_source_type_names() -> frozenset[str]:
    text = (resources.files("emitter") / "data" / "source_type_names.json").read_text("utf-8")
    return frozenset(json.loads(text)["names"])


def source_type_issue(name: str) -> str | None:
    known = known_source_type_names()
    if name in known:
        return None
    close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.6)
    if name.lower() in known:
        return f"source_type_name {name!r} is not a known Datadog source; did you mean " \
               f"{name.lower()!r}?"
    hint = f"; did you mean {close[0]!r}?" if close else \
        "; Datadog will show it as a custom source"
    return f"source_type_name {name!r} is not a known Datadog source{hint}"


def check_source_type_name(item: LintInput) -> list[Problem]:
    value = item.rule.event.get("source_type_name")
    if not isinstance(value, Tmpl):
        return []
    names = [value.text] if not is_template(value.text) else sorted(
        {e["source_type_name"] for e in item.examples
         if isinstance(e.get("source_type_name"), str)})
    problems = []
    for name in names:
        issue = source_type_issue(name)
        if issue is not None:
            problems.append(_warn("source-type-name", issue, value.location, item.rule.id,
                                  "$.source_type_name"))
    return problems


# ---- field-length -------------------------------------------------------------------------


def check_field_length(item: LintInput) -> list[Problem]:
    problems = []
    for name, limit in LIMITS.items():
        value = item.rule.event.get(name)
        if not isinstance(value, Tmpl) or not is_template(value.text):
            continue  # a constant's length is exact; the event schema judges it
        longest = max((len(e[name]) for e in item.examples if isinstance(e.get(name), str)),
                      default=0)
        # Over the limit is already an error of the event schema; this warns before that.
        if NEAR_LIMIT * limit <= longest <= limit:
            problems.append(_warn(
                "field-length",
                f"{name} renders to {longest} of at most {limit} characters with the examples; "
                "real values longer than the examples will make the event invalid: shorten "
                "the literal text or truncate a variable (e.g. `| truncate(40)`)",
                value.location, item.rule.id, f"$.{name}"))
    return problems


# ---- constant-when ------------------------------------------------------------------------


def check_constant_when(item: LintInput) -> list[Problem]:
    when = item.rule.when
    if when is None:
        return []
    compiled = item.compiled.when if item.compiled is not None else None
    names = names_in(compiled) if compiled is not None else variables_of(when, expression=True)
    if names is None or names:  # None: a syntax error, reported by compile_rule
        return []
    return [_warn("constant-when", f"when: {when.text!r} uses no variable, so it is always "
                  "the same; remove it or test a param or trigger variable", when.location,
                  item.rule.id)]


# ---- unused-param -------------------------------------------------------------------------


def _field_templates(value: FieldValue) -> Iterable[Tmpl]:
    if isinstance(value, Tmpl):
        yield value
    elif isinstance(value, tuple):
        yield from value


def _compiled_parts(compiled: CompiledRule) -> Iterable[CompiledTemplate | Expression]:
    for _, value in compiled.fields:
        if isinstance(value, tuple):
            yield from value
        elif not isinstance(value, int):
            yield value
    yield from (p for p in (compiled.when, compiled.foreach, compiled.throttle_key) if p)


def used_names(rule: Rule, compiled: CompiledRule | None = None) -> frozenset[str]:
    """Every variable name any template, `when`, `foreach` or throttle key of `rule` reads,
    from the names recorded when it was compiled (`compiled`, when the rule compiled)."""
    if compiled is not None:
        return frozenset().union(*(names_in(part) for part in _compiled_parts(compiled)))
    found: list[frozenset[str] | None] = []
    for value in rule.event.values():
        found.extend(variables_of(tmpl) for tmpl in _field_templates(value))
    found.extend(variables_of(e, expression=True) for e in (rule.when, rule.foreach) if e)
    if rule.throttle is not None:
        found.append(variables_of(rule.throttle.key))
    return frozenset().union(*(names for names in found if names is not None))


def check_unused_param(item: LintInput) -> list[Problem]:
    used = used_names(item.rule, item.compiled)
    return [_warn("unused-param", f"param {p.name!r} is declared but no template uses it",
                  p.location or item.rule.location, item.rule.id)
            for p in item.rule.params if p.name not in used]


# ---- running ------------------------------------------------------------------------------

Check = Callable[[LintInput], list[Problem]]
_ALWAYS: tuple[tuple[str, Check], ...] = (
    ("tag-format", check_tag_format),
    ("source-type-name", check_source_type_name),
    ("field-length", check_field_length),
    ("constant-when", check_constant_when),
    ("unused-param", check_unused_param),
)


def untested_problems(rules: Sequence[Rule], tested: Collection[str]) -> list[Problem]:
    return [_warn("untested-rule", f"rule {r.id!r} has no test case in any *.test.yaml file",
                  r.location, r.id) for r in rules if r.id not in tested]


def lint_rules(
    rules: Sequence[Rule],
    compiled: Iterable[CompiledRule] | Mapping[str, CompiledRule],
    rendered_examples: Examples,
    *,
    tested: Collection[str] | None = None,
    disabled: Collection[str] = (),
) -> list[Problem]:
    """Every lint warning for `rules`, in rule order, then by check.

    `rendered_examples` maps a rule id to the events rendered from its params' examples (as
    `validate` renders them); `tested` is the set of rule ids some test case covers, or None
    to skip the `untested-rule` check; `disabled` lists check ids to skip.
    """
    by_id = dict(compiled) if isinstance(compiled, Mapping) else {c.id: c for c in compiled}
    problems: list[Problem] = []
    for rule in rules:
        item = LintInput(rule, by_id.get(rule.id), rendered_examples.get(rule.id, ()))
        for check_id, check in _ALWAYS:
            if check_id not in disabled:
                problems.extend(check(item))
    if tested is not None and "untested-rule" not in disabled:
        problems.extend(untested_problems(rules, tested))
    return problems
