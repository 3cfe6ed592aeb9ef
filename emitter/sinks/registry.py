"""Choosing a sink by name (`--sink` or config): datadog (the default), dogstatsd, stdout, file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emitter.errors import UsageError
from emitter.settings import Settings, parse_statsd_address
from emitter.sinks.base import Sink

__all__ = ["DEFAULT_SINK", "SINK_NAMES", "check_sink", "make_sink", "parse_statsd_address",
           "sink_factory"]

SINK_NAMES: tuple[str, ...] = ("datadog", "dogstatsd", "stdout", "file")
DEFAULT_SINK = "datadog"


def make_sink(name: str, settings: Settings, **opts: Any) -> Sink:
    """Build the sink called `name`. Options by sink:

    - datadog: `timeout` (seconds, or a (connect, read) pair); needs DD_API_KEY.
    - dogstatsd: `address` ("host:port", "udp://host:port" or "unix:///path/to.sock"), or
      `host`, `port`, `socket_path`.
    - stdout: `stream`.
    - file: `path` (required).
    Raises UsageError for an unknown name or a missing option, ConfigError for a bad value.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise UsageError(f"unknown sink {name!r}; choose one of: {', '.join(SINK_NAMES)}")
    return builder(settings, opts)


def check_sink(name: str, settings: Settings, **opts: Any) -> None:
    """Raise what `make_sink` would for this name and options, opening nothing (no socket,
    file or TLS context): for one-shot commands that check before they work."""
    if name not in _BUILDERS:
        raise UsageError(f"unknown sink {name!r}; choose one of: {', '.join(SINK_NAMES)}")
    if name == "datadog":
        settings.require_api_key()
    elif name == "dogstatsd" and not _explicit_statsd(opts):
        settings.dogstatsd(opts.get("address"))
    elif name == "file":
        _file_path(opts)


def sink_factory(name: str, settings: Settings, **opts: Any) -> Callable[[], Sink]:
    """A function making a fresh sink per call (one per sender worker: own connection).
    The first one is built now, so a bad name or option fails at startup."""
    make_sink(name, settings, **opts).close()
    return lambda: make_sink(name, settings, **opts)


def _datadog(settings: Settings, opts: dict[str, Any]) -> Sink:
    """The session (lean transport, or requests behind a proxy) is chosen by the sink from
    the environment once, here at startup: see emitter.sinks.datadog.open_session."""
    from emitter.sinks.datadog import DatadogSink

    if "timeout" in opts:
        return DatadogSink(settings, timeout=opts["timeout"])
    return DatadogSink(settings)


def _dogstatsd(settings: Settings, opts: dict[str, Any]) -> Sink:
    from emitter.sinks.dogstatsd import DEFAULT_HOST, DEFAULT_PORT, DogStatsdSink

    if _explicit_statsd(opts):
        return DogStatsdSink(
            opts.get("host") or DEFAULT_HOST,
            int(opts.get("port") or DEFAULT_PORT),
            socket_path=opts.get("socket_path"),
        )
    # The address option, else the environment, read in one place (emitter.settings).
    return DogStatsdSink(**settings.dogstatsd(opts.get("address")))


def _explicit_statsd(opts: dict[str, Any]) -> bool:
    return bool(opts.get("host") or opts.get("port") or opts.get("socket_path"))


def _stdout(settings: Settings, opts: dict[str, Any]) -> Sink:
    from emitter.sinks.stdout import StdoutSink

    return StdoutSink(opts.get("stream"))


def _file(settings: Settings, opts: dict[str, Any]) -> Sink:
    from emitter.sinks.file import FileSink

    return FileSink(_file_path(opts))


def _file_path(opts: dict[str, Any]) -> str:
    path = opts.get("path")
    if not path:
        raise UsageError("the file sink needs a path (--sink-path FILE)")
    return str(path)


_BUILDERS: dict[str, Callable[[Settings, dict[str, Any]], Sink]] = {
    "datadog": _datadog,
    "dogstatsd": _dogstatsd,
    "stdout": _stdout,
    "file": _file,
}
