"""File trigger throughput: 100 rules over a 1,000,000-line log, against the naive loop.

    python benchmarks/bench_filetail.py [--log /tmp/emitter-bench.log] [--naive-lines 200000]
    python benchmarks/bench_filetail.py --daemon [--runs 3] [--profile DIR]

Rows, all measured in this run on the same file:
- bare read: reading the file in 4 MiB chunks and counting newlines (the ceiling);
- matcher:   LineMatcher.scan over the whole file in 4 MiB chunks (what the tailer runs);
- trigger:   the real FileTailRunner (from_beginning, StateStore, Firing objects, a dispatch
             that only counts), one poll_once() to the end of the file;
- naive:     text-mode line iteration trying every compiled regex on every line
             (on the first --naive-lines lines, to keep the run short; lines/s is a rate).
The matcher's hits on the naive subset are checked to be exactly the naive loop's.

--daemon (issue 13 target 2: daemon >= 0.5x the matcher alone): per run, the matcher row
above, then the real `emitter run` (a subprocess, the same 100 rules as YAML, delivering to
benchmarks/fast_intake.py) following an empty file to which the whole log is appended in
4 MiB writes; timed from the first write until the daemon's /metrics counts every matching
line's event queued (read, matched, rendered, committed to the outbox; the senders deliver
meanwhile). Both with the default matcher and with EMITTER_HYPERSCAN=0 (pure re). Prints
lines/s per row, the ratios daemon/matcher within each run, median and spread.
--profile DIR: py-spy (raw, --gil) on the first run's daemons; the top functions are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import bench_daemon  # noqa: E402
import gen_log  # noqa: E402

from emitter.delivery.backend import STATE_FILE  # noqa: E402
from emitter.problems import Location  # noqa: E402
from emitter.rules.model import FileTrigger, Rule  # noqa: E402
from emitter.state.store import StateStore  # noqa: E402
from emitter.triggers import hsmatch  # noqa: E402
from emitter.triggers.filetail import FileTailRunner  # noqa: E402
from emitter.triggers.linematch import LineMatcher, LineRule, naive_scan  # noqa: E402

CHUNK = 4 << 20


def chunks(path: str):
    with open(path, "rb") as fh:
        rest = b""
        while block := fh.read(CHUNK):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            yield data[:cut]
            rest = data[cut:]


def bare_read(path: str) -> int:
    return sum(c.count(b"\n") for c in chunks(path))


def matcher_run(path: str, rules: list[LineRule], accelerate: bool | None = None
                ) -> tuple[int, float]:
    with open(path, "rb") as fh:
        sample = fh.read(64 << 10)
    started = time.perf_counter()
    matcher = LineMatcher(rules, sample, accelerate=accelerate)
    build = time.perf_counter() - started
    hits, line = 0, 1
    for c in chunks(path):
        hits += len(matcher.scan(c, line))
        line += c.count(b"\n")
    return hits, build


def trigger_run(path: str) -> int:
    loc = Location("bench.yaml", 1, 1)
    rules = [Rule(id=rid, location=loc, event={},
                  trigger=FileTrigger(path=path, match=rx, from_beginning=True))
             for rid, rx in gen_log.compiled_rules()]
    count = [0]
    with tempfile.TemporaryDirectory() as state, StateStore(Path(state) / "s.db") as store:
        runner = FileTailRunner(rules, lambda fs: count.__setitem__(0, count[0] + len(fs)),
                                lambda r, m: print("error:", m), store)
        runner.poll_once()
        runner.stop(1)
    return count[0]


def naive_run(path: str, rules: list[tuple[str, re.Pattern[str]]], limit: int) -> tuple[int, int]:
    hits = lines = 0
    with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:
        for line in fh:
            line = line.rstrip("\n")
            for _, rx in rules:
                if rx.search(line):
                    hits += 1
            lines += 1
            if lines >= limit:
                break
    return hits, lines


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def daemon_rules(log: Path) -> str:
    out = ["version: 1", "rules:"]
    for rid, rx in gen_log.RULES:
        out += [f"  - id: {rid}",
                f"    trigger: {{type: file, path: {json.dumps(str(log))}, "
                f"match: {json.dumps(rx)}}}",
                f"    event: {{title: \"{rid} at line {{{{ line_number }}}}\", "
                "text: \"{{ line }}\", tags: [\"bench:filetail\"]}"]
    return "\n".join(out) + "\n"


def saved_offset(state: Path) -> int:
    """The file trigger's saved position, read from its state store like any other reader
    (WAL: the daemon is not held up). Saved only after the events of the lines before it are
    in the outbox."""
    path = state / STATE_FILE
    if not path.exists():
        return -1
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT value FROM kv WHERE namespace = 'file'").fetchall()
    except sqlite3.Error:
        return -1
    finally:
        db.close()
    return max((json.loads(v)["offset"] for (v,) in rows), default=-1)


def queued(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return sum(int(float(v)) for v in
               re.findall(r"^emitter_events_queued_total\{[^}]*\} (\S+)$", text, re.M))


def daemon_run(log_path: str, hits: int, intake: Any, env_extra: dict[str, str],
               profile: Path | None) -> float:
    """Lines/s of `emitter run` reading the whole log appended to the file it follows."""
    data_lines = 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        log = tmp / "app.log"
        log.write_bytes(b"")
        (tmp / "rules.yaml").write_text(daemon_rules(log))
        port = bench_daemon.free_port()
        env = {**os.environ, "DATADOG_HOST": intake.url, "DD_API_KEY": bench_daemon.KEY,
               "HOME": tmp_name, **env_extra}
        with (tmp / "stderr.log").open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "emitter", "run", str(tmp / "rules.yaml"), "--state-dir",
                 str(tmp / "state"), "--listen", f"127.0.0.1:{port}"],
                cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=err)
            spy = None
            try:
                _wait_started(port, proc, tmp)
                warm = b"2026-11-26T00:00:00.000Z CRITICAL [payments] warm-up\n"
                with log.open("ab") as fh:
                    fh.write(warm)
                _wait(lambda: saved_offset(tmp / "state") == len(warm), "the warm-up line")
                if profile is not None:
                    spy = bench_daemon._spy(proc.pid, profile)
                started = time.perf_counter()
                with open(log_path, "rb") as src, log.open("ab", buffering=0) as dst:
                    while block := src.read(CHUNK):
                        dst.write(block)
                        data_lines += block.count(b"\n")
                size = log.stat().st_size
                _wait(lambda: saved_offset(tmp / "state") == size, "the whole log", poll=0.01)
                elapsed = time.perf_counter() - started
                if queued(port) != 1 + hits:
                    raise SystemExit(f"queued {queued(port)} events, expected {1 + hits}")
            finally:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(60)
                proc.send_signal(signal.SIGTERM)
                proc.wait(120)
    return data_lines / elapsed


def _wait_started(port: int, proc: subprocess.Popen[bytes], tmp: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            bench_daemon.get_json(f"http://127.0.0.1:{port}/healthz")
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("emitter run did not start:\n" + (tmp / "stderr.log").read_text()[-3000:])


def _wait(done: Any, what: str, poll: float = 0.1, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(poll)


def daemon_main(args: argparse.Namespace, rules: list[LineRule]) -> None:
    intake = bench_daemon.Intake()
    runs: list[dict[str, float]] = []
    try:
        for k in range(args.runs):
            row: dict[str, float] = {}
            for name, extra in (("hyperscan", {}), ("pure re", {hsmatch.SWITCH: "0"})):
                if name == "hyperscan" and not hsmatch.available():
                    continue
                accelerate = name == "hyperscan"
                (hits, _build), t_match = timed(matcher_run, args.log, rules, accelerate)
                row[f"matcher ({name})"] = total_lines(args.log) / t_match
                spy = args.profile / f"daemon-{name.replace(' ', '')}.txt" \
                    if args.profile and k == 0 else None
                row[f"daemon ({name})"] = daemon_run(args.log, hits, intake, extra, spy)
            runs.append(row)
            print(f"run {k + 1}: " + ", ".join(f"{n} {v:,.0f}" for n, v in row.items()),
                  flush=True)
    finally:
        intake.close()
    print(f"\nmedian of {len(runs)} runs, lines/s ({args.log}, 100 rules):")
    for name in runs[0]:
        _line(name, [r[name] for r in runs], "lines/s")
    for name in ("hyperscan", "pure re"):
        if f"daemon ({name})" in runs[0]:
            _line(f"daemon/matcher ({name})", [r[f"daemon ({name})"] / r[f"matcher ({name})"]
                                                for r in runs], "(target >= 0.5)")
    if args.profile:
        for path in sorted(args.profile.glob("daemon-*.txt")):
            bench_daemon.summarize_profile(path, top=24)


def _line(name: str, values: list[float], unit: str) -> None:
    fmt = "{:,.2f}" if max(values) < 100 else "{:,.0f}"
    print(f"  {name:28} median {fmt.format(statistics.median(values)):>12} {unit}  spread "
          f"{fmt.format(min(values))}-{fmt.format(max(values))}")


def total_lines(path: str) -> int:
    return sum(c.count(b"\n") for c in chunks(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "emitter-bench.log"))
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--naive-lines", type=int, default=200_000)
    parser.add_argument("--daemon", action="store_true", help="issue 13 target 2 rows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    if not os.path.exists(args.log):
        print(f"generating {args.lines} lines into {args.log} ...")
        gen_log.write(args.log, args.lines)
    compiled = gen_log.compiled_rules()
    rules = [LineRule(rid, rx) for rid, rx in compiled]
    if args.daemon:
        daemon_main(args, rules)
        return

    total, t_bare = timed(bare_read, args.log)
    (hits, build), t_match = timed(matcher_run, args.log, rules)
    fired, t_trig = timed(trigger_run, args.log)
    (naive_hits, naive_lines), t_naive = timed(naive_run, args.log, compiled, args.naive_lines)

    with open(args.log, "rb") as fh:
        head = b"".join(fh.readline() for _ in range(naive_lines))
    same = LineMatcher(rules, head[:65536]).scan(head, 1) == naive_scan(rules, head, 1)

    rate = {name: n / t for name, n, t in [("bare", total, t_bare), ("matcher", total, t_match),
                                          ("trigger", total, t_trig),
                                          ("naive", naive_lines, t_naive)]}
    print(f"log: {args.log}: {total} lines, {os.path.getsize(args.log) / 1e6:.0f} MB, "
          f"{len(rules)} rules")
    print(f"bare read : {rate['bare']:>12,.0f} lines/s")
    print(f"matcher   : {rate['matcher']:>12,.0f} lines/s  ({hits} hits, build {build:.2f} s)")
    print(f"trigger   : {rate['trigger']:>12,.0f} lines/s  ({fired} firings)")
    print(f"naive loop: {rate['naive']:>12,.0f} lines/s  ({naive_hits} hits in the first "
          f"{naive_lines} lines)")
    print(f"ratio matcher/naive: {rate['matcher'] / rate['naive']:.1f}x, "
          f"trigger/naive: {rate['trigger'] / rate['naive']:.1f}x")
    print(f"fast path == naive loop on the first {naive_lines} lines: {same}")


if __name__ == "__main__":
    main()
