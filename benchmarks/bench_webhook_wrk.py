"""Webhooks through the real `emitter run` at 50 connections, driven by wrk, against a trivial
server on the same HTTP stack (issue 13 target 5: >= 0.8x), every 202 committed first.

    .venv/bin/python benchmarks/bench_webhook_wrk.py [--connections 50] [--seconds 8] [--runs 3]

Rows of one run, alternated, each against the same fast intake (benchmarks/fast_intake.py,
its own process):
- trivial: emitter.daemon.listener.Listener (the daemon's HTTP stack) in its own process,
  with an app that answers every POST 202 at once: no rule, no outbox;
- emitter run: one webhook rule, the Datadog sink posting to the intake; each request's event
  is committed to the outbox (SQLite WAL, synchronous=FULL) before its 202.
wrk (Debian's package `wrk`) keeps `--connections` keep-alive connections POSTing a 107-byte
JSON body. After the load, the bench checks that the daemon counted as accepted at least
every 2xx wrk saw and waits until the intake has every one of them (nothing accepted lost),
and prints how long that drain took (backlog at the end of the load / delivery rate).
Each row also prints the CPU its server process used during the load (user + system, from
/proc/PID/stat): microseconds per answered request and cores. That is the budget behind
docs/performance.md's reasoning about target 5.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_daemon  # noqa: E402

BODY = '{"n": 1, "msg": "deploy finished on web-01 in 42 s; 3 warnings, see the build log"}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
TRIVIAL = """import sys
sys.path.insert(0, {root!r})
from emitter.daemon.listener import Listener
from emitter.httpmsg import json_response
listener = Listener(("127.0.0.1", {port}), lambda request: json_response(202, {{"accepted": 1}}))
listener.start()
print("listening", flush=True)
sys.stdin.read()
"""


def wrk(port: int, connections: int, seconds: float, script: Path) -> tuple[float, float, int]:
    """(requests/s, p99 ms, 2xx answers) of one wrk run on /hooks/bench."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/hooks/bench"],
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        print(f"    wrk: {bad.group(0) if bad else ''} {errors.group(0) if errors else ''}")
    return rate, float(p99.group(1)) * scale, total - (int(bad.group(1)) if bad else 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loaded(pid: int, port: int, args: argparse.Namespace,
           script: Path) -> tuple[float, float, int, float, float]:
    """One wrk run against `port`: (req/s, p99 ms, 2xx answers, CPU us per 2xx answer, cores
    used by process `pid` meanwhile)."""
    cpu, started = cpu_seconds(pid), time.monotonic()
    rate, p99, answered = wrk(port, args.connections, args.seconds, script)
    used, wall = cpu_seconds(pid) - cpu, time.monotonic() - started
    return rate, p99, answered, used / max(answered, 1) * 1e6, used / wall


def trivial_row(args: argparse.Namespace, script: Path) -> tuple[float, float, float, float]:
    port = bench_daemon.free_port()
    proc = subprocess.Popen([sys.executable, "-c", TRIVIAL.format(root=str(ROOT), port=port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        rate, p99, _, cpu_us, cores = loaded(proc.pid, port, args, script)
    finally:
        proc.kill()
        proc.wait()
    return rate, p99, cpu_us, cores


def daemon_row(args: argparse.Namespace, script: Path, intake: bench_daemon.Intake
               ) -> tuple[float, float, int, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        d = bench_daemon.Daemon(Path(tmp), "webhook", args.level, intake)
        try:
            bench_daemon.warm_up(d, "webhook", intake)
            before = _queued(d)  # the warm-up's events: the intake's count was reset after them
            rate, p99, answered, cpu_us, cores = loaded(d.proc.pid, d.port, args, script)
            backlog = d.backlog()
            accepted = _queued(d) - before
            if accepted < answered:
                raise SystemExit(f"wrk saw {answered} 2xx but the daemon queued {accepted}")
            started = time.monotonic()
            intake.wait_count(accepted, timeout=600)
            drain = time.monotonic() - started
        finally:
            d.stop()
    return rate, p99, backlog, drain, cpu_us, cores


def _queued(d: bench_daemon.Daemon) -> int:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{d.port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(int(float(v)) for v in
               re.findall(r"^emitter_events_queued_total\{[^}]*\} (\S+)$", text, re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--level", default="info")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    intake = bench_daemon.Intake()
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        try:
            print(f"{os.cpu_count()} cores, {args.connections} connections, "
                  f"{args.seconds:g} s per row")
            for k in range(args.runs):
                t_rate, t_p99, t_us, t_cores = trivial_row(args, script)
                e_rate, e_p99, backlog, drain, e_us, e_cores = daemon_row(args, script, intake)
                rows.append({"trivial": t_rate, "emitter": e_rate, "ratio": e_rate / t_rate,
                             "t_p99": t_p99, "e_p99": e_p99, "backlog": backlog,
                             "drain": drain, "t_cpu": t_us, "e_cpu": e_us,
                             "t_cores": t_cores, "e_cores": e_cores})
                print(f"run {k + 1}: trivial {t_rate:,.0f} req/s (p99 {t_p99:.1f} ms, "
                      f"{t_us:.0f} us CPU/request, {t_cores:.2f} cores), emitter run "
                      f"{e_rate:,.0f} req/s (p99 {e_p99:.1f} ms, {e_us:.0f} us CPU/request, "
                      f"{e_cores:.2f} cores), ratio {e_rate / t_rate:.2f}; backlog at the end "
                      f"{backlog:,}, delivered {drain:.1f} s later", flush=True)
        finally:
            intake.close()
    print(f"\nmedian of {len(rows)} runs:")
    for name, unit in (("trivial", "req/s"), ("emitter", "req/s"), ("ratio", "(>= 0.8)"),
                       ("t_p99", "ms"), ("e_p99", "ms"), ("backlog", "events"),
                       ("drain", "s"), ("t_cpu", "us CPU/request"), ("e_cpu", "us CPU/request"),
                       ("t_cores", "cores"), ("e_cores", "cores")):
        values = [r[name] for r in rows]
        print(f"  {name:8} median {statistics.median(values):10,.2f} {unit}  spread "
              f"{min(values):,.2f}-{max(values):,.2f}")


if __name__ == "__main__":
    main()
