"""`emitter test` over 1,000 cases: wall time of the real CLI in a subprocess (target < 3 s).

Cases cycle through every trigger kind (manual, file lines with throttling, webhook with
foreach, command results with `on: change`, schedule, stdin) against the fixture rules in
tests/ruletests/rules.yaml, spread over 10 test files. The baseline, measured in the same
run, is `emitter test` on one file with a single case (interpreter start, imports, rule
load): the ratio shows what the 1,000 cases cost on top of starting up.

    .venv/bin/python benchmarks/bench_ruletest.py [--cases 1000[,10000]] [--repeat 3]

With several counts (`--cases 1000,10000`) it prints the cost per case beyond start-up at
each and its ratio between the largest and the smallest (issue 13 target 7: <= 1 ms a case,
linear), each count's runs interleaved with the baseline's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "tests" / "ruletests" / "rules.yaml"

CASES = [
    """  - name: manual {i}
    rule: manual-deploy
    params: {{service: svc{i}, outcome: success}}
    expect: {{events: [{{title: "Deploy of svc{i}: success", alert_type: success}}]}}
""",
    """  - name: file {i}
    rule: nginx-upstream-errors
    lines: ["t [info] ok", "t [error] upstream u{i} timed out", "t [error] upstream u{i} timed out"]
    expect: {{events: [{{title: "Upstream u{i} timed out"}}]}}
""",
    """  - name: webhook {i}
    rule: am-alerts
    webhook:
      headers: {{User-Agent: am}}
      query: {{source: prod}}
      body: {{status: firing, receiver: r, alerts: [{{labels: {{alertname: A{i}, instance: x}},
              annotations: {{summary: s}}}}, {{labels: {{alertname: B, instance: y}},
              annotations: {{summary: s}}}}]}}
    expect: {{events: [{{title: A{i} on x}}, {{title: B on y}}]}}
""",
    """  - name: command {i}
    rule: disk-check
    command_results: [{{exit_code: 0}}, {{exit_code: 1, stdout: "disk {i}"}}, {{exit_code: 1}}]
    expect: {{events: [{{text: "disk {i}", alert_type: error}}]}}
""",
    """  - name: schedule {i}
    rule: nightly-report
    scheduled_times: ["2026-01-02T02:00:00Z"]
    expect: {{events: [{{title: Nightly report for 2026-01-02}}]}}
""",
    """  - name: stdin {i}
    rule: stdin-builds
    stdin: [{{number: {i}, result: ok, url: u, pipeline: p}}, {{number: 0, result: skipped,
             url: u, pipeline: p}}]
    expect: {{events: [{{title: Build {i} ok}}]}}
""",
]


def write_suite(directory: Path, cases: int, files: int) -> None:
    shutil.copy(RULES, directory / "rules.yaml")
    per_file = max(1, cases // files)
    written = 0
    for f in range(files):
        count = per_file if f < files - 1 else cases - written
        body = "".join(CASES[(written + n) % len(CASES)].format(i=written + n)
                       for n in range(count))
        (directory / f"suite{f:02d}.test.yaml").write_text(
            "version: 1\nrule_files: [rules.yaml]\ntests:\n" + body, encoding="utf-8")
        written += count


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="1000", help="case count(s), comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    counts = [int(n) for n in opts.cases.split(",")]
    emitter = [sys.executable, "-m", "emitter", "test"]
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp, "small")
        small.mkdir()
        write_suite(small, 1, 1)
        suites = {}
        for n in counts:
            suites[n] = Path(tmp, f"cases{n}")
            suites[n].mkdir()
            write_suite(suites[n], n, 10)
        timed([*emitter, str(small)])  # warm the file cache and bytecode
        seen: dict[int, list[float]] = {0: [], **{n: [] for n in counts}}
        for _ in range(opts.repeat):
            seen[0].append(timed([*emitter, str(small)]))
            for n in counts:
                seen[n].append(timed([*emitter, str(suites[n])]))
    base = statistics.median(seen[0])
    print(f"emitter test, 1 case (baseline: start-up, imports, rule load): {base:.3f} s "
          f"(runs {', '.join(f'{s:.3f}' for s in seen[0])})")
    per = {}
    for n in counts:
        full = statistics.median(seen[n])
        per[n] = (full - base) / n * 1000
        print(f"emitter test, {n:,} cases in 10 files: {full:.3f} s (runs "
              f"{', '.join(f'{s:.3f}' for s in seen[n])}); ratio {full / base:.2f}x the "
              f"baseline; {per[n]:.2f} ms per case beyond start-up")
    if len(counts) > 1:
        low, high = min(counts), max(counts)
        print(f"per-case cost {high:,} / {low:,} = {per[high] / per[low]:.2f} (1.0 is linear); "
              f"target <= 1 ms per case ({'met' if max(per.values()) <= 1 else 'NOT met'})")


if __name__ == "__main__":
    main()
