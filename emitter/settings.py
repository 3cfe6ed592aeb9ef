"""Datadog settings from the environment: the API key (as a masked `Secret`), site, base URL,
unified service tags, hostname, and where the DogStatsD Agent listens (the one reader of
DD_DOGSTATSD_URL, DD_AGENT_HOST and DD_DOGSTATSD_PORT). Read once, then passed around as a
frozen record."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from emitter.errors import ConfigError

# Datadog's sites (DD_SITE values); the official client refuses anything else, so do we.
SITES: tuple[str, ...] = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)
DEFAULT_SITE = "datadoghq.com"
EVENTS_PATH = "/api/v1/events"
STATSD_HOST = "localhost"  # datadogpy's defaults
STATSD_PORT = 8125
STATSD_ENV = ("DD_DOGSTATSD_URL", "DD_AGENT_HOST", "DD_DOGSTATSD_PORT")
_MASK = "****"


class Secret:
    """A value that must never be shown: `repr`, `str` and formatting only say it is set.

    Call `reveal()` at the one place the value is needed (the HTTP header).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return format(_MASK, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # constant-time; imported here, not at start-up

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the key wherever the pickle goes (a cache, a queue): refuse.
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Settings:
    """What emitter needs to talk to Datadog. Build it with `Settings.from_environ`."""

    api_key: Secret | None
    site: str = DEFAULT_SITE
    base_url: str = f"https://api.{DEFAULT_SITE}"
    unified_tags: tuple[str, ...] = ()
    hostname: str = ""
    statsd_env: Mapping[str, str] = field(default_factory=dict)  # the STATSD_ENV variables

    @property
    def events_url(self) -> str:
        return self.base_url + EVENTS_PATH

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read DD_API_KEY, DD_SITE, DATADOG_HOST, DD_ENV/DD_SERVICE/DD_VERSION and DD_TAGS.

        Raises ConfigError for a site not in Datadog's list or a DATADOG_HOST that is not an
        http(s) URL. An empty or blank DD_API_KEY counts as unset.
        """
        key = environ.get("DD_API_KEY", "").strip()
        site = environ.get("DD_SITE", "").strip().lower() or DEFAULT_SITE
        if site not in SITES:
            raise ConfigError(
                f"DD_SITE={site!r} is not a Datadog site; use one of: {', '.join(SITES)}"
            )
        host = environ.get("DATADOG_HOST", "").strip()
        base_url = _base_url(host) if host else f"https://api.{site}"
        return cls(
            api_key=Secret(key) if key else None,
            site=site,
            base_url=base_url,
            unified_tags=unified_tags(environ),
            hostname=socket.gethostname(),
            statsd_env={k: environ[k] for k in STATSD_ENV if environ.get(k, "").strip()},
        )

    def dogstatsd(self, address: str | None = None) -> dict[str, Any]:
        """Where the DogStatsD sink sends: DogStatsdSink keyword arguments (`host`/`port` or
        `socket_path`). Read as datadogpy reads them: an explicit `address` (the
        --statsd-address option) wins, then DD_DOGSTATSD_URL, then DD_AGENT_HOST and
        DD_DOGSTATSD_PORT, then localhost:8125. Unlike datadogpy, a bad value is a
        ConfigError naming the variable, not a silent fall-back to the default."""
        if address:
            return parse_statsd_address(address)
        env = self.statsd_env
        if env.get("DD_DOGSTATSD_URL"):
            return parse_statsd_address(env["DD_DOGSTATSD_URL"], "DD_DOGSTATSD_URL")
        port = env.get("DD_DOGSTATSD_PORT", "").strip() or str(STATSD_PORT)
        if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"DD_DOGSTATSD_PORT={port!r} is not a port number (1-65535)")
        return {"host": env.get("DD_AGENT_HOST", "").strip() or STATSD_HOST, "port": int(port)}

    def require_api_key(self, hint: str = "") -> Secret:
        """The API key, or a ConfigError saying how to provide it (plus `hint`)."""
        if self.api_key is None:
            more = f", or {hint}" if hint else ""
            raise ConfigError(
                "DD_API_KEY is not set: export DD_API_KEY=<key> (Datadog: Organization "
                f"Settings > API Keys){more}"
            )
        return self.api_key


def _base_url(host: str) -> str:
    """DATADOG_HOST is a full base URL (as datadogpy reads it); trailing slashes dropped."""
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"DATADOG_HOST={host!r} is not a base URL; expected e.g. https://api.datadoghq.eu"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("DATADOG_HOST must be a plain base URL (no credentials or query)")
    return host.rstrip("/")


def parse_statsd_address(address: str, source: str = "dogstatsd address") -> dict[str, Any]:
    """`host:port`, `udp://host:port` or `unix:///path` (the forms DD_DOGSTATSD_URL takes;
    `unixgram://` too) -> DogStatsdSink keyword arguments; ConfigError naming `source`."""
    for scheme in ("unix://", "unixgram://"):
        if address.startswith(scheme):
            path = address[len(scheme):]
            if not path:
                raise ConfigError(f"{source} {address!r} names no socket path")
            return {"socket_path": path}
    parts = urlsplit(address if "://" in address else f"udp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "udp" or not parts.hostname or port is None:
        raise ConfigError(
            f"{source} {address!r} is not host:port, udp://host:port or unix:///path"
        )
    return {"host": parts.hostname, "port": port}


_TAG_SPLIT = re.compile(r"[,\s]+")


def unified_tags(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Tags Datadog's own tools add: env:/service:/version: from DD_ENV/DD_SERVICE/DD_VERSION,
    then DD_TAGS split on commas and whitespace; blanks and repeats dropped, order kept."""
    tags: list[str] = []
    for var, prefix in (("DD_ENV", "env"), ("DD_SERVICE", "service"), ("DD_VERSION", "version")):
        value = environ.get(var, "").strip()
        if value:
            tags.append(f"{prefix}:{value}")
    tags.extend(t for t in _TAG_SPLIT.split(environ.get("DD_TAGS", "")) if t)
    return tuple(dict.fromkeys(tags))
