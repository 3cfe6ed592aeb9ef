"""Fleet throughput: events delivered end to end per second by 1, 2 and 3 `emitter run` replicas
on PostgreSQL versus one replica on SQLite, same run, same loopback intake.

    python benchmarks/bench_fleet.py [--seconds 10] [--connections 24] [--workers 4]

Each configuration: the replicas run as subprocesses (datadog sink pointed at the intake, one
webhook rule, --listen each on its own port); a load generator in its own process keeps
`--connections` keep-alive clients posting webhooks round robin across the replicas for
`--seconds`, recording each request's latency. Delivered/s is the events the intake got (202)
divided by the time from the first request until the last accepted one arrived at the intake;
p99 is the webhook answer's latency. PostgreSQL is a throwaway cluster (tests/pgcluster.py);
everything shares this machine's cores, the database included.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RULES = """version: 1
rules:
  - id: hook
    trigger: {type: webhook, path: /hook}
    params: {payload: {type: object, example: {n: 1}}}
    event: {title: "hook {{ payload.n }}", text: x}
"""


def load(ports: list[int], connections: int, seconds: float) -> None:
    """The load generator (its own process): prints {"ok", "refused", "p99", "started"}."""
    lat: list[float] = []
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    started = time.time()
    end = time.monotonic() + seconds

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ports[k % len(ports)], timeout=30)
        n = 0
        while time.monotonic() < end:
            body = json.dumps({"n": k * 10_000_000 + n}).encode()
            t0 = time.perf_counter()
            conn.request("POST", "/hook", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            took = time.perf_counter() - t0
            with lock:
                lat.append(took)
                counts["ok" if resp.status == 202 else "refused"] += 1
            n += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    p99 = lat[int(len(lat) * 0.99)] if lat else 0.0
    print(json.dumps({**counts, "p99": p99, "started": started}))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_config(label: str, states: list[list[str]], intake: Any, tmp: Path,
               args: argparse.Namespace) -> dict[str, Any]:
    from tests.intake import INTAKE_KEY

    intake.clear()
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    env = {**os.environ, "DATADOG_HOST": intake.url, "DD_API_KEY": INTAKE_KEY}
    ports = [free_port() for _ in states]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "emitter", "run", str(rules), *state, "--listen",
         f"127.0.0.1:{port}", "--log-level", "warning", "--grace", "30",
         "--workers", str(args.workers)],
        env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for state, port in zip(states, ports)]
    try:
        for port in ports:
            _wait_healthy(port)
        gen = subprocess.run(
            [sys.executable, __file__, "--load", json.dumps(ports), "--connections",
             str(args.connections), "--seconds", str(args.seconds)],
            capture_output=True, text=True, timeout=args.seconds + 120, check=True)
        result = json.loads(gen.stdout)
        accepted = result["ok"]
        intake.wait_for_events(accepted, timeout=300)
        last = max(r.time for r in intake.requests if r.status == 202)
        first_mono = time.monotonic() - (time.time() - result["started"])
        span = last - first_mono
        return {"label": label, "accepted": accepted, "refused": result["refused"],
                "delivered_per_s": accepted / span, "p99_ms": result["p99"] * 1000,
                "delivered": len(intake.events)}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_healthy(port: int) -> None:
    import urllib.request

    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"replica on port {port} did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=24)
    parser.add_argument("--workers", type=int, default=4, help="sender workers per replica")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(json.loads(args.load), args.connections, args.seconds)
        return 0
    import tempfile

    from tests.intake import INTAKE_KEY, FakeIntake
    from tests.pgcluster import Cluster

    reason = Cluster.available()
    if reason:
        print(f"bench_fleet: {reason}", file=sys.stderr)
        return 1
    results = []
    with Cluster.start() as pg, FakeIntake(api_key=INTAKE_KEY) as intake, \
            tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results.append(run_config("sqlite x1", [["--state-dir", str(root / "sqlite")]],
                                  intake, root, args))
        for n in (1, 2, 3):
            url = pg.new_database()
            results.append(run_config(f"postgres x{n}", [["--state-url", url]] * n,
                                      intake, root, args))
    for r in results:
        print(f"{r['label']:<12} delivered {r['delivered_per_s']:8.0f} events/s  "
              f"webhook p99 {r['p99_ms']:7.1f} ms  ({r['accepted']} accepted, "
              f"{r['refused']} refused)")
    sqlite, pg1, _, pg3 = (r["delivered_per_s"] for r in results)
    print(f"3 PG replicas / 1 PG replica: {pg3 / pg1:.2f}x (target >= 1.5)")
    print(f"1 PG replica / SQLite:        {pg1 / sqlite:.2f}x (target >= 0.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
