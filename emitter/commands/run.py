"""`emitter run PATH...`: the daemon. Parses options, sets up logging, runs `Daemon`.

Exit codes: 0 after SIGTERM/SIGINT or --exit-after, or at the end of --stdin input once
everything was delivered; 1 when the rules have errors (listed; nothing started), 2 usage,
5 standard input ended and events were still undelivered after --grace (they stay in the
outbox), 6 no DD_API_KEY for the datadog sink / unusable state directory / a port in use.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from emitter.commands.sinkopts import add_sink_options, sink_opts
from emitter.errors import EXIT_DELIVERY, EXIT_INVALID, InvalidError, UsageError

NO_KEY_HINT = "use --dry-run (or --sink stdout|file|dogstatsd) to run without Datadog"


def _seconds(text: str) -> float:
    from emitter.rules.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the daemon: start every rule's trigger and send the events",
        description="Validate every rule under PATH (refusing to start on errors), then run "
        "their triggers (schedule, file, webhook, command, stdin) and deliver the events "
        "through the durable outbox. SIGHUP reloads the rules; SIGTERM stops gracefully. "
        "Under systemd (Type=notify) it reports READY/RELOADING/STOPPING and pets the watchdog.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="rule file or directory")
    p.add_argument("--dry-run", action="store_true",
                   help="run everything but print events to stdout instead of sending them "
                   "(like --sink stdout, this uses a temporary state directory unless "
                   "--state-dir is given)")
    add_sink_options(p)
    p.add_argument("--state-dir", metavar="DIR",
                   help="outbox and trigger state (default: $EMITTER_STATE_DIR, then "
                   "$XDG_STATE_HOME/emitter)")
    p.add_argument("--state-url", metavar="URL",
                   help="keep the outbox and trigger state in PostgreSQL, shared by every "
                   "replica given the same URL (postgresql://...; default: "
                   "$EMITTER_STATE_URL; needs the 'postgres' extra)")
    p.add_argument("--listen", metavar="ADDR:PORT",
                   help="address for webhooks, /metrics and /healthz (default when a webhook "
                   "rule runs: 127.0.0.1:8787). ':PORT' or 'PORT' alone means loopback; "
                   "all interfaces are asked for by name: 0.0.0.0:PORT or [::]:PORT")
    p.add_argument("--metrics-addr", metavar="ADDR:PORT",
                   help="a second port with the same routes (webhooks, /metrics, /healthz), "
                   "same address syntax as --listen")
    p.add_argument("--stdin", action="store_true",
                   help="read JSON lines from standard input for `stdin` rules")
    p.add_argument("--watch", action="store_true",
                   help="reload when a rule file changes (polls modification times)")
    p.add_argument("--watch-interval", type=_seconds, default=2.0, metavar="S")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   default="info")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--grace", type=_seconds, default=10.0, metavar="S",
                   help="on SIGTERM, seconds to let requests in flight finish; at the end of "
                   "--stdin input, seconds to deliver what is pending (default 10)")
    p.add_argument("--exit-after", type=_seconds, metavar="S",
                   help="stop by itself after S seconds (demos, smoke tests)")
    p.add_argument("--workers", type=int, default=4, metavar="N",
                   help="sender workers (default 4)")
    p.set_defaults(run=run)


def _sink_opts(args: argparse.Namespace) -> dict[str, Any]:
    if args.sink == "file" and not args.sink_path:
        raise UsageError("--sink file needs --sink-path FILE")
    return sink_opts(args)


def _state_url(args: argparse.Namespace) -> str | None:
    from emitter.state.postgres.db import is_url

    if args.state_url and args.state_dir:
        raise UsageError("give --state-dir or --state-url, not both")
    if args.state_url and not is_url(args.state_url):
        raise UsageError(f"--state-url {args.state_url!r}: expected postgresql://...")
    return str(args.state_url) if args.state_url else None


def run(args: argparse.Namespace) -> int:
    from emitter.daemon import logs
    from emitter.daemon.lifecycle import Daemon, DaemonConfig
    from emitter.settings import Settings
    from emitter.validate.report import default_format, format_problems

    environ = os.environ
    settings = Settings.from_environ(environ)
    sink = "stdout" if args.dry_run else args.sink
    if sink == "datadog":
        settings.require_api_key(hint=NO_KEY_HINT)
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    secrets = [settings.api_key.reveal()] if settings.api_key else []
    logs.configure(args.log_level, args.log_format, secrets=secrets)
    config = DaemonConfig(
        paths=tuple(args.paths), sink=sink, sink_opts=_sink_opts(args),
        state_dir=args.state_dir, state_url=_state_url(args), dry_run=args.dry_run,
        listen=args.listen,
        metrics_addr=args.metrics_addr, stdin=args.stdin, watch=args.watch,
        watch_interval=args.watch_interval, grace=args.grace, exit_after=args.exit_after,
        workers=args.workers,
    )
    daemon = Daemon(config, environ, settings)
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except InvalidError as exc:
        daemon.shutdown()
        fmt = default_format(environ)
        files = len({p.location.path for p in exc.problems if p.location})
        print(format_problems(exc.problems, fmt, files_checked=files), file=sys.stderr)
        print(f"emitter: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BaseException:
        daemon.shutdown()
        raise
    try:
        code = daemon.serve()
    finally:
        daemon.shutdown()
        _say_what_happened(daemon.metrics.totals(), sink)
    if daemon.input_ended and daemon.undelivered:
        print(f"emitter: {daemon.undelivered} event(s) not delivered within --grace "
              f"(standard input ended); see the log line above for where they are",
              file=sys.stderr)
        return EXIT_DELIVERY
    return code


def _say_what_happened(totals: dict[str, int], sink: str) -> None:
    """One closing line on stderr, so a demo or a cron run says what it did."""
    where = {"stdout": "printed to stdout (dry run: nothing was posted to Datadog)",
             "file": "written to the file sink"}.get(sink, f"delivered by the {sink} sink")
    print(
        f"emitter: {totals.get('fired', 0)} firings; {totals.get('sent', 0)} events {where}; "
        f"{totals.get('throttled', 0)} throttled, {totals.get('skipped', 0)} skipped by when, "
        f"{totals.get('invalid', 0)} invalid, {totals.get('dead', 0)} dead letters",
        file=sys.stderr,
    )
