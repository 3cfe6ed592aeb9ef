"""The dogstatsd sink: datagrams byte-identical to datadogpy's, the 8 KB limit, sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from datadog.dogstatsd.base import DogStatsd

from emitter.events.encode import Encoded
from emitter.sinks.base import Outcome
from emitter.sinks.dogstatsd import MAX_DATAGRAM, DogStatsdSink, format_event


@pytest.fixture
def agent() -> Iterator[socket.socket]:
    """A UDP socket on loopback standing in for the Agent's DogStatsD port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def datadogpy_datagram(agent: socket.socket, event: dict[str, Any]) -> bytes:
    """What datadogpy's DogStatsd.event() puts on the wire for `event`."""
    client = DogStatsd(host="127.0.0.1", port=agent.getsockname()[1], disable_telemetry=True,
                       disable_buffering=True, origin_detection_enabled=False)
    try:
        client.event(
            event["title"], event["text"], alert_type=event.get("alert_type"),
            aggregation_key=event.get("aggregation_key"),
            source_type_name=event.get("source_type_name"),
            date_happened=event.get("date_happened"), priority=event.get("priority"),
            tags=event.get("tags"), hostname=event.get("host"),
        )
        return agent.recv(65536)
    finally:
        client.close_socket()


def our_datagram(agent: socket.socket, event: dict[str, Any]) -> bytes:
    sink = DogStatsdSink("127.0.0.1", agent.getsockname()[1])
    try:
        result = sink.send(Encoded.of(event))
        assert result.outcome is Outcome.DELIVERED, result
        return agent.recv(65536)
    finally:
        sink.close()


EVENTS = [
    pytest.param({"title": "Déployé ✓ 日本語", "text": "ligne 1\nligne 2 — é\n\n%%%"},
                 id="non-ascii-multiline"),
    pytest.param({
        "title": "Deploy payments 1.4.2", "text": "%%% \n**payments** finished\n %%%",
        "date_happened": 1_700_000_000, "host": "web-1", "aggregation_key": "deploy-payments",
        "priority": "low", "source_type_name": "my_apps", "alert_type": "success",
        "tags": ["service:payments", "env:prod", "team:plat|form", "a b,c", "ünï:côdé"],
    }, id="every-field"),
    pytest.param({"title": "emoji 🚀🔥", "text": "🚀" * 50, "alert_type": "error"}, id="4-byte"),
]


@pytest.mark.parametrize("event", EVENTS)
def test_datagram_matches_datadogpy(agent: socket.socket, event: dict[str, Any]) -> None:
    ours = our_datagram(agent, event)
    assert ours == datadogpy_datagram(agent, event)
    assert b"\n" not in ours[:-1]  # newlines escaped: one datagram, one line


def test_lengths_are_utf8_bytes() -> None:
    datagram = format_event({"title": "é", "text": "日\n"})
    assert datagram == "_e{2,5}:é|日\\n\n".encode()


def test_over_8k_is_rejected_with_the_reason(agent: socket.socket) -> None:
    sink = DogStatsdSink("127.0.0.1", agent.getsockname()[1])
    # 4000 characters (the spec's limit) of 3-byte UTF-8: 12,000 bytes on the wire.
    result = sink.send(Encoded.of({"title": "big", "text": "€" * 4000}))
    assert result.outcome is Outcome.REJECTED
    assert f"over the Agent's {MAX_DATAGRAM}-byte limit" in result.errors[0]
    agent.settimeout(0.2)
    with pytest.raises(TimeoutError):
        agent.recv(65536)  # nothing was sent, not even a cut datagram
    sink.close()


def test_exactly_at_the_limit_is_sent(agent: socket.socket) -> None:
    head = len(b"_e{5,0000}:title|\n")
    event = {"title": "title", "text": "x" * (MAX_DATAGRAM - head)}
    assert len(format_event(event)) == MAX_DATAGRAM
    assert our_datagram(agent, event) == format_event(event)


def test_separator_in_a_header_field_is_rejected() -> None:
    sink = DogStatsdSink("127.0.0.1", 9)
    result = sink.send(Encoded.of({"title": "t", "text": "x", "aggregation_key": "a|b"}))
    assert result.outcome is Outcome.REJECTED and "aggregation_key" in result.errors[0]
    assert sink.send(Encoded.of({"title": "", "text": "x"})).outcome is Outcome.REJECTED


def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "dsd.socket")
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    agent.bind(path)
    agent.settimeout(5)
    sink = DogStatsdSink(socket_path=path)
    event = {"title": "über", "text": "a\nb", "tags": ["x:y"]}
    assert sink.send(Encoded.of(event)).outcome is Outcome.DELIVERED
    assert agent.recv(65536) == format_event(event)
    sink.close()
    agent.close()


def test_missing_unix_socket_is_retry_not_loss(tmp_path: Path) -> None:
    sink = DogStatsdSink(socket_path=str(tmp_path / "no-agent.socket"))
    result = sink.send(Encoded.of({"title": "t", "text": "x"}))
    assert result.outcome is Outcome.RETRY
    assert "no-agent.socket" in result.errors[0]
