"""Lint check `field-length`: a templated field that renders close to its limit with the
examples, so a longer real value would make the event invalid."""

from __future__ import annotations

from emitter.events.limits import FIELD_MAX
from emitter.problems import Problem
from emitter.rules.model import Tmpl
from emitter.validate.checks.base import LintCheck, LintInput, Options, is_template

NEAR_LIMIT = 0.9


def check(item: LintInput, options: Options) -> list[Problem]:
    near = float(options["near-limit"])
    problems = []
    for name, limit in FIELD_MAX.items():
        value = item.rule.event.get(name)
        if not isinstance(value, Tmpl) or not is_template(value.text):
            continue  # a constant's length is exact; the event schema judges it
        longest = max((len(e[name]) for e in item.examples if isinstance(e.get(name), str)),
                      default=0)
        # Over the limit is already an error of the event schema; this warns before that.
        if near * limit <= longest <= limit:
            problems.append(CHECK.problem(
                f"{name} renders to {longest} of at most {limit} characters with the examples; "
                "real values longer than the examples will make the event invalid: shorten "
                "the literal text or truncate a variable (e.g. `| truncate(40)`)",
                value.location, item.rule.id, f"$.{name}"))
    return problems


CHECK = LintCheck(
    id="field-length",
    description="a templated title, text or aggregation_key that renders to 90% or more "
    "of its limit with the examples given, so longer real values will make it invalid",
    options={"near-limit": NEAR_LIMIT},
    run=check,
)
