"""Keeping environment values out of messages: which variables are secret, and the one pass
(`Redactor`) every problem and CLI error goes through before it is shown.

A secret is the value of a variable a rule exposes to templates (`env:`), of a variable a
webhook reads its token or HMAC key from, of DD_API_KEY / DD_APP_KEY, or of any variable
whose name looks like a credential (`is_credential_name`). Its value is replaced by
`<redacted $NAME>` (the name stays: it tells the user where to look). `NAME=value` text
with a credential-looking name (a dotenv file read as a rule file) loses its value too, and
a quoted piece of a rule file is cut to QUOTE_MAX characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from emitter.problems import Problem

ALWAYS_SECRET = frozenset({"DD_API_KEY", "DD_APP_KEY", "DD_APPLICATION_KEY", "DATADOG_API_KEY",
                           "DATADOG_APP_KEY"})
_CREDENTIAL_NAME = re.compile(r"(_KEY|_TOKEN|_SECRET)$|PASSWORD|PASSWD|^(KEY|TOKEN|SECRET)$",
                              re.IGNORECASE)
# Shorter values would mask ordinary words and numbers; real credentials are long.
MIN_SECRET = 4
QUOTE_MAX = 200
_ASSIGNMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s'\"]+)")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")  # as repr() quotes


def is_credential_name(name: str) -> bool:
    """True for the Datadog keys and a name ending in _KEY, _TOKEN or _SECRET or holding
    PASSWORD/PASSWD (GITHUB_TOKEN, WEBHOOK_SECRET, DB_PASSWORD...)."""
    return name.upper() in ALWAYS_SECRET or bool(_CREDENTIAL_NAME.search(name))


def secret_names(environ: Mapping[str, str], exposed: Iterable[str] = ()) -> frozenset[str]:
    """The variables of `environ` whose values are secret: `exposed` (names rules read) and
    every credential-looking name."""
    named = {*exposed, *ALWAYS_SECRET}
    return frozenset(n for n in environ if n in named or is_credential_name(n))


class _ReadsEnvironment(Protocol):  # a Rule; not imported, as this module sits below rules/
    @property
    def env(self) -> tuple[str, ...]: ...
    @property
    def trigger(self) -> object: ...


def webhook_secret_envs(rules: Iterable[_ReadsEnvironment]) -> frozenset[str]:
    """Every variable a webhook rule reads a secret from (its `auth` scheme's, or the
    version-1 `token_env`/`hmac_secret_env` it maps onto one: the model's `secret_envs`)."""
    return frozenset(name for rule in rules
                     for name in getattr(rule.trigger, "secret_envs", ()))


def exposed_by(rules: Iterable[_ReadsEnvironment]) -> frozenset[str]:
    """The variables `rules` read: their `env:` lists and their webhook secrets."""
    rules = tuple(rules)
    return frozenset(name for rule in rules for name in rule.env) | webhook_secret_envs(rules)


def _mask(name: str) -> str:
    return f"<redacted ${name}>"


@dataclass(frozen=True)
class Redactor:
    """Masks the values of the given variables in text. `repr` shows the names only."""

    _values: tuple[tuple[str, str], ...] = ()  # (form of a value, its variable), longest first

    @classmethod
    def of(cls, environ: Mapping[str, str], exposed: Iterable[str] = ()) -> Redactor:
        forms: dict[str, str] = {}
        for name in sorted(secret_names(environ, exposed)):
            value = environ[name]
            if len(value) >= MIN_SECRET:
                # as written, and as repr() and json.dumps() escape it inside a message
                for form in (value, repr(value)[1:-1], value.encode("unicode_escape").decode()):
                    forms.setdefault(form, name)
        ordered = sorted(forms.items(), key=lambda item: len(item[0]), reverse=True)
        return cls(tuple(ordered))

    def __repr__(self) -> str:
        return f"Redactor(names={sorted({name for _, name in self._values})})"

    def text(self, text: str) -> str:
        """`text` with every secret value, credential assignment and long quote made safe."""
        text = _ASSIGNMENT.sub(_assignment, text)  # first: its mask holds no value to find
        for value, name in self._values:
            if value in text:
                text = text.replace(value, _mask(name))
        return _QUOTED.sub(_cut_quote, text)

    def problem(self, problem: Problem) -> Problem:
        message = self.text(problem.message)
        return problem if message == problem.message else problem._replace(message=message)

    def problems(self, problems: Iterable[Problem]) -> list[Problem]:
        return [self.problem(p) for p in problems]


def _assignment(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"{name}={_mask(name)}" if is_credential_name(name) else match.group(0)


def _cut_quote(match: re.Match[str]) -> str:
    """A quoted value as its first line (repr writes a newline as \\n), at most QUOTE_MAX
    characters of it."""
    quoted = match.group(0)
    inner = quoted[1:-1]
    first = inner.split("\\n", 1)[0]
    if first == inner and len(inner) <= QUOTE_MAX:
        return quoted
    notes = [*(["first line"] if first != inner else []),
             *([f"cut at {QUOTE_MAX} characters"] if len(first) > QUOTE_MAX else [])]
    return f"{quoted[0]}{first[:QUOTE_MAX]}…{quoted[-1]} ({', '.join(notes)})"
