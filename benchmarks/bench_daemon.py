"""Durable delivery through the real `emitter run`, per trigger, against two client loops.

    .venv/bin/python benchmarks/bench_daemon.py [-n 3000] [--runs 3] [--modes stdin,file,webhook]
        [--levels info,warning] [--profile DIR]
    .venv/bin/python benchmarks/bench_daemon.py --latency 1000 [--interval 0.02]

Every row posts to the same fast intake (benchmarks/fast_intake.py, its own process; its
ceiling is measured and printed first). Rows of one run, measured in that run:
- plain client: one keep-alive `http.client` connection posting N bodies shaped like the
  daemon's, one after the other (the baseline of issue 13 target 1: ratio >= 0.8);
- datadogpy:   a loop of `datadog.api.Event.create` (target: emitter >= 3x);
- emitter run, per trigger (stdin lines, lines appended to a followed file, webhook POSTs from
  8 keep-alive clients) and per --log-level: N events offered as fast as the trigger takes
  them, timed from the first offered to the last the intake received; `backlog` is queued
  minus sent (the daemon's /metrics) when the last input was accepted: senders not starved.
Ratios are taken within a run; the summary prints the median of 3 runs and their spread.
The `info`/`warning` pair is issue 13 target 6 (per-event log lines cost <= 5%).

--latency N appends N matching lines one at a time, `--interval` apart, to a file `emitter run`
follows and prints the distribution of write-to-intake times (target 4: p50 <= 50 ms, p99 <= 300).
--profile DIR runs py-spy (record, raw format) on each daemon while it works, and prints the
functions holding most samples.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import fast_intake  # noqa: E402

KEY = "0123456789abcdef0123456789abcdef"
TEXT = "deploy finished on web-01 in 42 s; 3 warnings, see the build log for details"
RULES = {
    "stdin": """  - id: bench-stdin
    trigger: {type: stdin}
    params: {payload: {type: object, example: {n: 1, msg: x}}}
    event: {title: "bench {{ payload.n }}", text: "seq-{{ payload.n }} {{ payload.msg }}",
            tags: ["bench:daemon"]}
""",
    "file": """  - id: bench-file
    trigger: {type: file, path: "LOG", match: 'ERROR seq-(?P<n>\\d+) (?P<msg>.*)'}
    event: {title: "bench {{ n }}", text: "seq-{{ n }} {{ msg }}", tags: ["bench:daemon"]}
""",
    "webhook": """  - id: bench-hook
    trigger: {type: webhook, path: /hooks/bench}
    event: {title: "bench {{ payload.n }}", text: "seq-{{ payload.n }} {{ payload.msg }}",
            tags: ["bench:daemon"]}
""",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


class Intake:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, fast_intake.__file__, str(self.port)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and "listening" in self.proc.stdout.readline()

    def stats(self) -> dict[str, float]:
        return dict(get_json(self.url + "/stats"))

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/reset", b"", method="POST"),
                               timeout=10).close()

    def wait_count(self, n: int, timeout: float = 300) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.stats()
            if st["count"] >= n:
                return st
            time.sleep(0.02)
        raise SystemExit(f"intake got {self.stats()['count']} of {n} events")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def body(i: int) -> bytes:
    return json.dumps({"title": f"bench {i}", "text": f"seq-{i} {TEXT}",
                       "tags": ["bench:daemon"]}).encode()


def plain_client(intake: Intake, n: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=10)
    headers = {"Content-Type": "application/json", "DD-API-KEY": KEY}
    started = time.perf_counter()
    for i in range(n):
        conn.request("POST", "/api/v1/events", body(i), headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 202
    elapsed = time.perf_counter() - started
    conn.close()
    return n / elapsed


def datadogpy(intake: Intake, n: int) -> float:
    from datadog import api, initialize

    initialize(api_key=KEY, app_key=None, api_host=intake.url)
    started = time.perf_counter()
    for i in range(n):
        api.Event.create(title=f"bench {i}", text=f"seq-{i} {TEXT}", tags=["bench:daemon"])
    return n / (time.perf_counter() - started)


class Daemon:
    """`emitter run` on one trigger's rule, delivering to the intake, /metrics on a port."""

    def __init__(self, tmp: Path, mode: str, level: str, intake: Intake) -> None:
        self.log = tmp / "app.log"
        self.log.write_bytes(b"")
        rules = tmp / "rules.yaml"
        rules.write_text("version: 1\nrules:\n" + RULES[mode].replace("LOG", str(self.log)))
        self.port = free_port()
        args = [sys.executable, "-m", "emitter", "run", str(rules), "--state-dir",
                str(tmp / "state"), "--listen", f"127.0.0.1:{self.port}", "--log-level", level]
        if mode == "stdin":
            args.append("--stdin")
        env = {**os.environ, "DATADOG_HOST": intake.url, "DD_API_KEY": KEY, "HOME": str(tmp)}
        self.stderr = (tmp / "stderr.log").open("wb")
        self.proc = subprocess.Popen(args, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, stdin=subprocess.PIPE)
        self._wait_healthy(tmp)

    def _wait_healthy(self, tmp: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                get_json(f"http://127.0.0.1:{self.port}/healthz")
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("emitter run did not start:\n" + (tmp / "stderr.log").read_text())

    def backlog(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        total = {"queued": 0, "sent": 0}
        for name, value in re.findall(r"^emitter_events_(queued|sent)_total\{[^}]*\} (\S+)$",
                                      text, re.M):
            total[name] += int(float(value))
        return total["queued"] - total["sent"]

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.stderr.close()


def offer_stdin(d: Daemon, n: int) -> None:
    assert d.proc.stdin is not None
    lines = b"".join(json.dumps({"n": i, "msg": TEXT}).encode() + b"\n" for i in range(n))
    d.proc.stdin.write(lines)
    d.proc.stdin.flush()


def offer_file(d: Daemon, n: int) -> None:
    with d.log.open("ab", buffering=0) as fh:
        for start in range(0, n, 100):
            fh.write(b"".join(b"ERROR seq-%d %s\n" % (i, TEXT.encode())
                              for i in range(start, min(n, start + 100))))


def offer_webhook(d: Daemon, n: int, clients: int = 8) -> None:
    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        for i in range(k, n, clients):
            conn.request("POST", "/hooks/bench", json.dumps({"n": i, "msg": TEXT}).encode(),
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 202, resp.status
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


OFFER = {"stdin": offer_stdin, "file": offer_file, "webhook": offer_webhook}


def daemon_row(intake: Intake, mode: str, level: str, n: int,
               profile: Path | None) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(Path(tmp), mode, level, intake)
        spy = _spy(d.proc.pid, profile / f"{mode}-{level}.txt") if profile else None
        try:
            warm_up(d, mode, intake)
            started = time.time()
            OFFER[mode](d, n)
            if mode == "stdin":  # accepted = read and queued, not just in the pipe
                _wait_queued(d, n + 1)  # and the warm-up line
            backlog = d.backlog()
            try:
                st = intake.wait_count(n)
            except SystemExit as exc:
                raise SystemExit(f"{exc} ({mode} @{level}), queued - sent {d.backlog()}; "
                                 "emitter run said:\n"
                                 + (Path(tmp) / "stderr.log").read_text()[-3000:]) from None
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            d.stop()
    return n / (st["last"] - started), backlog


def warm_up(d: Daemon, mode: str, intake: Intake) -> None:
    """One event end to end before timing: /healthz answers before the triggers start, and a
    file trigger starts at the end of the file, so lines written before it would be skipped."""
    intake.reset()
    deadline = time.monotonic() + 60
    while intake.stats()["count"] == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"no warm-up event through {mode}")
        if mode == "file":
            with d.log.open("ab") as fh:
                fh.write(b"ERROR seq-999999 warm-up\n")
        elif mode == "webhook":
            with contextlib.suppress(OSError):  # not routed yet
                urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{d.port}/hooks/bench", b'{"n": -1, "msg": "warm-up"}',
                    {"Content-Type": "application/json"}), timeout=10).close()
        elif d.proc.stdin is not None and intake.stats()["count"] == 0:
            d.proc.stdin.write(b'{"n": -1, "msg": "warm-up"}\n')
            d.proc.stdin.flush()
            intake.wait_count(1)
        time.sleep(0.2)
    time.sleep(0.3)  # anything else still in flight lands before the reset
    intake.reset()


def _wait_queued(d: Daemon, n: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{d.port}/metrics", timeout=10) as r:
            found = re.search(r"^emitter_events_queued_total\{[^}]*\} (\S+)$",
                              r.read().decode(), re.M)
        if found and float(found.group(1)) >= n:
            return
        time.sleep(0.01)


def _spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                            str(pid), "-r", "250", "--gil", "-f", "raw", "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the load starts
    return spy


_PLUMBING = ("threading.py", "socketserver.py", "guard.py")


def summarize_profile(path: Path, top: int = 14) -> None:
    """Share of GIL-holding samples per function: inclusive (once per stack) and self."""
    if not path.exists():
        print(f"  (no profile at {path})")
        return
    incl: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.split(":")[0] + ")" for f in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            if not any(p in frame for p in _PLUMBING):
                incl[frame] += int(count)
    print(f"  {path.name}: {total} samples holding the GIL; inclusive:")
    for name, count in incl.most_common(top):
        print(f"    {100 * count / max(total, 1):5.1f}%  {name}")
    print("   self:")
    for name, count in own.most_common(8):
        print(f"    {100 * count / max(total, 1):5.1f}%  {name}")


def one_run(intake: Intake, args: argparse.Namespace, profile: Path | None) -> dict[str, float]:
    row: dict[str, float] = {"plain client": plain_client(intake, args.n),
                             "datadogpy": datadogpy(intake, min(args.n, 1500))}
    for mode in args.modes.split(","):
        for level in args.levels.split(","):
            rate, backlog = daemon_row(intake, mode, level, args.n, profile)
            row[f"{mode} @{level}"] = rate
            row[f"{mode} @{level} backlog"] = backlog
    return row


def report(runs: list[dict[str, float]], args: argparse.Namespace) -> None:
    def line(name: str, values: list[float], unit: str) -> None:
        print(f"  {name:32} median {statistics.median(values):10,.2f} {unit}  spread "
              f"{min(values):,.2f}-{max(values):,.2f}")

    print(f"\nmedian of {len(runs)} runs (N={args.n} events per row):")
    for name in runs[0]:
        line(name, [r[name] for r in runs], "" if "backlog" in name else "events/s")
    print("ratios (each within its run):")
    for name in runs[0]:
        if "@" in name and "backlog" not in name:
            line(f"{name} / plain", [r[name] / r["plain client"] for r in runs], "(>= 0.8)")
            line(f"{name} / datadogpy", [r[name] / r["datadogpy"] for r in runs], "(>= 3)")
    levels = args.levels.split(",")
    if "info" in levels and "warning" in levels:
        for mode in args.modes.split(","):
            line(f"{mode} info/warning", [r[f"{mode} @info"] / r[f"{mode} @warning"]
                                          for r in runs], "(>= 0.95)")


def latency(intake: Intake, n: int, interval: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(Path(tmp), "file", "info", intake)
        warm_up(d, "file", intake)
        written: dict[int, float] = {}
        with d.log.open("ab", buffering=0) as fh:
            for i in range(n):
                written[i] = time.time()
                fh.write(b"ERROR seq-%d %s\n" % (i, TEXT.encode()))
                time.sleep(interval)
        intake.wait_count(n)
        arrivals = {int(k): v for k, v in get_json(intake.url + "/arrivals").items()}
        d.stop()
    lat = sorted((arrivals[i] - written[i]) * 1000 for i in range(n))
    pick = {p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] for p in (50, 90, 99)}
    print(f"line-to-intake latency over {n} lines, one every {interval * 1000:.0f} ms: "
          f"p50 {pick[50]:.1f} ms  p90 {pick[90]:.1f} ms  p99 {pick[99]:.1f} ms  "
          f"max {lat[-1]:.1f} ms  min {lat[0]:.1f} ms  (target p50 <= 50, p99 <= 300)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="stdin,file,webhook")
    parser.add_argument("--levels", default="info,warning")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--latency", type=int, default=0, metavar="N")
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    intake = Intake()
    try:
        print(f"{os.cpu_count()} cores; intake ceiling (4 raw keep-alive clients, own "
              f"processes): {fast_intake.ceiling(intake.port):,.0f} req/s")
        if args.latency:
            for _ in range(args.runs):
                latency(intake, args.latency, args.interval)
            return
        runs = []
        for k in range(args.runs):
            runs.append(one_run(intake, args, args.profile if k == 0 else None))
            print(f"run {k + 1}: " + ", ".join(f"{name} {v:,.0f}" for name, v in runs[-1].items()),
                  flush=True)
        report(runs, args)
        if args.profile:
            for path in sorted(args.profile.glob("*.txt")):
                summarize_profile(path)
    finally:
        intake.close()


if __name__ == "__main__":
    main()
