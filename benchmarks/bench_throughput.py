"""End-to-end delivery throughput: rule → rendered → validated → committed to the outbox
(durable, synchronous=FULL) → 202 from the loopback intake, versus a loop of datadogpy's
`api.Event.create` posting the same events to the same intake, in the same run.

The intake runs in its own process so it does not compete with the client for the GIL; it is
tests/intake.py's FakeIntake with Nagle off (answers are written in two sends; with Nagle on
every answer waits ~40 ms for a delayed ACK, which would measure the kernel, not the code).
Prints events/s for both and the ratio (target: emitter >= 2x datadogpy).

    .venv/bin/python benchmarks/bench_throughput.py [-n 3000] [--workers 4] [--producers 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.intake import INTAKE_KEY  # noqa: E402

RULES = str(ROOT / "rules" / "deploy.yaml")
RULE_ID = "deploy-finished"
INTAKE_SCRIPT = (
    "import sys; sys.path.insert(0, {root!r})\n"
    "import tests.intake as ti\n"
    "ti._Handler.disable_nagle_algorithm = True\n"
    "ti.main(['--port', '{port}', '--api-key', {key!r}])\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_intake() -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    code = INTAKE_SCRIPT.format(root=str(ROOT), port=port, key=INTAKE_KEY)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        raise SystemExit(f"intake did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}"


class Pipeline:
    """The deploy rule, loaded and compiled once; `event(i)` renders and checks firing i."""

    def __init__(self) -> None:
        from emitter.rules.loader import load_rules
        from emitter.templates.compiler import compile_rule

        loaded = load_rules([RULES])
        rule = loaded.rule(RULE_ID)
        assert rule is not None and loaded.ok, loaded.problems
        compiled, problems = compile_rule(rule)
        assert compiled is not None, problems
        self.rule, self.compiled = rule, compiled

    def event(self, i: int) -> dict[str, Any]:
        from emitter.events.check import check_event
        from emitter.templates.render import RenderContext, render

        now = datetime.now(timezone.utc)
        variables = {"service": f"svc-{i % 50}", "version": f"1.{i}.0",
                     "outcome": "success" if i % 3 else "failure"}
        outcome = render(self.compiled, variables, RenderContext(now=now, hostname="bench"))
        (event,) = outcome.events
        problems = check_event(event, now=now, rule=self.rule)
        assert not any(p.is_error for p in problems), problems
        return event


def run_emitter(pipeline: Pipeline, url: str, n: int, workers: int, producers: int) -> float:
    """`producers` threads (like webhook handlers) each render, check and commit one event
    at a time, returning only once it is durable; the sender drains concurrently. Returns
    events/s from the first render to the last 202."""
    from emitter.delivery.outbox import Outbox
    from emitter.delivery.sender import Sender
    from emitter.events.encode import encode_event as encode
    from emitter.settings import Settings
    from emitter.sinks.registry import sink_factory

    settings = Settings.from_environ({"DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": url})
    with tempfile.TemporaryDirectory() as state, Outbox.in_dir(state) as outbox:
        sender = Sender(outbox, sink_factory("datadog", settings), workers=workers)
        sender.start()
        started = time.perf_counter()

        def produce(first: int) -> None:
            for i in range(first, n, producers):
                outbox.enqueue([(RULE_ID, encode(pipeline.event(i)))])

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sender.drain(timeout=600)
        elapsed = time.perf_counter() - started
        sender.stop(5)
        counts = sender.counters()
        assert counts.sent == n and counts.retried == 0 and counts.dead == 0, counts
    return n / elapsed


def run_datadogpy(pipeline: Pipeline, url: str, n: int) -> float:
    """The same events (rendered and checked the same way) through datadogpy, one by one."""
    import datadog
    from datadog import api

    datadog.initialize(api_key=INTAKE_KEY, api_host=url, mute=False)
    started = time.perf_counter()
    for i in range(n):
        event = pipeline.event(i)
        answer = api.Event.create(
            title=event["title"], text=event["text"], tags=event.get("tags"),
            alert_type=event.get("alert_type"), aggregation_key=event.get("aggregation_key"),
            source_type_name=event.get("source_type_name"), host=event.get("host"),
            priority=event.get("priority"), date_happened=event.get("date_happened"),
        )
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            raise SystemExit(f"datadogpy got {answer!r}")
    return n / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="events per contender")
    parser.add_argument("--workers", type=int, default=4, help="emitter sender workers")
    parser.add_argument("--producers", type=int, default=8,
                        help="threads firing events, each waiting for its commit (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best kept")
    args = parser.parse_args()
    os.environ.pop("DATADOG_HOST", None)
    intake, url = start_intake()
    try:
        pipeline = Pipeline()
        run_emitter(pipeline, url, 200, args.workers, args.producers)  # warm-up
        run_datadogpy(pipeline, url, 200)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(run_emitter(pipeline, url, args.n, args.workers, args.producers))
            theirs.append(run_datadogpy(pipeline, url, args.n))
    finally:
        intake.terminate()
        intake.wait(10)
    best_ours, best_theirs = max(ours), max(theirs)
    print(f"cores: {os.cpu_count()}, events per round: {args.n}, rounds: {args.rounds}")
    print(f"emitter: render+check+durable commit ({args.producers} producers) -> sender "
          f"({args.workers} workers): {best_ours:6.0f} events/s  (rounds: "
          + ", ".join(f"{x:.0f}" for x in ours) + ")")
    print(f"datadogpy: render+check -> api.Event.create loop:        {best_theirs:6.0f} "
          "events/s  (rounds: " + ", ".join(f"{x:.0f}" for x in theirs) + ")")
    print(f"ratio emitter/datadogpy: {best_ours / best_theirs:.2f}x (target >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
