"""Typed, frozen records for loaded rules. Nothing after the loader reads raw YAML dicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from emitter.problems import Location
from emitter.rules.budget import DEFAULT as DEFAULT_BUDGET
from emitter.rules.budget import Budget
from emitter.rules.webhookauth import V1_SIGNATURE_HEADER, AuthScheme, Dedup, v1_schemes

ParamType = Literal["string", "integer", "number", "boolean", "list", "object"]


class _Missing:
    """Sentinel for "no default given" (None is a legitimate default)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Tmpl:
    """A string from a rule file that is (or may be) a Jinja2 template, with its place."""

    text: str
    location: Location


# The value of one event field as written: a template string, a list of them (tags), or a
# literal (an integer date_happened). Defaults are already merged by the loader.
FieldValue = Tmpl | tuple[Tmpl, ...] | int


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType = "string"
    description: str = ""
    example: Any = MISSING
    enum: tuple[Any, ...] | None = None
    default: Any = MISSING
    location: Location | None = None

    @property
    def required(self) -> bool:
        return self.default is MISSING


# ---- triggers -----------------------------------------------------------------------------
# One record per trigger type; the loader builds them from the rule schema's `trigger` block.


@dataclass(frozen=True)
class ManualTrigger:
    type: Literal["manual"] = "manual"


@dataclass(frozen=True)
class ScheduleTrigger:
    every: float | None = None  # seconds
    cron: str | None = None
    timezone: str = "UTC"
    type: Literal["schedule"] = "schedule"


@dataclass(frozen=True)
class FileTrigger:
    path: str
    match: re.Pattern[str]
    exclude: re.Pattern[str] | None = None
    from_beginning: bool = False
    type: Literal["file"] = "file"


@dataclass(frozen=True)
class WebhookTrigger:
    path: str  # URL path, e.g. "/hooks/alertmanager"
    token_env: str | None = None  # version 1: env var holding a bearer token
    hmac_secret_env: str | None = None  # version 1: env var holding the HMAC-SHA256 secret
    signature_header: str = V1_SIGNATURE_HEADER
    auth: AuthScheme | None = None  # the `auth` block (emitter.rules.webhookauth)
    dedup: Dedup | None = None  # where a delivery's id is; None: redeliveries fire again
    type: Literal["webhook"] = "webhook"

    @property
    def schemes(self) -> tuple[AuthScheme, ...]:
        """Every scheme a request must pass: `auth`, or the version-1 shorthands'."""
        if self.auth is not None:
            return (self.auth,)
        return v1_schemes(self.token_env, self.hmac_secret_env, self.signature_header)

    @property
    def secret_envs(self) -> tuple[str, ...]:
        """Every environment variable this trigger reads a secret (or user name) from."""
        return tuple(name for scheme in self.schemes for name in scheme.env_names)


@dataclass(frozen=True)
class CommandTrigger:
    command: tuple[str, ...]
    every: float = 60.0
    timeout: float = 30.0
    on: Literal["always", "change", "failure"] = "always"
    type: Literal["command"] = "command"


@dataclass(frozen=True)
class StdinTrigger:
    type: Literal["stdin"] = "stdin"


Trigger = (
    ManualTrigger | ScheduleTrigger | FileTrigger | WebhookTrigger | CommandTrigger | StdinTrigger
)


@dataclass(frozen=True)
class Throttle:
    key: Tmpl
    window: float  # seconds
    mode: Literal["first", "summary"] = "first"


@dataclass(frozen=True)
class Rule:
    id: str
    location: Location  # where the rule's mapping starts
    trigger: Trigger
    event: Mapping[str, FieldValue]  # defaults merged; tags = defaults' tags + the rule's
    description: str = ""
    params: tuple[Param, ...] = ()
    when: Tmpl | None = None
    foreach: Tmpl | None = None
    throttle: Throttle | None = None
    env: tuple[str, ...] = ()  # environment variables the rule exposes to templates as `env`
    unified_tags: bool = True  # add DD_ENV/DD_SERVICE/DD_VERSION/DD_TAGS tags
    budget: Budget = DEFAULT_BUDGET  # what one render of its templates may cost
    extra: Mapping[str, Any] = field(default_factory=dict)  # reserved; unused in version 1

    @property
    def path(self) -> str:
        return self.location.path

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None
