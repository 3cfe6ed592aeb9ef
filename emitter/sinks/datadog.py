"""The Datadog HTTP sink: one keep-alive session, one attempt per `send`, answers classified
into DELIVERED / RETRY / REJECTED. Retrying is `emitter.delivery.retry`'s job, not this module's.

The session is emitter's lean transport (emitter.sinks.transport) unless a proxy may apply,
then a requests session: `import requests` costs a short-lived `emitter fire` more than all
of its own work, so requests is imported only on the proxy path. Network failures of both
kinds are classified here, the same way (tests/test_transport.py compares them).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from emitter import __version__
from emitter.settings import Settings
from emitter.sinks.base import DeliveryResult, Outcome

if TYPE_CHECKING:
    import requests  # imported only when a proxy may apply (see open_session)

    from emitter.events.encode import Encoded
    from emitter.sinks import transport  # imported with the first sink only

MAX_ANSWER = 64 * 1024  # bytes of an answer we read; Datadog's are a few hundred
# Requests one sender worker may have in flight at once, each on its own keep-alive connection
# (`send_many`): the API answers one event per request, so with Datadog tens of milliseconds
# away it is requests in flight, not CPU, that bound an emitter's rate. The window starts at
# one, doubles after each batch answered without a transient failure and falls back to one
# on a 429, a 5xx or no answer, so a rate-limited or failing intake sees one request per
# worker at a time (as before fan-out), and a healthy one the whole window within a few batches.
FANOUT = 16
_EXCERPT = 200


def user_agent() -> str:
    """The User-Agent of every request to Datadog, in the form Datadog's own clients send:
    `emitter/<version> (python <v>; os <os>; arch <arch>)`. The one definition: DatadogSink
    puts it in the headers it hands to either session (lean transport or requests)."""
    import platform  # os.uname and a regex over sys.version, read once per sink

    return (f"emitter/{__version__} (python {platform.python_version()}; "
            f"os {platform.system().lower()}; arch {platform.machine()})")

class _Headers(Protocol):
    def get(self, name: str, /) -> Any: ...


class _Answer(Protocol):
    """What the sink reads of an answer (requests.Response and transport.Answer both)."""

    status_code: int

    @property
    def headers(self) -> _Headers: ...

    def iter_content(self, chunk_size: int) -> Iterator[bytes]: ...

    def close(self) -> None: ...


def open_session(base_url: str) -> transport.KeepAliveSession | requests.Session:
    """The HTTP session for one Datadog sink, with the environment read once, at startup.

    No proxy applying to `base_url`: the lean keep-alive transport, a quarter of requests'
    CPU per POST and no `import requests`. HTTPS_PROXY/HTTP_PROXY/ALL_PROXY applying (as
    requests decides, NO_PROXY included): a requests session with those proxies fixed.
    Either way REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE name the trusted CAs (else certifi's, as
    requests); ~/.netrc is not read (Datadog authenticates by header, not basic auth).
    """
    from emitter.sinks import transport

    bundle = transport.environ_ca_bundle(os.environ)
    if not transport.may_need_proxy(base_url, os.environ):
        return transport.KeepAliveSession(base_url, ca_bundle=bundle)
    import requests
    from requests.utils import get_environ_proxies, select_proxy

    proxies = get_environ_proxies(base_url)
    if not select_proxy(base_url, proxies):
        return transport.KeepAliveSession(base_url, ca_bundle=bundle)
    session = requests.Session()
    session.trust_env = False  # else proxies and .netrc are looked up again on every request
    session.proxies.update(proxies)
    if bundle:
        session.verify = bundle
    return session


class _Failures(NamedTuple):
    """The exception types of a network failure, by kind (most specific first)."""

    connect_timeout: tuple[type[BaseException], ...]
    timeout: tuple[type[BaseException], ...]
    any: tuple[type[BaseException], ...]


def _failures() -> _Failures:
    """The transport's failure types, plus requests' when it is loaded: only a requests
    session raises those, and it cannot exist without requests being imported."""
    from emitter.sinks import transport

    kinds = _Failures((transport.ConnectTimeout,), (transport.TransportTimeout,),
                      (transport.TransportError,))
    requests = sys.modules.get("requests")
    if requests is None:
        return kinds
    return _Failures(kinds.connect_timeout + (requests.ConnectTimeout,),
                     kinds.timeout + (requests.Timeout,),
                     kinds.any + (requests.RequestException,))


class DatadogSink:
    """POST events to `<base_url>/api/v1/events` with the `DD-API-KEY` header.

    `session` defaults to `open_session(settings.base_url)` (the environment's choice).
    """

    name = "datadog"

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float | tuple[float, float] = (3.05, 10),
        session: transport.KeepAliveSession | requests.Session | None = None,
    ) -> None:
        key = settings.require_api_key()
        self._secret = key.reveal()
        self._url = settings.events_url
        self._timeout = timeout
        self._timeouts = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._session = session if session is not None else open_session(settings.base_url)
        self._failures = _failures()
        from emitter.sinks import transport

        self._lean = isinstance(self._session, transport.KeepAliveSession)
        # The extra connections of `send_many`: lean sessions only, and only ours.
        self.max_fanout = FANOUT if self._lean and session is None else 1
        self.fanout = 1  # the window now (see FANOUT)
        self._pool: list[transport.KeepAliveSession] = (
            [self._session] if self.max_fanout > 1 else [])  # type: ignore[list-item]
        self._headers = {
            "DD-API-KEY": self._secret,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent(),
        }

    def __repr__(self) -> str:
        return f"DatadogSink(url={self._url!r})"

    def close(self) -> None:
        self._session.close()
        for session in self._pool:
            session.close()

    def send(self, event: Encoded, *, budget: float | None = None) -> DeliveryResult:
        """Exactly one attempt, posting `event.body` as is; never raises for network trouble
        (that is a RETRY result). `budget` bounds the whole attempt (the lean transport
        enforces it over the answer's body too; behind a proxy it caps each wait)."""
        timeouts = self._timeouts
        extra: dict[str, Any] = {}
        if budget is not None:
            budget = max(budget, 0.001)
            timeouts = (min(timeouts[0], budget), min(timeouts[1], budget))
            if self._lean:
                extra["budget"] = budget
        return self._complete(lambda: self._session.post(
            self._url,
            data=event.body,
            headers=self._headers,
            timeout=timeouts if budget is not None else self._timeout,
            allow_redirects=False,  # a redirect would carry the key to another host
            stream=True,  # read a bounded amount of the answer ourselves
            **extra,
        ), timeouts)

    def send_many(self, events: Sequence[Encoded]) -> list[DeliveryResult]:
        """One attempt for each of `events`, up to `fanout` of them in flight at once on
        their own connections: every request is sent, then the answers are read in order.
        Results are in the order of `events`; never raises for network trouble."""
        if len(events) <= 1 or self.max_fanout <= 1:
            return self._adapt([self.send(event) for event in events])

        results: list[DeliveryResult] = []
        for start in range(0, len(events), self.max_fanout):
            part = events[start:start + self.max_fanout]
            while len(self._pool) < len(part):
                self._pool.append(self._pool[0].sibling())
            sessions = self._pool[:len(part)]
            sent: list[transport.Sent | BaseException] = []
            for session, event in zip(sessions, part, strict=True):
                try:
                    sent.append(session.send_request(self._url, data=event.body,
                                                     headers=self._headers, timeout=self._timeout))
                except self._failures.any as exc:
                    sent.append(exc)
            until = time.monotonic() + self._timeouts[1]  # one read timeout for them all
            results += [self._answer(session, handle, until)
                        for session, handle in zip(sessions, sent, strict=True)]
        return self._adapt(results)

    def _adapt(self, results: list[DeliveryResult]) -> list[DeliveryResult]:
        """Move the window (see FANOUT) by how this batch was answered."""
        if any(r.outcome is Outcome.RETRY for r in results):
            self.fanout = 1
        else:
            self.fanout = min(self.max_fanout, self.fanout * 2)
        return results

    def _answer(self, session: transport.KeepAliveSession,
                handle: transport.Sent | BaseException, until: float) -> DeliveryResult:
        if isinstance(handle, BaseException):  # the request could not be sent
            return self._transient(self._network_reason(handle, self._timeouts))
        return self._complete(lambda: session.read_answer(handle, until=until), self._timeouts)

    def _complete(self, answer: Callable[[], _Answer],
                  timeouts: tuple[float, float]) -> DeliveryResult:
        """Take `answer()`, read a bounded amount of its body and classify it; a network
        failure on the way is a RETRY result."""
        try:
            response = answer()
            try:
                body = _read_bounded(response)
            finally:
                response.close()
        except self._failures.any as exc:
            return self._transient(self._network_reason(exc, timeouts))
        return self._classify(response.status_code, response.headers, body)

    def _network_reason(self, exc: BaseException, timeouts: tuple[float, float]) -> str:
        if isinstance(exc, self._failures.connect_timeout):
            return f"could not connect within {timeouts[0]:g}s"
        if isinstance(exc, self._failures.timeout):
            return f"no answer within {timeouts[1]:g}s"
        return f"connection failed: {self._reason(exc)}"

    # ---- classification -----------------------------------------------------------------

    def _classify(self, status: int, headers: _Headers, body: bytes) -> DeliveryResult:
        parsed = _parse_json(body)
        if status == 202:
            return _accepted(parsed, self._url)
        errors = self._errors(parsed, body, status)
        detail = f"HTTP {status} from {self._url}: {'; '.join(errors)}"
        if status in (408, 429) or 500 <= status <= 599:
            wait = _retry_after(headers) if status in (429, 503) else None
            return DeliveryResult(Outcome.RETRY, status, errors=errors, retry_after=wait,
                                  detail=detail)
        return DeliveryResult(Outcome.REJECTED, status, errors=errors, detail=detail)

    def _errors(self, parsed: Any, body: bytes, status: int) -> tuple[str, ...]:
        """The API's `errors` list (whatever the content type), else a short body excerpt."""
        found = parsed.get("errors") if isinstance(parsed, dict) else None
        if isinstance(found, str):
            found = [found]
        if isinstance(found, list) and found:
            return tuple(self._redact(str(e))[:_EXCERPT * 2] for e in found[:20])
        text = " ".join(body.decode("utf-8", "replace").split())
        if not text:
            return (f"HTTP {status} with an empty body",)
        cut = "..." if len(text) > _EXCERPT else ""
        return (self._redact(text[:_EXCERPT]) + cut,)

    def _transient(self, why: str) -> DeliveryResult:
        return DeliveryResult(Outcome.RETRY, None, errors=(why,), detail=f"{self._url}: {why}")

    def _reason(self, exc: BaseException) -> str:
        return self._redact(_innermost_reason(exc))

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "****") if self._secret else text


def _read_bounded(response: _Answer) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(8192):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER:
            break
    return b"".join(chunks)[:MAX_ANSWER]


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:  # includes UnicodeDecodeError
        return None


def _accepted(parsed: Any, url: str) -> DeliveryResult:
    event = parsed.get("event") if isinstance(parsed, dict) else None
    if not isinstance(event, dict):
        return DeliveryResult(Outcome.DELIVERED, 202, detail=f"202 from {url} without an event")
    event_id = event.get("id_str")
    if not isinstance(event_id, str):  # json.loads keeps integers exact: never via float
        raw = event.get("id")
        event_id = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else None
    link = event.get("url") if isinstance(event.get("url"), str) else None
    return DeliveryResult(Outcome.DELIVERED, 202, event_id=event_id, url=link,
                          detail=f"202 from {url}: event {event_id}")


def _retry_after(headers: _Headers) -> float | None:
    """Seconds to wait: X-RateLimit-Reset (seconds until the window resets), else
    Retry-After (seconds or an HTTP date). None when neither is usable."""
    for name in ("X-RateLimit-Reset", "Retry-After"):
        value = (headers.get(name) or "").strip()
        if not value:
            continue
        seconds: float | None
        try:
            seconds = float(value)
        except ValueError:
            seconds = _seconds_until(value)
        if seconds is not None and seconds == seconds and seconds != float("inf"):
            return max(seconds, 0.0)
    return None


def _seconds_until(http_date: str) -> float | None:
    from email.utils import parsedate_to_datetime  # rare path; keeps start-up lean

    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - time.time()


_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")


def _innermost_reason(exc: BaseException) -> str:
    """A short reason from nested exceptions (requests' embed whole URLs and reprs; the
    transport's wrap the OSError or http.client error that caused them)."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        if not isinstance(inner, BaseException):
            inner = current.__cause__ or current.__context__
        if not isinstance(inner, BaseException):
            break
        current = inner
    if isinstance(current, OSError) and current.strerror:
        text = current.strerror
    else:
        text = str(current) or type(current).__name__
        text = text.split(": ", 1)[1] if text.startswith("<") and ": " in text else text
    text = _ERRNO.sub("", text).strip().rstrip(")'\"")
    return text[:_EXCERPT] or type(current).__name__
