"""The file trigger's line matcher against a plain Hyperscan prototype (issue 13 target 3).

    .venv/bin/python benchmarks/bench_matcher.py [--runs 3] [--mb 24] [--rules 10,100,1000]
        [--widths 107,200,1024]

Cells: 10, 100 and 1,000 rules (benchmarks/gen_log.py: 10 rule families with named groups x
n/10 services) over lines of about 107 bytes (the historical log), 200 bytes and 1 KB (padded
with key=value fields), about 3 % matching; about --mb MB of lines per cell, scanned in 4 MiB
chunks as the file trigger reads them. Rows of one run, each cell timed back to back:
  (a) prototype: the straightforward Hyperscan approach, written plainly here: one
      hs.Database of every rule's regex (HS_FLAG_SINGLEMATCH | HS_FLAG_UTF8; a rule refused
      so is compiled with HS_FLAG_PREFILTER), one scan per line, then `re` on the lines it
      reports for the named groups;
  (b) emitter pure re: LineMatcher(accelerate=False), what the default install runs;
  (c) emitter + hyperscan: LineMatcher with the optional accelerator (the `hyperscan` extra).
Printed per cell: lines/s median of --runs runs and the spread, and the ratios (c)/(a) and
(b)/(a) taken within each run (target: >= 1.0). Hits are counted per row; (b) and (c) must
be equal hit for hit. Without hyperscan importable, only (b) is measured and the bench says so.
Build (compile) times are printed apart: they are paid once when the trigger starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gen_log  # noqa: E402

from emitter.triggers.linematch import LineHit, LineMatcher, LineRule  # noqa: E402

try:
    import hyperscan as hs
except ImportError:
    hs = None

CHUNK = 4 << 20


class Prototype:
    """The plain approach: all regexes in one Hyperscan database, one scan per line."""

    def __init__(self, rules: list[LineRule]) -> None:
        assert hs is not None
        self.rules = rules
        exact = hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_UTF8
        flags = []
        for rule in rules:  # a regex Hyperscan cannot take exactly goes in as a prefilter
            try:
                hs.Database().compile(expressions=[rule.match.pattern.encode()], flags=exact)
                flags.append(exact)
            except hs.error:
                flags.append(exact | hs.HS_FLAG_PREFILTER)
        self.db = hs.Database()
        self.db.compile(expressions=[r.match.pattern.encode() for r in rules],
                        ids=list(range(len(rules))), flags=flags)

    def scan(self, chunk: bytes, first_line_number: int) -> list[tuple[int, str, Any]]:
        ids: list[int] = []

        def on_match(rule: int, start: int, end: int, flags: int, ctx: object) -> None:
            ids.append(rule)

        hits = []
        scan = self.db.scan
        for offset, raw in enumerate(chunk.split(b"\n")[:-1]):
            scan(raw, match_event_handler=on_match)
            if ids:
                line = raw.decode("utf-8", "replace")
                for rule in sorted(ids):
                    m = self.rules[rule].match.search(line)
                    if m is not None:
                        hits.append((first_line_number + offset, self.rules[rule].rule_id,
                                     m.groupdict()))
                ids.clear()
        return hits


def chunks(data: bytes) -> Iterator[tuple[bytes, int]]:
    start, line = 0, 1
    while start < len(data):
        cut = data.rfind(b"\n", start, start + CHUNK) + 1
        yield data[start:cut], line
        line += data.count(b"\n", start, cut)
        start = cut


def timed_scan(scan: Callable[[bytes, int], list[Any]], data: bytes) -> tuple[float, list[Any]]:
    hits: list[Any] = []
    started = time.perf_counter()
    for chunk, line in chunks(data):
        hits += scan(chunk, line)
    return time.perf_counter() - started, hits


def key(hit: LineHit) -> tuple[int, str, Any]:
    return hit.line_number, hit.rule_id, dict(hit.groups)


def build(name: str, make: Callable[[], Any], builds: dict[str, float]) -> Any:
    started = time.perf_counter()
    made = make()
    builds[name] = time.perf_counter() - started
    return made


def cell(n_rules: int, width: int, mb: float, runs: int) -> dict[str, list[float]]:
    count = int(mb * 1e6 / width)
    data = "".join(line + "\n" for line in gen_log.lines(
        count, seed=11, rules=n_rules, width=0 if width == 107 else width)).encode()
    rules = [LineRule(rid, rx) for rid, rx in gen_log.compiled_rules(n_rules)]
    builds: dict[str, float] = {}
    rows: dict[str, Callable[[bytes, int], list[Any]]] = {}
    if hs is not None:
        rows["a"] = build("a", lambda: Prototype(rules), builds).scan
    rows["b"] = build("b", lambda: LineMatcher(rules, data[:65536], accelerate=False),
                      builds).scan
    if hs is not None:
        rows["c"] = build("c", lambda: LineMatcher(rules, data[:65536], accelerate=True),
                          builds).scan
    rates: dict[str, list[float]] = {name: [] for name in rows}
    last: dict[str, list[Any]] = {}
    for _ in range(runs):
        for name, scan in rows.items():
            seconds, last[name] = timed_scan(scan, data)
            rates[name].append(count / seconds)
    found = {name: len(hits) for name, hits in last.items()}
    if "c" in last:
        assert [key(h) for h in last["c"]] == [key(h) for h in last["b"]], "(c) != (b)"
    lines = data.count(b"\n")
    print(f"\n{n_rules} rules, {width}-byte lines ({len(data) / lines:.0f} B mean, {lines:,} "
          f"lines, {100 * found['b'] / lines:.1f}% hits): build " +
          ", ".join(f"({k}) {v:.2f} s" for k, v in builds.items()) +
          "; hits " + ", ".join(f"({k}) {v}" for k, v in found.items()))
    for name, label in (("a", "hyperscan prototype"), ("b", "emitter pure re"),
                        ("c", "emitter + hyperscan")):
        if name in rates:
            show(f"({name}) {label}", rates[name], "lines/s")
    if "a" in rates:
        for name in ("c", "b"):
            show(f"({name})/(a)", [x / y for x, y in zip(rates[name], rates["a"])], "(>= 1.0)")
    return rates


def show(name: str, values: list[float], unit: str) -> None:
    fmt = "{:,.2f}" if values and max(values) < 100 else "{:,.0f}"
    print(f"  {name:24} median {fmt.format(statistics.median(values)):>12} {unit}  spread "
          f"{fmt.format(min(values))}-{fmt.format(max(values))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=float, default=24)
    parser.add_argument("--rules", default="10,100,1000")
    parser.add_argument("--widths", default="107,200,1024")
    args = parser.parse_args()
    if hs is None:
        print("hyperscan is not importable (pip install 'dd-event-emitter[hyperscan]'): "
              "only the pure-re rows are measured")
    for n_rules in map(int, args.rules.split(",")):
        for width in map(int, args.widths.split(",")):
            cell(n_rules, width, args.mb, args.runs)


if __name__ == "__main__":
    main()
