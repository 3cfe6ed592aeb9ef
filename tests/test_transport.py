"""DatadogSink over the lean keep-alive transport: every answer the intake can give, and every
network failure, is classified exactly as over a requests session; the transport is chosen only
when requests would use no proxy; TLS trusts exactly what requests trusts."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest
import requests
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from emitter.events.encode import Encoded
from emitter.settings import Settings
from emitter.sinks import transport
from emitter.sinks.base import DeliveryResult, Outcome
from emitter.sinks.datadog import DatadogSink, open_session, user_agent
from emitter.sinks.registry import make_sink
from emitter.sinks.transport import KeepAliveSession
from tests.intake import FIRST_EVENT_ID, INTAKE_KEY, FakeIntake, Fault
from tests.intake import intake_fixture as intake_fixture  # noqa: F401 - the `intake` fixture

EVENT = {"title": "Déployé", "text": "x"}
BODY = Encoded.of(EVENT)


@pytest.fixture
def settings(intake: FakeIntake) -> Settings:
    return Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url})


@pytest.fixture
def lean(settings: Settings) -> Iterator[DatadogSink]:
    sink = DatadogSink(settings, timeout=(1, 0.5),
                       session=KeepAliveSession(settings.base_url))
    yield sink
    sink.close()


@pytest.fixture
def classic(settings: Settings) -> Iterator[DatadogSink]:
    sink = DatadogSink(settings, timeout=(1, 0.5), session=requests.Session())
    yield sink
    sink.close()


def same(a: DeliveryResult, b: DeliveryResult) -> tuple[object, ...]:
    assert (a.outcome, a.status, a.errors) == (b.outcome, b.status, b.errors)
    assert a.retry_after == b.retry_after
    return (a.outcome, a.status)


def test_registry_uses_it_without_a_proxy(settings: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sink = make_sink("datadog", settings)
    assert isinstance(sink._session, KeepAliveSession)  # type: ignore[attr-defined]
    sink.close()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    sink = make_sink("datadog", settings)
    assert not isinstance(sink._session, KeepAliveSession)  # type: ignore[attr-defined]
    sink.close()


def test_accepted_keeps_the_big_id(lean: DatadogSink, intake: FakeIntake) -> None:
    result = lean.send(BODY)
    assert result.outcome is Outcome.DELIVERED and result.event_id == str(FIRST_EVENT_ID)
    assert intake.events == [EVENT]
    assert intake.requests[0].header("dd-api-key") == INTAKE_KEY


@pytest.mark.parametrize("fault", [
    Fault.reject(400, "Event too far in the past", content_type="text/plain"),
    Fault.reject(403, "Forbidden"),
    Fault.error(503),
    Fault.error(408, "Request Timeout"),
    Fault.rate_limited(reset=7),
    Fault.rate_limited(reset=None, retry_after=3),
], ids=["400-text", "403", "503", "408", "429-reset", "429-retry-after"])
def test_answers_classified_like_requests(lean: DatadogSink, classic: DatadogSink,
                                          intake: FakeIntake, fault: Fault) -> None:
    intake.enqueue(fault, fault)
    same(lean.send(BODY), classic.send(BODY))
    assert lean.send(BODY).outcome is Outcome.DELIVERED  # the connection is still usable


def test_both_sessions_send_the_user_agent(lean: DatadogSink, classic: DatadogSink,
                                           intake: FakeIntake) -> None:
    lean.send(BODY)
    classic.send(BODY)
    agents = [r.header("User-Agent") for r in intake.requests]
    assert agents == [user_agent(), user_agent()]  # requests' own default never shows
    assert agents[0] is not None and agents[0].startswith("emitter/") and "; arch " in agents[0]


def test_no_answer_is_retry(lean: DatadogSink, intake: FakeIntake) -> None:
    intake.enqueue(Fault.dropped())
    dropped = lean.send(BODY)
    assert dropped.outcome is Outcome.RETRY and dropped.status is None
    intake.enqueue(Fault.slow(2))
    slow = lean.send(BODY)
    assert slow.outcome is Outcome.RETRY and "no answer within 0.5s" in slow.errors[0]
    assert lean.send(BODY).outcome is Outcome.DELIVERED  # a fresh connection after both


def test_intake_down_then_up_reconnects(lean: DatadogSink, intake: FakeIntake) -> None:
    assert lean.send(BODY).outcome is Outcome.DELIVERED
    intake.down()  # closes the idle keep-alive connection too
    refused = lean.send(BODY)
    assert refused.outcome is Outcome.RETRY and "refused" in refused.errors[0].lower()
    intake.up()
    assert lean.send(BODY).outcome is Outcome.DELIVERED
    assert len(intake.events) == 2


def test_key_never_in_errors(lean: DatadogSink, intake: FakeIntake) -> None:
    intake.down()
    result = lean.send(BODY)
    assert INTAKE_KEY not in repr(result) and INTAKE_KEY not in repr(lean)


def test_header_injection_is_refused() -> None:
    from emitter.sinks.transport import _request

    assert _request("/p", "h:1", {"A": "b"}, b"{}") == (
        b"POST /p HTTP/1.1\r\nHost: h:1\r\nA: b\r\nContent-Length: 2\r\n\r\n{}")
    for bad in ("x\r\nEvil: 1", "x\nEvil: 1", "x\rEvil"):
        with pytest.raises(ValueError, match="line break"):
            _request("/p", "h", {"A": bad}, b"")


# ---- network failures: the transport's own exceptions, classified as requests' are -------


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A base URL whose listener never accepts and whose backlog is full: connects hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = socket.create_connection(("127.0.0.1", port), 1)  # fills the one backlog slot
    yield f"http://127.0.0.1:{port}"
    held.close()
    server.close()


def test_connect_timeout_classified_like_requests(full_backlog: str) -> None:
    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": full_backlog})
    lean = DatadogSink(settings, timeout=(0.3, 1), session=KeepAliveSession(full_backlog))
    classic = DatadogSink(settings, timeout=(0.3, 1), session=requests.Session())
    a, b = lean.send(BODY), classic.send(BODY)
    same(a, b)
    assert a.outcome is Outcome.RETRY and a.errors == ("could not connect within 0.3s",)


@pytest.mark.parametrize("failure", ["refused", "dropped", "slow"])
def test_network_failures_classified_like_requests(lean: DatadogSink, classic: DatadogSink,
                                                   intake: FakeIntake, failure: str) -> None:
    if failure == "refused":
        intake.down()
    else:
        fault = Fault.dropped() if failure == "dropped" else Fault.slow(1.5)
        intake.enqueue(fault, fault)
    a, b = lean.send(BODY), classic.send(BODY)
    same(a, b)
    assert a.outcome is Outcome.RETRY and a.status is None
    expected = {"refused": "Connection refused", "dropped": "closed connection",
                "slow": "no answer within 0.5s"}[failure]
    assert expected in a.errors[0]


class _Raising:
    """A session seam that fails every post with one exception."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def post(self, *args: object, **kwargs: object) -> object:
        raise self.exc

    def close(self) -> None:
        pass


def _result(settings: Settings, exc: Exception) -> DeliveryResult:
    sink = DatadogSink(settings, timeout=(2, 3), session=_Raising(exc))  # type: ignore[arg-type]
    return sink.send(BODY)


@pytest.mark.parametrize(("ours", "theirs", "expected"), [
    (transport.ConnectTimeout(TimeoutError("timed out")),
     requests.ConnectTimeout(TimeoutError("timed out")), "could not connect within 2s"),
    (transport.ReadTimeout(TimeoutError("timed out")),
     requests.ReadTimeout(TimeoutError("timed out")), "no answer within 3s"),
    (transport.ConnectError(ConnectionRefusedError(111, "Connection refused")),
     requests.ConnectionError(ConnectionRefusedError(111, "Connection refused")),
     "connection failed: Connection refused"),
    (transport.ProtocolError(ConnectionResetError(104, "Connection reset by peer")),
     requests.exceptions.ChunkedEncodingError(ConnectionResetError(104, "Connection reset")),
     "connection failed: Connection reset"),
], ids=["connect-timeout", "read-timeout", "connect-error", "protocol-error"])
def test_exception_types_classified_alike(settings: Settings, ours: Exception,
                                          theirs: Exception, expected: str) -> None:
    a, b = _result(settings, ours), _result(settings, theirs)
    assert (a.outcome, a.status, a.retry_after) == (b.outcome, b.status, b.retry_after)
    assert a.outcome is Outcome.RETRY and a.errors[0].startswith(expected)
    assert b.errors[0].startswith(expected)


def test_other_exceptions_are_not_network_failures(settings: Settings) -> None:
    with pytest.raises(ValueError, match="not a network failure"):
        _result(settings, ValueError("not a network failure"))


def test_transport_timeouts_are_connect_or_read() -> None:
    assert issubclass(transport.ConnectTimeout, transport.ConnectError)
    assert issubclass(transport.ConnectTimeout, transport.TransportTimeout)
    assert issubclass(transport.ReadTimeout, transport.TransportTimeout)
    assert not issubclass(transport.ProtocolError, transport.ConnectError)


# ---- the lean transport only where requests would use no proxy --------------------------

_PROXY = "http://proxy.invalid:3128"
_PROXY_NAMES = ["HTTPS_PROXY", "https_proxy", "Https_Proxy", "HTTP_PROXY", "http_proxy",
                "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"]
_VALUES = ["", _PROXY, "api.datadoghq.com", ".datadoghq.com", "*", "127.0.0.1", "GET"]
_URLS = ["https://api.datadoghq.com", "https://api.datadoghq.eu", "http://127.0.0.1:8126"]


def _requests_proxy(url: str) -> str | None:
    from requests.utils import get_environ_proxies, select_proxy

    return select_proxy(url, get_environ_proxies(url))


@settings_(max_examples=150, deadline=None)
@given(env=st.dictionaries(st.sampled_from(_PROXY_NAMES), st.sampled_from(_VALUES), max_size=4),
       url=st.sampled_from(_URLS))
def test_lean_only_when_requests_uses_no_proxy(env: dict[str, str], url: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    clean.pop("REQUEST_METHOD", None)
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        expected = _requests_proxy(url)
        if not transport.may_need_proxy(url, os.environ):
            assert expected is None
        session = open_session(url)
        session.close()
    assert isinstance(session, KeepAliveSession) == (expected is None)


@pytest.mark.parametrize(("env", "url", "lean"), [
    ({}, "https://api.datadoghq.com", True),
    ({"https_proxy": _PROXY}, "https://api.datadoghq.com", False),
    ({"ALL_PROXY": _PROXY}, "https://api.datadoghq.com", False),
    ({"HTTP_PROXY": _PROXY}, "https://api.datadoghq.com", True),  # not for https
    ({"HTTP_PROXY": _PROXY}, "http://127.0.0.1:8126", False),
    ({"HTTPS_PROXY": _PROXY, "NO_PROXY": ".datadoghq.com"}, "https://api.datadoghq.com", True),
    ({"HTTPS_PROXY": ""}, "https://api.datadoghq.com", True),
])
def test_proxy_examples(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str,
                        lean: bool) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = open_session(url)
    session.close()
    assert isinstance(session, KeepAliveSession) is lean
    if not lean:
        assert isinstance(session, requests.Session) and session.proxies


# ---- TLS: certificates and host names verified as requests verifies them ------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA and a certificate for `localhost` signed by it (and a hashed CA dir)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=emitter test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost",
             cwd=d)
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "cadir").mkdir()
    shutil.copy(d / "ca.pem", d / "cadir" / "ca.pem")
    _openssl("rehash", "cadir", cwd=d)
    return d


class _Accepting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"status":"ok","event":{"id":1,"id_str":"1","url":"u"}}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def tls_port(pki: Path) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "srv.pem", pki / "srv.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _tls_results(base_url: str) -> tuple[DeliveryResult, DeliveryResult]:
    """(lean, requests) results, each session built from the environment as before."""
    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": base_url})
    results = []
    for session in (open_session(base_url), requests.Session()):
        sink = DatadogSink(settings, timeout=(2, 2), session=session)
        results.append(sink.send(BODY))
        sink.close()
    return results[0], results[1]


@pytest.mark.parametrize("bundle", ["ca.pem", "cadir"])
def test_tls_trusts_the_ca_bundle_from_the_environment(pki: Path, tls_port: int, bundle: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki / bundle))
    lean, classic = _tls_results(f"https://localhost:{tls_port}")
    assert (lean.outcome, lean.event_id) == (classic.outcome, classic.event_id)
    assert lean.outcome is Outcome.DELIVERED and lean.event_id == "1"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", str(pki / bundle))
    assert _tls_results(f"https://localhost:{tls_port}")[0].outcome is Outcome.DELIVERED


def test_tls_refuses_an_unknown_ca(tls_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    lean, classic = _tls_results(f"https://localhost:{tls_port}")
    same(lean, classic)
    assert lean.outcome is Outcome.RETRY and "certificate verify failed" in lean.errors[0]


def test_tls_refuses_a_wrong_host_name(pki: Path, tls_port: int,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki / "ca.pem"))
    lean, classic = _tls_results(f"https://127.0.0.1:{tls_port}")  # the cert says localhost
    same(lean, classic)
    assert lean.outcome is Outcome.RETRY and "certificate verify failed" in lean.errors[0]
    assert "127.0.0.1" in lean.errors[0]


def test_default_trust_is_certifis_bundle() -> None:
    import certifi

    assert transport.default_ca() == certifi.where()
