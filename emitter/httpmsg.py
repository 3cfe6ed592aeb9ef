"""HTTP messages, below triggers and the daemon: the one ADDR:PORT syntax, request-head
parsing with its limits, the Request/Response records a route handler (the webhook trigger)
takes and gives, and the JSON body decoder (malformed input -> BadRequest). The server loop
that uses them is emitter.daemon.listener."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emitter.errors import UsageError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_JSON_DEPTH = 64  # webhook payloads nest a handful of levels; deeper is hostile
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also accepts '²'
_VERSION = re.compile(rb"HTTP/1\.[01]")
_NOT_VISIBLE = re.compile(rb"[^\x21-\x7e]")  # a request target is visible ASCII only
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # in a header value (a tab is allowed)
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            411: "Length Required", 413: "Content Too Large", 414: "URI Too Long",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable",
            505: "HTTP Version Not Supported"}


def parse_addr(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` -> (host, port). A missing host means
    loopback (127.0.0.1) for every option: listening on all interfaces is asked for by
    name (`0.0.0.0:PORT` or `[::]:PORT`). Raises UsageError for anything else."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "", text.strip()
    if host.startswith("[") != host.endswith("]"):
        raise UsageError(f"not an ADDR:PORT: {text!r} (IPv6 addresses go in brackets)")
    host = host[1:-1] if host.startswith("[") else host
    if ":" in host and not text.strip().startswith("["):
        raise UsageError(f"not an ADDR:PORT: {text!r} (IPv6 addresses go in brackets)")
    if not _DIGITS.fullmatch(port) or int(port) > 65535:
        raise UsageError(f"not an ADDR:PORT: {text!r} (the port must be 0-65535)")
    return host or LOOPBACK, int(port)


@dataclass(frozen=True)
class Limits:
    """What one client may cost a listener (seconds, bytes, connections)."""

    max_body: int = 1 << 20
    max_head: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0  # from a request's first byte to the end of its headers
    body_timeout: float = 30.0
    idle_timeout: float = 15.0  # a kept-alive connection waiting for its next request
    write_timeout: float = 10.0
    max_connections: int = 1024


class BadRequest(Exception):
    """A request that gets a 4xx answer (and its connection closed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Head:
    method: str
    target: str
    version: str
    headers: Mapping[str, str]  # lower-cased names; repeated headers joined with ", "
    content_length: int | None
    chunked: bool

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]  # each parameter's first value
    headers: Mapping[str, str]
    body: bytes
    raw_query: str = ""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


App = Callable[[Request], Response]


def json_response(status: int, obj: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, json.dumps(obj).encode(), "application/json", dict(headers or {}))


def error_response(status: int, message: str, **headers: str) -> Response:
    return json_response(status, {"error": message}, headers)


def decode_json(body: bytes) -> Any:
    """A request body as JSON, or BadRequest(400) saying why (not UTF-8, malformed, nested
    deeper than MAX_JSON_DEPTH, an integer past Python's digit limit)."""
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(400, "malformed JSON: body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"malformed JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise BadRequest(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:  # int("9" * 5000) raises past sys.get_int_max_str_digits()
        raise BadRequest(400, "malformed JSON: a number has more than "
                              f"{sys.get_int_max_str_digits()} digits") from None
    if _depth_over(value, MAX_JSON_DEPTH):
        raise BadRequest(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    return False


def parse_head(data: bytes, limits: Limits = Limits()) -> Head:  # noqa: B008 - frozen
    """The request line and headers (without the blank line) -> Head, or BadRequest."""
    lines = data.split(b"\n")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    method, target, version = _request_line(lines[0])
    if len(lines) - 1 > limits.max_headers:
        raise BadRequest(431, f"more than {limits.max_headers} header fields")
    headers: dict[str, str] = {}
    lengths: list[str] = []
    for line in lines[1:]:
        name, value = _header(line)
        if name == "content-length":
            lengths.append(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    chunked = "transfer-encoding" in headers
    if len(lengths) > 1 or (lengths and "," in lengths[0]):
        raise BadRequest(400, "more than one Content-Length")
    if lengths and not _DIGITS.fullmatch(lengths[0]):
        raise BadRequest(400, "Content-Length is not a number")
    if chunked and lengths:
        raise BadRequest(400, "both Transfer-Encoding and Content-Length")
    length = int(lengths[0]) if lengths else None
    return Head(method, target, version, headers, length, chunked)


def _request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise BadRequest(400, "malformed request line")
    if not _VERSION.fullmatch(parts[2]):
        if parts[2].startswith(b"HTTP/"):
            raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are served")
        raise BadRequest(400, "malformed request line")
    if not parts[1].startswith(b"/") or _NOT_VISIBLE.search(parts[1]):
        raise BadRequest(400, "the request target must be a path")
    return parts[0].decode("ascii"), parts[1].decode("ascii"), parts[2].decode("ascii")


def _header(line: bytes) -> tuple[str, str]:
    name, sep, value = line.partition(b":")
    if not sep or not _TOKEN.fullmatch(name):
        raise BadRequest(400, "malformed header field")
    text = value.strip(b" \t")
    if _CONTROL.search(text):
        raise BadRequest(400, "control character in a header value")
    return name.decode("ascii").lower(), text.decode("latin-1")


def to_request(head: Head, body: bytes) -> Request:
    url = urlsplit(head.target)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    return Request(head.method, url.path, query, head.headers, body, url.query)


def encode_response(resp: Response, *, close: bool, head_only: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}",
             f"Content-Type: {resp.content_type}", f"Content-Length: {len(resp.body)}",
             *(f"{k}: {v}" for k, v in resp.headers.items())]
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + resp.body
