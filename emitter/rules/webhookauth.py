"""A webhook rule's `auth` and `dedup` blocks -> frozen records (`AuthScheme`, `Dedup`), with
presets (emitter.rules.webhookpresets) filled in and version-1 shorthands mapped onto schemes.

Schemes: `bearer` (Authorization: Bearer), `basic`, `header` (a token in a named header or
query parameter), `hmac` (a keyed digest of the body or of a declared concatenation). Every
secret is the value of an environment variable the rule names; a list of them is accepted
while a secret rotates. The checking itself is emitter.triggers.auth's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from emitter.problems import Location, Problem
from emitter.rules.durations import parse_duration
from emitter.rules.webhookpresets import PRESETS, Preset

Scheme = Literal["bearer", "basic", "header", "hmac"]
SIGNED_PLACES = ("body", "timestamp")  # what `signed` may put together
DEFAULT_TOLERANCE = 300.0  # seconds a timestamped signature stays valid (replay window)
DEFAULT_DEDUP_WINDOW = 86400.0  # seconds a delivery id is remembered
V1_SIGNATURE_HEADER = "X-Hub-Signature-256"
V1_TOKEN_HEADER = "X-Emitter-Token"  # noqa: S105 - a header name (version 1 bare token)

_ONLY = {  # option -> the schemes it belongs to
    "username_env": ("basic",), "query": ("header",),
    "header": ("header", "hmac"),
    **{k: ("hmac",) for k in ("algorithm", "encoding", "prefix", "signed", "timestamp_header",
                              "tolerance", "separator")},
}
_PLACE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class AuthScheme:
    """One authentication scheme a request must pass; header names as written."""

    scheme: Scheme
    secret_envs: tuple[str, ...]  # the token, password or HMAC key; any one may match
    header: str | None = None  # header: the token's header; hmac: the signature's
    query: str | None = None  # header scheme: the token's query parameter instead
    username_env: str | None = None  # basic
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""  # before each signature, e.g. "sha256=", "v0=", "v1="
    signed: tuple[str, ...] = ("{body}",)  # literal text, "{body}" and "{timestamp}" parts
    timestamp_header: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    separator: str | None = None  # several signatures in one header, split at this
    alt_header: str | None = None  # bearer: the bare token is also accepted in this header
    preset: str | None = None

    @property
    def env_names(self) -> tuple[str, ...]:
        return (*self.secret_envs, *((self.username_env,) if self.username_env else ()))

    @property
    def credential_headers(self) -> tuple[str, ...]:
        """Headers carrying this scheme's credential (removed before templates see them)."""
        names = ["Authorization"] if self.scheme in ("bearer", "basic") else []
        names += [h for h in (self.header, self.alt_header) if h]
        return tuple(names)

    @property
    def credential_query(self) -> tuple[str, ...]:
        return (self.query,) if self.query else ()


@dataclass(frozen=True)
class Dedup:
    """Where a delivery's id is found; a second delivery with it within `window` fires
    nothing. `key` is a template source (compiled by the webhook trigger)."""

    header: str | None = None
    key: str | None = None
    window: float = DEFAULT_DEDUP_WINDOW
    key_at: Location | None = None  # where `key` is written, for its template's errors


class _Doc(Protocol):
    def location(self, json_path: tuple[str | int, ...]) -> Location: ...


def v1_schemes(token_env: str | None, hmac_secret_env: str | None,
               signature_header: str) -> tuple[AuthScheme, ...]:
    """Version-1 `token_env` / `hmac_secret_env` as schemes (both given: both required)."""
    schemes = []
    if token_env:
        schemes.append(AuthScheme("bearer", (token_env,), alt_header=V1_TOKEN_HEADER))
    if hmac_secret_env:
        schemes.append(AuthScheme("hmac", (hmac_secret_env,), header=signature_header,
                                  prefix="sha256="))
    return tuple(schemes)


class _Builder:
    def __init__(self, doc: _Doc, path: tuple[str | int, ...]) -> None:
        self.doc, self.path = doc, path
        self.problems: list[Problem] = []

    def add(self, keys: tuple[str, ...], message: str) -> None:
        name = ".".join(("trigger", *keys))
        self.problems.append(Problem(f"{name}: {message}", self.doc.location((*self.path, *keys)),
                                     check="trigger"))

    def seconds(self, keys: tuple[str, ...], value: Any, default: float) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.add(keys, str(exc))
            return default
        if seconds <= 0:
            self.add(keys, "must be longer than zero")
            return default
        return seconds


def build_auth(doc: _Doc, path: tuple[str | int, ...], raw: dict[str, Any]
               ) -> tuple[AuthScheme | None, Dedup | None, list[Problem]]:
    """The trigger's `auth` scheme and `dedup`, with the problems found (placed)."""
    build = _Builder(doc, path)
    auth = raw.get("auth")
    preset = PRESETS.get(auth.get("preset", "")) if isinstance(auth, dict) else None
    scheme = _scheme(build, auth) if isinstance(auth, dict) else None
    if auth is not None and any(k in raw for k in ("token_env", "hmac_secret_env",
                                                   "signature_header")):
        build.add(("auth",), "give either `auth` or the version-1 keys token_env / "
                             "hmac_secret_env / signature_header, not both")
    dedup = _dedup(build, raw.get("dedup"), preset)
    return scheme, dedup, build.problems


def _scheme(build: _Builder, auth: dict[str, Any]) -> AuthScheme | None:
    preset = PRESETS.get(auth.get("preset", ""))
    fields: dict[str, Any] = dict(preset.fields) if preset else {}
    if preset and preset.signed_with_timestamp and "timestamp_header" in auth:
        fields["signed"] = preset.signed_with_timestamp
    fields.update({k: v for k, v in auth.items() if k != "preset"})
    kind = fields.get("scheme")
    if kind is None:
        build.add(("auth",), "needs a `preset` or a `scheme` (bearer, basic, header, hmac)")
        return None
    for key, schemes in _ONLY.items():
        if key in auth and kind not in schemes:
            build.add(("auth", key), f"applies only to scheme {' or '.join(schemes)}, not {kind}")
    envs = fields.get("secret_env")
    secret_envs = (envs,) if isinstance(envs, str) else tuple(envs or ())
    if not secret_envs:
        build.add(("auth",), "needs `secret_env`: the environment variable(s) holding the secret")
    signed = _signed(build, fields) if kind == "hmac" else ("{body}",)
    if not _required_ok(build, kind, fields):
        return None
    tolerance = (build.seconds(("auth", "tolerance"), fields["tolerance"], DEFAULT_TOLERANCE)
                 if "tolerance" in fields else DEFAULT_TOLERANCE)
    return AuthScheme(
        scheme=kind, secret_envs=secret_envs, header=fields.get("header"),
        query=fields.get("query"), username_env=fields.get("username_env"),
        algorithm=fields.get("algorithm", "sha256"), encoding=fields.get("encoding", "hex"),
        prefix=fields.get("prefix", ""), signed=signed,
        timestamp_header=fields.get("timestamp_header"), tolerance=tolerance,
        separator=fields.get("separator"), preset=auth.get("preset"))


def _required_ok(build: _Builder, kind: str, fields: dict[str, Any]) -> bool:
    if kind == "basic" and not fields.get("username_env"):
        build.add(("auth",), "scheme basic needs `username_env` (and `secret_env`, the password)")
        return False
    if kind == "header" and bool(fields.get("header")) == bool(fields.get("query")):
        build.add(("auth",), "scheme header needs exactly one of `header` or `query`: where "
                             "the token is sent")
        return False
    if kind == "hmac" and not fields.get("header"):
        build.add(("auth",), "scheme hmac needs `header`: the header carrying the signature")
        return False
    return True


def _signed(build: _Builder, fields: dict[str, Any]) -> tuple[str, ...]:
    """`signed` split into literal text and "{body}"/"{timestamp}" parts."""
    text = fields.get("signed", "{body}")
    parts: list[str] = []
    end = 0
    for match in _PLACE.finditer(text):
        if match.group(1) not in SIGNED_PLACES:
            build.add(("auth", "signed"), f"unknown part {match.group(0)}; use {{body}} and "
                                          "{timestamp}")
        parts += [p for p in (text[end:match.start()], match.group(0)) if p]
        end = match.end()
    parts += [text[end:]] if text[end:] else []
    if "{body}" not in parts:
        build.add(("auth", "signed"), "must contain {body}: a signature that does not cover the "
                                      "body proves nothing about it")
    if "{timestamp}" in parts and not fields.get("timestamp_header"):
        build.add(("auth", "signed"), "uses {timestamp} but no `timestamp_header` says where "
                                      "it is sent")
    return tuple(parts)


def _dedup(build: _Builder, raw: Any, preset: Preset | None) -> Dedup | None:
    if raw is False:
        return None
    header = preset.dedup_header if preset else None
    key = preset.dedup_key if preset else None
    if raw is None:
        where = build.doc.location((*build.path, "auth", "preset"))  # the preset's key
        return Dedup(header, key, key_at=where) if header or key else None
    if "header" in raw or "key" in raw:
        header, key = raw.get("header"), raw.get("key")
    if header and key:
        build.add(("dedup",), "give one of `header` or `key`, not both")
    if not header and not key:
        build.add(("dedup",), "needs `header` or `key` (the preset names no delivery id)")
        return None
    window = (build.seconds(("dedup", "window"), raw["window"], DEFAULT_DEDUP_WINDOW)
              if "window" in raw else DEFAULT_DEDUP_WINDOW)
    return Dedup(header, key, window, build.doc.location((*build.path, "dedup", "key")))
