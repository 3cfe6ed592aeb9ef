"""The lint-check registry: every check `emitter validate` runs, one module each, by id.

A check module declares `CHECK = LintCheck(id=..., description=..., severity=..., options=...,
run=...)`; adding one here is all it takes for `validate` (and `--disable`, `--strict`,
`--list-checks`, the output formats and the docs) to know it. The order is the report's
order for problems at the same place.
"""

from __future__ import annotations

from emitter.validate.checks import (
    constant_when,
    credential_env,
    field_length,
    source_type_name,
    tag_format,
    untested_rule,
    unused_param,
    webhook_auth,
)
from emitter.validate.checks.base import LintCheck

_MODULES = (tag_format, source_type_name, field_length, constant_when, unused_param,
            credential_env, webhook_auth, untested_rule)

CHECKS: dict[str, LintCheck] = {module.CHECK.id: module.CHECK for module in _MODULES}


def describe_checks() -> str:
    """One line per check: id, default severity, options and what it warns about."""
    lines = []
    for check in CHECKS.values():
        options = ", ".join(f"{k}={v}" for k, v in check.options.items())
        extra = [check.severity.value, *([options] if options else []),
                 *([f"needs {check.enabled_by}"] if check.enabled_by else [])]
        lines.append(f"{check.id} ({'; '.join(extra)}): {check.description}")
    return "\n".join(lines)
