"""The sink options `run` and `outbox drain` share (one spelling each): `--sink`,
`--sink-path`, `--statsd-address` (`--statsd-addr` still accepted, hidden)."""

from __future__ import annotations

import argparse
from typing import Any


def add_sink_options(parser: argparse.ArgumentParser) -> None:
    from emitter.sinks.registry import DEFAULT_SINK, SINK_NAMES

    parser.add_argument("--sink", choices=SINK_NAMES, default=DEFAULT_SINK,
                        help=f"where events go (default {DEFAULT_SINK})")
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
