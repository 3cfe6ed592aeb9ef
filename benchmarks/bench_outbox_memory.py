"""Resident memory of a process holding a growing backlog of undelivered events.

A child process runs what the daemon runs for delivery, the outbox plus a sender (4 workers)
whose intake is down (a loopback port nobody listens on), and commits rendered, checked
events in batches of 100 (as triggers do). It reports VmRSS after start-up (the baseline, same
run) and at 10k, 50k and 100k pending events. Target: <= 80 MB at 100k, and flat: memory
must not scale with the backlog.

    .venv/bin/python benchmarks/bench_outbox_memory.py [--events 100000]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKS = (10_000, 50_000, 100_000)

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from datetime import datetime, timezone
from emitter.delivery.outbox import Outbox
from emitter.events.encode import encode_event as encode
from emitter.delivery.sender import Sender
from emitter.settings import Settings
from emitter.sinks.registry import sink_factory
from benchmarks.bench_throughput import Pipeline

state, url, total = sys.argv[2], sys.argv[3], int(sys.argv[4])
marks = [int(m) for m in sys.argv[5].split(",")]

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

pipeline = Pipeline()
settings = Settings.from_environ({"DD_API_KEY": "k", "DATADOG_HOST": url})
outbox = Outbox.in_dir(state)
sender = Sender(outbox, sink_factory("datadog", settings, timeout=1), workers=4)
sender.start()
pipeline.event(0)
time.sleep(1)  # let the workers hit the closed port a few times
print(json.dumps({"pending": 0, "rss_mb": rss_mb()}), flush=True)
done = 0
while done < total:
    batch = [("deploy-finished", encode(pipeline.event(done + k))) for k in range(100)]
    outbox.enqueue(batch)
    done += len(batch)
    if done in marks:
        time.sleep(0.5)  # the sender keeps trying meanwhile
        status = outbox.status()
        print(json.dumps({"pending": status.pending + status.inflight, "rss_mb": rss_mb(),
                          "retried": status.counters["retried"]}), flush=True)
sender.stop(2)
outbox.close()
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on return: connections are refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    marks = [m for m in MARKS if m <= args.events] or [args.events]
    url = f"http://127.0.0.1:{closed_port()}"
    with tempfile.TemporaryDirectory(prefix="bench-outbox-mem-") as state:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(ROOT), state, url, str(args.events),
             ",".join(map(str, marks))],
            capture_output=True, text=True, timeout=1800, check=False)
        size = sum(p.stat().st_size for p in Path(state).iterdir()) / 1024 / 1024
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr}")
    samples = [json.loads(line) for line in out.stdout.splitlines()]
    base = samples[0]["rss_mb"]
    print(f"baseline (outbox + sender started, 0 events): {base:6.1f} MB RSS")
    for s in samples[1:]:
        print(f"{s['pending']:>7,} undelivered events: {s['rss_mb']:6.1f} MB RSS "
              f"(+{s['rss_mb'] - base:5.1f} MB over baseline, ratio {s['rss_mb'] / base:.2f}; "
              f"{s['retried']:,} failed attempts so far)")
    first, last = samples[1], samples[-1]
    grown = last["rss_mb"] - first["rss_mb"]
    per_10k = grown / max(1, last["pending"] - first["pending"]) * 1e4
    print(f"growth from {first['pending']:,} to {last['pending']:,}: {per_10k:.2f} MB per 10k "
          f"events; outbox on disk at the end: {size:.1f} MB; target <= 80 MB RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
