"""File trigger throughput: 100 rules over a 1,000,000-line log, against the naive loop.

    python benchmarks/bench_filetail.py [--log /tmp/emitter-bench.log] [--naive-lines 200000]

Rows, all measured in this run on the same file:
- bare read: reading the file in 4 MiB chunks and counting newlines (the ceiling);
- matcher:   LineMatcher.scan over the whole file in 4 MiB chunks (what the tailer runs);
- trigger:   the real FileTailRunner (from_beginning, StateStore, Firing objects, a dispatch
             that only counts), one poll_once() to the end of the file;
- naive:     text-mode line iteration trying every compiled regex on every line
             (on the first --naive-lines lines, to keep the run short; lines/s is a rate).
The matcher's hits on the naive subset are checked to be exactly the naive loop's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gen_log  # noqa: E402

from emitter.problems import Location  # noqa: E402
from emitter.rules.model import FileTrigger, Rule  # noqa: E402
from emitter.state.store import StateStore  # noqa: E402
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


def matcher_run(path: str, rules: list[LineRule]) -> tuple[int, float]:
    with open(path, "rb") as fh:
        sample = fh.read(64 << 10)
    started = time.perf_counter()
    matcher = LineMatcher(rules, sample)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "emitter-bench.log"))
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--naive-lines", type=int, default=200_000)
    args = parser.parse_args()
    if not os.path.exists(args.log):
        print(f"generating {args.lines} lines into {args.log} ...")
        gen_log.write(args.log, args.lines)
    compiled = gen_log.compiled_rules()
    rules = [LineRule(rid, rx) for rid, rx in compiled]

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
