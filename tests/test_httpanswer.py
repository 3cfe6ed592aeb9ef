"""The lean transport's answer reader against http.client, over real sockets: the same status,
headers, body and keep-alive decision on every answer a server may send (in any segmentation
on the wire), and a refusal on the ones it must not."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from emitter.sinks import httpanswer

NAMES = ["Content-Type", "X-RateLimit-Reset", "Retry-After", "DD-Request-ID", "Server"]


def _serve(data: bytes, cuts: list[int]) -> socket.socket:
    """A connected socket whose peer sends `data` cut at `cuts`, then closes."""
    ours, theirs = socket.socketpair()

    def send() -> None:
        last = 0
        try:
            for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
                theirs.sendall(data[last:cut] if cut > last else b"")
                last = max(last, cut)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader had its answer (or refused it) and closed before the last bytes
        finally:
            theirs.close()

    threading.Thread(target=send, daemon=True).start()
    ours.settimeout(5)
    return ours


def lean(data: bytes, cuts: list[int] = []) -> tuple[int, dict[str, str | None], bytes, bool]:  # noqa: B006
    sock = _serve(data, cuts)
    try:
        answer = httpanswer.Answer(httpanswer.Reader(sock))
        body = b"".join(answer.body(7))
        return answer.status, {n: answer.headers.get(n) for n in NAMES}, body, answer.keep_alive
    finally:
        sock.close()


def stdlib(data: bytes) -> tuple[int, dict[str, str | None], bytes, bool]:
    sock = _serve(data, [])
    try:
        resp = http.client.HTTPResponse(sock, method="POST")
        resp.begin()
        body = resp.read()
        return resp.status, {n: resp.getheader(n) for n in NAMES}, body, not resp.will_close
    finally:
        sock.close()


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, at = b"", 0
    for size in sizes:
        piece = body[at:at + size]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
            at += len(piece)
    if at < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - at, body[at:])
    return out + b"0\r\n\r\n"


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from([200, 202, 400, 403, 408, 429, 500, 503]))
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    headers = [(draw(st.sampled_from(NAMES)).encode(), draw(
        st.text("abcXYZ019 -:/.", max_size=20)).strip().encode()) for _ in range(
        draw(st.integers(0, 5)))]
    headers = [(n if draw(st.booleans()) else n.lower(), v) for n, v in headers]
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if framing == "length":
        headers.append((b"Content-Length", str(len(body)).encode()))
        payload = body
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b"chunked"))
        payload = chunked(body, draw(st.lists(st.integers(1, 64), max_size=6)))
    else:
        payload = body
    if draw(st.booleans()):
        headers.append((b"Connection", draw(st.sampled_from([b"close", b"keep-alive"]))))
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if draw(st.booleans()) else b""
    head = b"HTTP/%s %d Whatever\r\n" % (version, status)
    head += b"".join(b"%s: %s\r\n" % (n, v) for n, v in headers)
    return interim + head + b"\r\n" + payload


@hsettings(max_examples=150, deadline=None)
@given(data=answers(), cuts=st.lists(st.integers(0, 2000), max_size=5))
def test_same_reading_as_http_client(data: bytes, cuts: list[int]) -> None:
    ours, theirs = lean(data, cuts), stdlib(data)
    assert ours[0] == theirs[0] and ours[2] == theirs[2] and ours[3] == theirs[3]
    for name in NAMES:  # http.client joins repeated headers too (getheader)
        assert ours[1][name] == theirs[1][name]


def test_a_datadog_answer() -> None:
    body = b'{"status":"ok","event":{"id":1,"id_str":"1"}}'
    data = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nX-RateLimit-Reset: 7\r\n\r\n%s" % (len(body), body))
    status, headers, got, keep = lean(data, [1, 5, 30])
    assert (status, got, keep) == (202, body, True)
    assert headers["X-RateLimit-Reset"] == "7" and headers["Content-Type"] == "application/json"


def test_two_answers_on_one_connection() -> None:
    one = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"
    sock = _serve(one + one.replace(b"202 Accepted", b"429 Too Many"), [3])
    reader = httpanswer.Reader(sock)
    first = httpanswer.Answer(reader)
    assert b"".join(first.body(100)) == b"ok" and first.done
    second = httpanswer.Answer(reader)
    assert second.status == 429 and b"".join(second.body(100)) == b"ok" and reader.idle
    sock.close()


@pytest.mark.parametrize(("data", "kind"), [
    (b"", httpanswer.Closed),  # http.client: RemoteDisconnected
    (b"HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nshort", httpanswer.Closed),
    (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", httpanswer.Closed),
    (b"SMTP ready\r\n\r\n", httpanswer.Malformed),
    (b"HTTP/1.1 2x2 Accepted\r\n\r\n", httpanswer.Malformed),
    (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", httpanswer.Malformed),
    (b"HTTP/1.1 202 Accepted\r\nX: " + b"y" * (70 * 1024) + b"\r\n\r\n", httpanswer.Malformed),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 20, httpanswer.Malformed),
])
def test_refused_like_http_client(data: bytes, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        lean(data)
    with pytest.raises((http.client.HTTPException, OSError)):
        stdlib(data)


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 202 Accepted\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 202 Accepted\r\nContent-Length: 1, 2\r\n\r\nab",
    b"HTTP/1.1 202 Accepted\r\nBad Header\r\n\r\n",
])
def test_ambiguous_framing_is_refused_where_http_client_guesses(data: bytes) -> None:
    """http.client reads these to the connection's end (or skips the line); we refuse them:
    a body whose end is in doubt must not decide what the next answer on the connection is."""
    stdlib(data)  # no exception: it guesses
    with pytest.raises(httpanswer.Malformed):
        lean(data)


def test_no_body_statuses_and_folded_headers() -> None:
    status, _, body, keep = lean(b"HTTP/1.1 204 No Content\r\nServer: a\r\n b\r\n\r\n")
    assert (status, body, keep) == (204, b"", True)
    assert lean(b"HTTP/1.1 204 No Content\r\nServer: a\r\n b\r\n\r\n")[1]["Server"] == "a b"


@hsettings(max_examples=300, deadline=None)
@given(lines=st.lists(st.one_of(
    st.tuples(st.sampled_from(["Content-Type", "x-a", "Retry-After", "bad name", ""]),
              st.text("ab 19:\t\r,;-", max_size=12)).map(lambda nv: f"{nv[0]}:{nv[1]}"),
    st.text(" \tab\r", min_size=1, max_size=6)), max_size=6))
def test_the_regex_head_reading_equals_the_line_by_line_one(lines: list[str]) -> None:
    data = ("HTTP/1.1 202 Accepted\r\n" + "".join(f"{line}\r\n" for line in lines)
            + "\r\n").encode("latin-1")

    def outcome(read: object) -> object:
        try:
            return read(data)  # type: ignore[operator]
        except httpanswer.Malformed:
            return "malformed"

    assert outcome(httpanswer._head) == outcome(httpanswer._head_by_lines)
