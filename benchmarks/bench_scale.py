"""Issue 13 target 7 (scale), on the real CLI and the real `emitter run`, each part against a
baseline measured in the same run (three runs, median and spread):

- `enqueue`: the outbox's write paths in this tree against a baseline tree (`--baseline REV`,
  default the commit before the maintained state counts; `git archive`d to a temporary
  directory): batches of 100 (a file trigger's shape), single durable events from 8 threads
  (webhook requests, group commit), claim + settle. Ratio this tree / baseline (want ~1.0).
- `status`: `emitter outbox status` (a subprocess) and one `/metrics` scrape of a running
  `emitter run` with 10k, 100k and 1M undelivered events (the intake is a closed port, so
  nothing drains); this tree and the baseline tree on the same outbox. Ratio 1M / 10k (want
  flat, ~1.0) and baseline / this tree.
- `rss`: VmRSS and VmHWM of `emitter run` holding 1,000,000 undelivered events (intake
  refusing), sampled over `--hold` seconds while its sender keeps retrying, against the same
  daemon on an empty outbox. Target <= 60 MB.
- `start`: `emitter run` with 1,000 file rules (100 files, 10 logs) to `/healthz` ok, against
  `emitter validate` of the same rules; both trees. Target: start <= 2x validate.

    .venv/bin/python benchmarks/bench_scale.py [--parts enqueue,status,rss,start] [--runs 3]
        [--baseline REV] [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "a6caee4^"  # before `outbox status` stopped counting the backlog
KEY = "0123456789abcdef0123456789abcdef"
BODY = json.dumps({"title": "Deployed svc-1 1.2.0", "text": "x" * 200,
                   "tags": ["service:svc-1", "env:prod"]}).encode()

FILL = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from emitter.delivery.outbox import Outbox
body, have, want = sys.argv[3].encode(), 0, int(sys.argv[4])
with Outbox(sys.argv[2]) as box:
    have = box.status().events
    while have < want:
        n = min(1000, want - have)
        box.enqueue([("deploy", body)] * n)
        have += n
"""

ENQUEUE = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
from emitter.delivery.outbox import Outbox
from emitter.delivery.outboxrows import Settlement
body = sys.argv[3].encode()
out = {}
def timed(name, n, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    out[name] = n / (time.perf_counter() - wall)
    out[name + "_cpu"] = (time.process_time() - cpu) / n * 1e6
with Outbox(sys.argv[2] + "/batched.sqlite3") as box:
    timed("batched", 50000, lambda: [box.enqueue([("r", body)] * 100) for _ in range(500)])
    def drain():
        while rows := box.claim(100):
            box.settle([Settlement(r.id, "delivered") for r in rows])
    timed("claim_settle", 50000, drain)
with Outbox(sys.argv[2] + "/single.sqlite3") as box:
    def one():
        for _ in range(500):
            box.enqueue([("r", body)])
    def eight():
        threads = [threading.Thread(target=one) for _ in range(8)]
        for th in threads: th.start()
        for th in threads: th.join()
    timed("single", 4000, eight)
print(json.dumps(out))
"""

RULE = """  - id: file-{n}
    description: Errors of service {n}
    trigger: {{type: file, path: "{log}", match: 'ERROR \\[svc{n}\\] (?P<message>.*)$'}}
    throttle: {{key: "{{{{ message[:20] }}}}", window: 5m}}
    event:
      title: "svc{n}: {{{{ message[:80] }}}}"
      text: "{{{{ line }}}} (line {{{{ line_number }}}} of {{{{ path }}}}) #{n}"
      alert_type: error
      tags: ["service:svc{n}", "rule:{n}"]
"""


# ---- helpers ---------------------------------------------------------------------------------


def port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on return: nobody listens there


def spread(values: Sequence[float], unit: str = "", fmt: str = "{:.3f}") -> str:
    shown = ", ".join(fmt.format(v) for v in values)
    return f"median {fmt.format(statistics.median(values))}{unit} (runs {shown})"


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="bench-scale-base-"))
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def fill(state: Path, events: int) -> None:
    state.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", FILL, str(ROOT), str(state / "outbox.sqlite3"),
                    BODY.decode(), str(events)], check=True)


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=str(cwd), capture_output=True, text=True, env=env,
                          timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def proc_status(pid: int) -> dict[str, float]:
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return found


class Run:
    """`emitter run RULES` from `tree` on `state`, its sink a closed port (nothing drains)."""

    def __init__(self, tree: Path, rules: Path, state: Path, *, level: str = "warning") -> None:
        self.port = port()
        self.log = state.parent / f"run-{self.port}.log"
        env = {**os.environ, "DD_API_KEY": KEY, "DATADOG_HOST": f"http://127.0.0.1:{port()}",
               "HOME": str(state.parent)}
        self.started = time.perf_counter()
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "emitter", "run", str(rules), "--state-dir", str(state),
                 "--listen", f"127.0.0.1:{self.port}", "--log-level", level],
                cwd=str(tree), env=env, stdout=subprocess.DEVNULL, stderr=err)

    def get(self, route: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{route}",
                                        timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_started(self, timeout: float = 120) -> float:
        """Seconds from the process start to the first port answer at all (any status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.get("/healthz")
                return time.perf_counter() - self.started
            time.sleep(0.01)
        raise SystemExit(f"emitter run did not start:\n{self.log.read_text()}")

    def wait_ok(self, timeout: float = 120) -> float:
        """Seconds from the process start to /healthz saying ok (every trigger started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                status, body = self.get("/healthz")
                if status == 200 and json.loads(body).get("status") == "ok":
                    return time.perf_counter() - self.started
            time.sleep(0.01)
        raise SystemExit(f"emitter run never healthy:\n{self.log.read_text()}")

    def scrape(self) -> float:
        start = time.perf_counter()
        status, body = self.get("/metrics")
        elapsed = time.perf_counter() - start
        if status != 200 or b"emitter_outbox_pending" not in body:
            raise SystemExit(f"/metrics answered {status}: {body[:300]!r}")
        return elapsed

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def manual_rules(folder: Path) -> Path:
    path = folder / "manual.yaml"
    path.write_text("version: 1\nrules:\n  - id: deploy\n    trigger: {type: manual}\n"
                    "    event: {title: t, text: x}\n", encoding="utf-8")
    return path


def trees(args: argparse.Namespace, base: Path) -> list[tuple[str, Path]]:
    return [("baseline", base), ("this tree", ROOT)]


# ---- the parts ---------------------------------------------------------------------------------


def part_enqueue(args: argparse.Namespace, base: Path, tmp: Path) -> None:
    print(f"\n== enqueue paths: this tree vs baseline {args.baseline} (events/s, higher better)")
    seen: dict[tuple[str, str], list[float]] = {}
    for run in range(args.runs):
        for name, tree in trees(args, base)[::1 if run % 2 else -1]:  # alternate who goes first
            work = tmp / f"enq-{name[0]}-{run}"
            work.mkdir()
            out = subprocess.run([sys.executable, "-c", ENQUEUE, str(tree), str(work),
                                  BODY.decode()], capture_output=True, text=True, check=True)
            for what, value in json.loads(out.stdout).items():
                seen.setdefault((what, name), []).append(value)
            shutil.rmtree(work)
    for what in ("batched", "single", "claim_settle"):
        label = {"batched": "batches of 100", "single": "1 event x 8 threads",
                 "claim_settle": "claim 100 + settle"}[what]
        for key, unit, fmt in ((what, "/s", "{:,.0f}"), (what + "_cpu", " us CPU/event",
                                                          "{:.1f}")):
            old, new = seen[(key, "baseline")], seen[(key, "this tree")]
            print(f"  {label:20} baseline {spread(old, unit, fmt)}")
            print(f"  {'':20} this     {spread(new, unit, fmt)}  ratio this/baseline "
                  f"{statistics.median(new) / statistics.median(old):.2f}")


def part_status(args: argparse.Namespace, base: Path, tmp: Path) -> None:
    print("\n== `emitter outbox status` and a /metrics scrape, by backlog (seconds)")
    state, rules = tmp / "status-state", manual_rules(tmp)
    cli: dict[tuple[str, int], list[float]] = {}
    scrape: dict[tuple[str, int], list[float]] = {}
    for size in args.sizes:
        fill(state, size)
        for name, tree in trees(args, base):
            argv = [sys.executable, "-m", "emitter", "outbox", "status", "--state-dir",
                    str(state)]
            cli[(name, size)] = [timed(argv, tree) for _ in range(args.runs)]
            daemon = Run(tree, rules, state)
            try:
                daemon.wait_started()
                daemon.scrape()  # the first scrape warms prometheus_client's imports
                scrape[(name, size)] = [daemon.scrape() for _ in range(args.runs)]
            finally:
                daemon.stop()
        for name, _ in trees(args, base):
            print(f"  {size:>9,} {name:9} status  {spread(cli[(name, size)], ' s')}")
            print(f"  {'':>9} {name:9} scrape  {spread(scrape[(name, size)], ' s')}")
    low, high = min(args.sizes), max(args.sizes)
    for name, _ in trees(args, base):
        for label, table in (("status", cli), ("/metrics", scrape)):
            ratio = statistics.median(table[(name, high)]) / statistics.median(table[(name, low)])
            print(f"  {name:9} {label:8} {high:,} / {low:,} = {ratio:.2f}")


def part_rss(args: argparse.Namespace, base: Path, tmp: Path) -> None:
    print(f"\n== RSS of `emitter run` (this tree), intake refusing, {args.hold:.0f} s held (MB)")
    rules = manual_rules(tmp)
    full = tmp / "rss-full"
    fill(full, max(args.sizes))
    seen: dict[str, list[dict[str, float]]] = {"empty": [], "full": []}
    for run in range(args.runs):
        for label in ("empty", "full"):
            state = tmp / f"rss-{label}-{run}"
            if label == "full":
                shutil.copytree(full, state)
            else:
                state.mkdir()
            daemon = Run(ROOT, rules, state)
            try:
                daemon.wait_started()
                end = time.monotonic() + args.hold
                while time.monotonic() < end:
                    time.sleep(1)
                    daemon.scrape()
                seen[label].append(proc_status(daemon.proc.pid))
            finally:
                daemon.stop()
            shutil.rmtree(state)
    for label in ("empty", "full"):
        what = "0 events" if label == "empty" else f"{max(args.sizes):,} undelivered"
        for key in ("VmRSS", "VmHWM"):
            print(f"  {what:22} {key}  {spread([s[key] for s in seen[label]], ' MB', '{:.1f}')}")
    grown = [f["VmHWM"] - e["VmHWM"] for e, f in zip(seen["empty"], seen["full"], strict=True)]
    high = statistics.median(s["VmHWM"] for s in seen["full"])
    print(f"  peak over the empty daemon: {spread(grown, ' MB', '{:.1f}')}; target peak <= 60 MB"
          f" ({'met' if high <= 60 else 'NOT met'})")


def file_rules(folder: Path, count: int = 1000) -> Path:
    rules, logs = folder / "rules", folder / "logs"
    rules.mkdir(parents=True)
    logs.mkdir()
    for n in range(10):
        (logs / f"app{n}.log").write_bytes(b"")
    for f in range(count // 10):
        body = "".join(RULE.format(n=n, log=logs / f"app{n % 10}.log")
                       for n in range(f * 10, f * 10 + 10))
        (rules / f"r{f:03}.yaml").write_text("version: 1\nrules:\n" + body, encoding="utf-8")
    return rules


def part_start(args: argparse.Namespace, base: Path, tmp: Path) -> None:
    print("\n== 1,000 file rules: `emitter run` to /healthz ok vs `emitter validate` (s)")
    rules = file_rules(tmp / "start")
    seen: dict[tuple[str, str], list[float]] = {}
    for run in range(args.runs):
        for name, tree in trees(args, base):
            validate = [sys.executable, "-m", "emitter", "validate", str(rules)]
            seen.setdefault((name, "validate"), []).append(timed(validate, tree))
            state = tmp / f"start-state-{name[0]}-{run}"
            daemon = Run(tree, rules, state)
            try:
                seen.setdefault((name, "run"), []).append(daemon.wait_ok())
            finally:
                daemon.stop()
    for name, _ in trees(args, base):
        v, r = seen[(name, "validate")], seen[(name, "run")]
        ratios = [b / a for a, b in zip(v, r, strict=True)]
        print(f"  {name:9} validate {spread(v, ' s')}")
        print(f"  {'':9} run      {spread(r, ' s')}")
        print(f"  {'':9} run / validate {spread(ratios, 'x', '{:.2f}')}; target <= 2x")


PARTS: dict[str, Callable[[argparse.Namespace, Path, Path], None]] = {
    "enqueue": part_enqueue, "status": part_status, "rss": part_rss, "start": part_start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--hold", type=float, default=20.0,
                        help="rss: seconds the daemon holds the backlog before sampling")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    chosen = args.parts.split(",")
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    with baseline_tree(args.baseline) as base, \
            tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        print(f"baseline tree: {args.baseline}; this tree: {ROOT}; {os.cpu_count()} CPUs")
        for name in chosen:
            PARTS[name](args, base, Path(tmp))


if __name__ == "__main__":
    main()
