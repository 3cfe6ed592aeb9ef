"""Bounded fuzzing of the webhook request parser (issue 9): raw bytes fed to the head parser
and sent over a real socket always get an HTTP answer, never an internal error or a hang.
The crash inputs of issue 9 item 8 are the seed examples. A longer run by hand:
`HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/test_http_fuzz.py`."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emitter.httpmsg import BadRequest, Limits, parse_head, to_request
from tests.test_http_front import DEEP, HUGE_NUMBER, TOKEN, Front_, answer_of, post_bytes

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
SEEDS = [
    post_bytes(b"{}", "Content-Length: ²".encode(), token=False),
    post_bytes(b"{}", b"Content-Length: 2", b"Content-Length: 2"),
    post_bytes(DEEP, f"Content-Length: {len(DEEP)}".encode()),
    post_bytes(HUGE_NUMBER, f"Content-Length: {len(HUGE_NUMBER)}".encode()),
]

_names = st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"Connection", b"Host",
                          b"X-Emitter-Token", b"content-length", b"Bad Name", b""])
_values = st.one_of(st.sampled_from([b"2", "²".encode(), b"-1", b"1, 1", b"chunked", b"close",
                                     TOKEN.encode(), b"9" * 30]), st.binary(max_size=20))
_header = st.builds(lambda n, v, sep: n + sep + v, _names, _values,
                    st.sampled_from([b": ", b":", b" : ", b""]))
_line = st.builds(lambda m, t, v: b" ".join([m, t, v]),
                  st.sampled_from([b"POST", b"GET", b"HEAD", b"PUT", b"P\x00ST", b""]),
                  st.sampled_from([b"/hooks/x", b"/healthz", b"/metrics", b"*", b"/x?a=%ff"]),
                  st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1\x00"]))
_bodies = st.one_of(st.sampled_from([b"{}", b"[" * 200, b'{"n": ' + b"1" * 5000 + b"}"]),
                    st.binary(max_size=64))
REQUESTS = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda line, headers, body, eol: eol.join([line, *headers]) + eol * 2 + body,
              _line, st.lists(_header, max_size=6), _bodies,
              st.sampled_from([b"\r\n", b"\n"])),
)


@settings(max_examples=5000 if LONG else 400, deadline=None)
@given(REQUESTS)
@example(SEEDS[0])
@example(SEEDS[1])
def test_the_head_parser_returns_a_head_or_a_bad_request(data: bytes) -> None:
    head_bytes = data.split(b"\r\n\r\n", 1)[0]
    try:
        head = parse_head(head_bytes)
    except BadRequest as exc:
        assert 400 <= exc.status < 600 and exc.message
        return
    to_request(head, b"")
    assert head.content_length is None or head.content_length >= 0


@pytest.fixture(scope="module")
def front() -> Iterator[Front_]:
    f = Front_(Limits(header_timeout=2, body_timeout=2, idle_timeout=1))
    yield f
    f.listener.stop()


@settings(max_examples=1000 if LONG else 60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(REQUESTS)
@example(SEEDS[0])
@example(SEEDS[1])
@example(SEEDS[2])
@example(SEEDS[3])
def test_any_bytes_on_a_real_socket_get_an_http_answer(front: Front_, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=30) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # answered (e.g. 413) and closed before everything was sent
            pass
        try:
            answer = answer_of(sock)
        except ConnectionResetError:
            answer = b"HTTP/1.1 "  # the answer was sent; our unsent bytes reset the line
    if not data.lstrip(b"\r\n"):
        assert answer == b""  # no request was started: nothing to answer
        return
    assert answer.startswith(b"HTTP/1.1 "), (data[:200], answer[:200])
    assert b"HTTP/1.1 500" not in answer
