"""Webhook throughput and latency: 50 concurrent keep-alive clients on loopback.

    python benchmarks/bench_webhook.py [--connections 50] [--seconds 10]

The server runs in its own process (so the load generator does not share its GIL) with a
dispatch that commits every request's event to a real emitter.delivery.outbox.Outbox (SQLite WAL,
synchronous=FULL, group commit) before the 202. Baseline, same run: the same server with a
dispatch that does nothing, showing what durability costs. Each client thread keeps one
raw keep-alive socket open and sends signed (HMAC) JSON POSTs until the time is up.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "bench-secret"


def serve(mode: str, state_dir: str) -> None:
    from emitter.problems import Location
    from emitter.rules.model import Rule, WebhookTrigger
    from emitter.triggers.webhook import WebhookServer

    rule = Rule(id="bench", location=Location("bench.yaml", 1, 1), event={},
                trigger=WebhookTrigger(path="/hooks/bench", hmac_secret_env="BENCH_SECRET"))
    if mode == "outbox":
        from emitter.delivery.outbox import Outbox

        outbox = Outbox.in_dir(state_dir)

        def dispatch(firings) -> None:  # type: ignore[no-untyped-def]
            outbox.enqueue([(f.rule_id, json.dumps({"title": "bench", "text": json.dumps(
                f.variables["payload"])}).encode()) for f in firings])
    else:
        def dispatch(firings) -> None:  # type: ignore[no-untyped-def]
            return None

    from emitter.daemon.front import Front
    from emitter.daemon.listener import Listener

    server = WebhookServer([rule], dispatch, lambda r, m: print("error:", m, file=sys.stderr),
                           environ={"BENCH_SECRET": SECRET})
    server.start()
    front = Front(lambda: {"status": "ok"})  # the daemon's front and listener, as in `run`
    front.webhook = server.handle
    listener = Listener(("127.0.0.1", 0), front.app)
    listener.start()
    print(listener.address[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    listener.stop()
    server.stop(5)
    if mode == "outbox":
        outbox.close()


def read_response(sock: socket.socket, buf: bytes) -> tuple[int, bytes]:
    """One response's status; returns what was read past it."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), rest[length:]


def load(port: int, connections: int, seconds: float) -> tuple[int, list[float], int]:
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        # Raw keep-alive HTTP/1.1 over one socket: a light client leaves the cores to the server.
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        buf = b""
        n = 0
        while time.monotonic() < stop_at:
            body = json.dumps({"client": i, "n": n, "alert": "disk full"}).encode()
            sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            request = (f"POST /hooks/bench HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Content-Type: application/json\r\nX-Hub-Signature-256: {sig}\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            sock.sendall(request)
            status, buf = read_response(sock, buf)
            latencies[i].append(time.perf_counter() - started)
            if status != 202:
                failures[i] += 1
            n += 1
        sock.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = sorted(x for per in latencies for x in per)
    return len(flat), flat, sum(failures)


def run(mode: str, connections: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as state:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--state", state],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline())
        count, lat, failed = load(port, connections, seconds)
        proc.stdin.close()
        proc.wait(30)
        size = sum(f.stat().st_size for f in Path(state).iterdir())
    return {"rps": count / seconds, "p50": lat[len(lat) // 2] * 1000,
            "p99": lat[int(len(lat) * 0.99)] * 1000, "count": count, "failed": failed,
            "state_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", choices=("outbox", "noop"))
    parser.add_argument("--state", default="")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.state)
        return
    print(f"{args.connections} keep-alive connections, {args.seconds:.0f} s each, "
          f"{os.cpu_count()} cores")
    results = {mode: run(mode, args.connections, args.seconds) for mode in ("noop", "outbox")}
    for mode, r in results.items():
        print(f"{mode:7}: {r['rps']:8,.0f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms"
              f"  ({r['count']:.0f} requests, {r['failed']:.0f} not 202)")
    print(f"outbox/noop throughput ratio: {results['outbox']['rps'] / results['noop']['rps']:.2f}")


if __name__ == "__main__":
    main()
