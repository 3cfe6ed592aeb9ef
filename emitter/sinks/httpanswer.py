"""Reading HTTP/1.1 answers off one blocking socket for the lean transport: the status line,
the headers, and the body framed by Content-Length, the chunked coding or the connection's
end, with 1xx interim answers skipped and every part bounded.

Why not http.client's HTTPResponse: it builds a buffered file over the socket per answer and
parses the headers with email.parser, which together were half of the sender's CPU per event
(benchmarks/bench_daemon.py --profile). tests/test_httpanswer.py holds this reader equal to
http.client on the answers servers send, and to its refusals on the ones they must not.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

MAX_HEAD = 64 * 1024  # bytes of a status line and headers (Datadog's are under 1 KiB)
MAX_HEADERS = 100
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions
MAX_INTERIM = 16  # 1xx answers before the final one
RECV = 65536
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?")
# A field name (an RFC 9110 token). emitter.httpmsg has the request side's copy: importing it
# here would load `logging` into `emitter fire`'s start (tests/test_startup.py).
TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_NAME = re.compile(TOKEN)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_BLANK = b" \t"
HEAD = "answer's head"


class Malformed(Exception):
    """The bytes are not an HTTP/1.1 answer (or break one of the bounds above)."""


class Closed(Exception):
    """The connection ended before the answer did."""


class Headers:
    """An answer's headers by case-insensitive name; a repeated header's values are joined
    with ", " (RFC 9110 5.3), as http.client's `get` would not: it keeps the first."""

    __slots__ = ("_values",)

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            values[key] = f"{values[key]}, {value}" if key in values else value
        self._values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())


class Reader:
    """The bytes of one connection, buffered across the answers it carries."""

    __slots__ = ("_sock", "_buf")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    @property
    def idle(self) -> bool:
        """Nothing unread: a server that sent more than its answer is not reused."""
        return not self._buf

    def _fill(self) -> bool:
        data = self._sock.recv(RECV)
        if not data:
            return False
        self._buf += data
        return True

    def until(self, marker: bytes, limit: int, what: str) -> bytes:
        """The bytes up to and including `marker`, at most `limit` of them."""
        start = 0
        while True:
            end = self._buf.find(marker, start)
            if end >= 0:
                cut = end + len(marker)
                if cut > limit:
                    break
                data = bytes(self._buf[:cut])
                del self._buf[:cut]
                return data
            if len(self._buf) > limit:
                break
            start = max(0, len(self._buf) - len(marker) + 1)
            if not self._fill():
                # Worded as http.client words it, so both sessions report it alike.
                raise Closed("Remote end closed connection without response" if not self._buf
                             and what == HEAD else f"the connection closed in the {what}")
        raise Malformed(f"the {what} is over {limit} bytes")

    def some(self, most: int) -> bytes:
        """Up to `most` bytes (at least one); b"" at the connection's end."""
        if not self._buf and not self._fill():
            return b""
        data = bytes(self._buf[:most])
        del self._buf[:most]
        return data


class Answer:
    """One answer's status and headers, read; its body is read through `body()`."""

    __slots__ = ("status", "headers", "keep_alive", "done", "_reader", "_left", "_chunked")

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        for _ in range(MAX_INTERIM + 1):
            version, status, pairs = _head(reader.until(b"\r\n\r\n", MAX_HEAD, HEAD))
            if not 100 <= status < 200:
                break
        else:
            raise Malformed(f"more than {MAX_INTERIM} interim (1xx) answers")
        self.status = status
        self.headers = Headers(pairs)
        connection = (self.headers.get("connection") or "").lower()
        self.keep_alive = ("close" not in connection if version == b"1"
                           else "keep-alive" in connection)
        self._chunked = False
        self._left: int | None = 0  # body bytes still to read; None: until the end
        self.done = False
        self._frame(status)

    def _frame(self, status: int) -> None:
        coding = self.headers.get("transfer-encoding")
        length = self.headers.get("content-length")
        if status in (204, 304):
            self.done = True
        elif coding is not None:
            if coding.strip().lower().rsplit(",", 1)[-1].strip() != "chunked":
                self._left, self.keep_alive = None, False  # framed by the connection's end
            else:
                self._chunked, self._left = True, 0
        elif length is not None:
            self._left = _length(length)
            self.done = self._left == 0
        else:
            self._left, self.keep_alive = None, False

    def body(self, most: int) -> Iterator[bytes]:
        """The body in pieces of at most `most` bytes; Closed when it is cut short."""
        while not self.done:
            if self._chunked and not self._left:
                self._next_chunk()
                continue
            want = most if self._left is None else min(most, self._left)
            data = self._reader.some(want)
            if not data:
                if self._left is None:
                    self.done = True
                    return
                raise Closed("the connection closed in the answer's body")
            if self._left is not None:
                self._left -= len(data)
                if not self._left and not self._chunked:
                    self.done = True
                elif not self._left:
                    self._end_of_chunk()
            yield data

    def _next_chunk(self) -> None:
        line = self._reader.until(b"\r\n", MAX_CHUNK_LINE, "chunk size")[:-2]
        size = line.split(b";", 1)[0].strip(_BLANK)
        if not _HEX.fullmatch(size):
            raise Malformed(f"not a chunk size: {bytes(line[:40])!r}")
        self._left = int(size, 16)
        if self._left == 0:  # the last chunk: trailers (ignored) up to an empty line
            while self._reader.until(b"\r\n", MAX_HEAD, "trailers") != b"\r\n":
                pass
            self.done = True

    def _end_of_chunk(self) -> None:
        if self._reader.until(b"\r\n", 2, "chunk's end") != b"\r\n":
            raise Malformed("a chunk is longer than its size")


_FIELDS = re.compile(rb"(?:" + TOKEN + rb":[^\r\n]*\r\n)*")
_FIELD = re.compile(rb"(" + TOKEN + rb"):([^\r\n]*)\r\n")


def _head(data: bytes) -> tuple[bytes, int, list[tuple[str, str]]]:
    """(minor version, status, header pairs) of a head ending in CRLF CRLF. Plain field
    lines (the usual case) are read by two regex passes; anything else (an obs-fold, a bare
    CR, a malformed line) by the line-by-line reading below, which gives the same pairs."""
    cut = data.find(b"\r\n")
    found = _STATUS.fullmatch(data, 0, cut)
    block = data[cut + 2:-2]
    if found is not None and _FIELDS.fullmatch(block) and block.count(b"\n") <= MAX_HEADERS:
        pairs = [(name.decode("ascii"), value.strip(_BLANK).decode("latin-1"))
                 for name, value in _FIELD.findall(block)]
        return found.group(1), int(found.group(2)), pairs
    return _head_by_lines(data)


def _head_by_lines(data: bytes) -> tuple[bytes, int, list[tuple[str, str]]]:
    lines = data[:-4].split(b"\r\n")
    found = _STATUS.fullmatch(lines[0])
    if found is None:
        raise Malformed(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise Malformed(f"more than {MAX_HEADERS} header lines")
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and pairs:  # obs-fold: a continuation, read as one space
            more = line.strip(_BLANK).decode("latin-1")
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]} {more}".strip())
            continue
        name, sep, value = line.partition(b":")
        if not sep or not _NAME.fullmatch(name):
            raise Malformed(f"not a header line: {line[:40]!r}")
        pairs.append((name.decode("ascii"), value.strip(_BLANK).decode("latin-1")))
    return found.group(1), int(found.group(2)), pairs


def _length(value: str) -> int:
    """Content-Length; repeated equal values (a proxy's doing) are one, others malformed."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values)).encode()):
        raise Malformed(f"not a Content-Length: {value[:40]!r}")
    return int(values.pop())
