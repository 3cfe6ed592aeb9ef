"""Checking one webhook request against one authentication scheme (emitter.rules.webhookauth),
every comparison in constant time (`hmac.compare_digest`).

`Verifier.check` returns None when the request passes, else the reason it does not (for the
log; the sender only sees 401). Secrets are read from the environment once, at start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Callable, Mapping

from emitter.rules.webhookauth import AuthScheme

DIGESTS: Mapping[str, Callable[..., hashlib._Hash]] = {
    "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512,
}
_BODY_ONLY = ("{body}",)


def _any_equal(given: bytes, secrets: tuple[bytes, ...]) -> bool:
    ok = False
    for secret in secrets:  # every secret is compared: which one matched does not show
        ok |= hmac.compare_digest(given, secret)
    return ok


class Verifier:
    """One scheme with its secrets; `missing` names the variables that are not set."""

    def __init__(self, scheme: AuthScheme, environ: Mapping[str, str]) -> None:
        self.scheme = scheme
        self.missing = tuple(n for n in scheme.env_names if not environ.get(n))
        self.secrets = tuple(environ[n].encode() for n in scheme.secret_envs if environ.get(n))
        user = environ.get(scheme.username_env or "", "")
        self._user = user.encode()
        self.usable = bool(self.secrets) and (scheme.scheme != "basic" or bool(user))
        self._header = (scheme.header or "").lower()
        self._alt = (scheme.alt_header or "").lower()
        self._ts_header = (scheme.timestamp_header or "").lower()
        self._prefix = scheme.prefix.lower()
        self._digest = DIGESTS[scheme.algorithm]
        self.check = {"bearer": self._bearer, "basic": self._basic, "header": self._token,
                      "hmac": self._hmac}[scheme.scheme]

    def _bearer(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes,
                now: float) -> str | None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        elif self._alt and self._alt in headers:
            given = headers[self._alt].strip()
        else:
            return "no `Authorization: Bearer` header"
        return None if _any_equal(given.encode(), self.secrets) else "wrong bearer token"

    def _basic(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes,
               now: float) -> str | None:
        auth = headers.get("authorization", "")
        if auth[:6].lower() != "basic ":
            return "no `Authorization: Basic` header"
        try:
            user, _, password = base64.b64decode(auth[6:].strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return "malformed Basic credentials"
        user_ok = hmac.compare_digest(user, self._user)
        if _any_equal(password, self.secrets) and user_ok:
            return None
        return "wrong user name or password"

    def _token(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes,
               now: float) -> str | None:
        if self.scheme.query:
            given, where = query.get(self.scheme.query), f"query parameter {self.scheme.query}"
        else:
            given, where = headers.get(self._header), f"header {self.scheme.header}"
        if given is None:
            return f"no {where}"
        return None if _any_equal(given.strip().encode(), self.secrets) else f"wrong {where}"

    def _hmac(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes,
              now: float) -> str | None:
        given = headers.get(self._header)
        if not given:
            return f"no {self.scheme.header} header"
        timestamp = ""
        if self._ts_header:
            timestamp = headers.get(self._ts_header, "").strip()
            stale = self._stale(timestamp, now)
            if stale:
                return stale
        message = body if self.scheme.signed == _BODY_ONLY else self._message(body, timestamp)
        signatures = self._signatures(given)
        for secret in self.secrets:
            mac = hmac.new(secret, message, self._digest).digest()
            expected = (mac.hex() if self.scheme.encoding == "hex"
                        else base64.b64encode(mac).decode()).encode()
            for signature in signatures:
                if hmac.compare_digest(signature, expected):
                    return None
        return f"{self.scheme.header} does not match the body's signature"

    def _stale(self, timestamp: str, now: float) -> str | None:
        name, tolerance = self.scheme.timestamp_header, self.scheme.tolerance
        if not timestamp:
            return f"no {name} header (a timestamped signature needs it)"
        try:
            at = float(timestamp)
        except ValueError:
            return f"{name} is not a Unix time"
        if not math.isfinite(at) or abs(now - at) > tolerance:
            age = now - at if math.isfinite(at) else math.inf
            return (f"{name} is outside the replay window: the request is {age:.0f}s old, "
                    f"the tolerance is {tolerance:g}s (a replay, or a clock out of sync)")
        return None

    def _message(self, body: bytes, timestamp: str) -> bytes:
        parts = {"{body}": body, "{timestamp}": timestamp.encode()}
        return b"".join(parts[p] if p in parts else p.encode() for p in self.scheme.signed)

    def _signatures(self, given: str) -> list[bytes]:
        pieces = given.split(self.scheme.separator) if self.scheme.separator else [given]
        found = []
        hexed = self.scheme.encoding == "hex"
        for piece in pieces:
            piece = piece.strip()
            if self._prefix:
                if piece[:len(self._prefix)].lower() != self._prefix:
                    continue
                piece = piece[len(self._prefix):]
            found.append((piece.lower() if hexed else piece).encode())
        return found
