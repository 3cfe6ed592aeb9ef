"""The sink options `run`, `outbox drain`, `fire` and `exec` share (one spelling each):
`--sink`, `--sink-path`, `--statsd-address` (`--statsd-addr` still accepted, hidden)."""

from __future__ import annotations

import argparse
from typing import Any


def add_sink_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """`defaults=False` leaves every option None when not given (`exec` parses its options
    in two passes and fills the defaults itself)."""
    from emitter.sinks.registry import DEFAULT_SINK, SINK_NAMES

    parser.add_argument("--sink", choices=SINK_NAMES, default=DEFAULT_SINK if defaults else None,
                        help="where events go: datadog (the Events API, needs DD_API_KEY), "
                        "dogstatsd (a local Datadog Agent, no API key), stdout, or file "
                        f"(--sink-path; default {DEFAULT_SINK})")
    parser.add_argument("--sink-path", metavar="FILE", help="the file sink's JSON-lines file")
    parser.add_argument("--statsd-address", metavar="ADDR",
                        help="dogstatsd sink: host:port, udp://host:port or unix:///path "
                        "(default: $DD_DOGSTATSD_URL, else $DD_AGENT_HOST:$DD_DOGSTATSD_PORT, "
                        "else localhost:8125)")
    parser.add_argument("--statsd-addr", dest="statsd_address", help=argparse.SUPPRESS)


def sink_opts(args: argparse.Namespace) -> dict[str, Any]:
    """The registry's options for the chosen sink; the environment is read by the registry
    (emitter.settings), never here."""
    if args.sink == "file":
        return {"path": args.sink_path}
    if args.sink == "dogstatsd":
        return {"address": args.statsd_address}
    return {}
