"""Wall time of `emitter validate` (a real subprocess) on 1,000 rules in 100 files, against a
schema-only checker run the same way in the same run: a subprocess that parses every file
with PyYAML (libyaml when available) and checks it with jsonschema against
rules.schema.json, as a check-jsonschema-style tool would (no templates, no rendering).

By default every rule's templates are distinct (the rule number is inside each of them, and
two need full Jinja2), so no compiled template is shared between rules: the worst case for
emitter's compile cache. `--shared-templates` writes the deploy rule 1,000 times with only
its id changed (what bench_load.py does), where one compile serves every rule.

`--jobs N` is passed on to `emitter validate` (default: its own choice, one process per CPU
for 100 rules or more each, at most 4); `--jobs 1` measures one process.

Run: .venv/bin/python benchmarks/bench_validate_many.py [--runs 5] [--shared-templates] [--jobs N]
Target: < 2 s.

`--scale 1000,10000` instead times `emitter validate` on each rule count (10 rules a file)
against one rule in one file (start-up: interpreter, imports), `--runs` runs each, and prints
the cost per rule beyond start-up and its ratio between the largest and the smallest count
(issue 13 target 7: <= 1 ms a rule, linear).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RULE = """\
  - id: deploy-{n}
    description: Deploy number {n} finished
    trigger: {{type: manual}}
    params:
      service: {{type: string, example: payments}}
      version: {{type: string, example: "1.4.{n}"}}
      outcome: {{type: string, enum: [success, failure], example: success}}
    when: "outcome in ['success', 'failure'] and {n} >= 0"
    event:
      title: "Deployed {{{{ service }}}} {{{{ version }}}} (#{n})"
      text: "%%% \\n**{{{{ service }}}}** {{{{ version }}}} finished: {{{{ outcome }}}} #{n}\\n %%%"
      alert_type: "{{{{ 'success' if outcome == 'success' else 'error' }}}}{{# {n} #}}"
      tags: ["service:{{{{ service }}}}", "version:{{{{ version }}}}", "rule:{n}"]
      aggregation_key: "deploy-{{{{ service | lower }}}}-{n}"
"""

SCHEMA_ONLY = """
import json, sys, yaml, jsonschema
from emitter.schemas import load_schema
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
validator = jsonschema.Draft202012Validator(load_schema("rules"))
errors = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as handle:
        errors += sum(1 for _ in validator.iter_errors(yaml.load(handle, Loader=loader)))
print(errors)
"""


SHARED = """\
  - id: deploy-{n}
    description: A deploy finished
    trigger: {{type: manual}}
    params:
      service: {{type: string, example: payments}}
      version: {{type: string, example: "1.4.2"}}
      outcome: {{type: string, enum: [success, failure], example: success}}
    when: "outcome in ['success', 'failure']"
    event:
      title: "Deployed {{{{ service }}}} {{{{ version }}}}"
      text: "%%% \\n**{{{{ service }}}}** {{{{ version }}}} finished: *{{{{ outcome }}}}*\\n %%%"
      alert_type: "{{{{ 'success' if outcome == 'success' else 'error' }}}}"
      tags: ["service:{{{{ service }}}}", "version:{{{{ version }}}}"]
      aggregation_key: "deploy-{{{{ service }}}}"
"""


def make(folder: Path, files: int = 100, per_file: int = 10, rule: str = RULE) -> list[str]:
    paths = []
    for f in range(files):
        head = 'version: 1\ndefaults:\n  event: {tags: ["team:platform"]}\nrules:\n'
        body = "".join(rule.format(n=f * per_file + i) for i in range(per_file))
        path = folder / f"rules{f:03}.yaml"
        path.write_text(head + body, encoding="utf-8")
        paths.append(str(path))
    return paths


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - start, done


def scale(counts: list[int], runs: int, rule: str, jobs: int | None) -> None:
    """Wall time per rule beyond start-up at each count in `counts`."""
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for n in [1, *counts]:
            folders[n] = Path(tmp, str(n))
            folders[n].mkdir()
            make(folders[n], files=max(1, n // 10), per_file=min(10, n), rule=rule)
        argv = [sys.executable, "-m", "emitter", "validate", "--format", "text"]
        if jobs is not None:
            argv += ["--jobs", str(jobs)]
        seen: dict[int, list[float]] = {n: [] for n in folders}
        for _ in range(runs):
            for n, folder in folders.items():
                seconds, done = timed([*argv, str(folder)])
                if done.returncode != 0:
                    sys.exit(f"emitter validate failed on {n} rules:\n{done.stdout}{done.stderr}")
                seen[n].append(seconds)
    base = statistics.median(seen[1])
    print(f"emitter validate, 1 rule (start-up): median {base:.3f} s "
          f"(runs: {', '.join(f'{s:.3f}' for s in seen[1])})")
    per: dict[int, float] = {}
    for n in counts:
        per[n] = (statistics.median(seen[n]) - base) / n * 1000
        runs_ms = ", ".join(f"{(s - base) / n * 1000:.2f}" for s in seen[n])
        print(f"  {n:>6,} rules: median {statistics.median(seen[n]):.2f} s; "
              f"{per[n]:.2f} ms per rule beyond start-up (runs: {runs_ms})")
    low, high = min(counts), max(counts)
    print(f"per-rule cost {high:,} / {low:,} = {per[high] / per[low]:.2f} (1.0 is linear); "
          f"target <= 1 ms per rule ({'met' if max(per.values()) <= 1 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shared-templates", action="store_true",
                        help="1,000 copies of the deploy rule (templates repeat)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes for emitter validate (default: its own choice)")
    parser.add_argument("--scale", metavar="N,N", help="rule counts to time per rule instead")
    args = parser.parse_args()
    if args.scale:
        scale([int(n) for n in args.scale.split(",")], args.runs,
              SHARED if args.shared_templates else RULE, args.jobs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = make(Path(tmp), rule=SHARED if args.shared_templates else RULE)
        ours_argv = [sys.executable, "-m", "emitter", "validate", "--format", "text", tmp]
        if args.jobs is not None:
            ours_argv[4:4] = ["--jobs", str(args.jobs)]
        base_argv = [sys.executable, "-c", SCHEMA_ONLY, *paths]
        ours, base = [], []
        for _ in range(args.runs):
            seconds, done = timed(ours_argv)
            if done.returncode != 0:
                sys.exit(f"emitter validate failed ({done.returncode}):\n"
                         f"{done.stdout}{done.stderr}")
            ours.append(seconds)
            seconds, done = timed(base_argv)
            if done.returncode != 0 or done.stdout.strip() != "0":
                sys.exit(f"schema-only baseline failed:\n{done.stdout}{done.stderr}")
            base.append(seconds)
        summary = done.stdout.strip()
        last = subprocess.run(ours_argv, capture_output=True, text=True, timeout=300)
    o, b = statistics.median(ours), statistics.median(base)
    kind = "shared" if args.shared_templates else "distinct"
    kind += " templates" + (f", --jobs {args.jobs}" if args.jobs is not None else "")
    print(f"1,000 rules in 100 files, {kind}; emitter says: "
          f"{last.stdout.strip().splitlines()[-1]}")
    print(f"  emitter validate (load, compile, render 2 example sets/rule, check, lint): "
          f"median {o:.2f} s  (runs: {', '.join(f'{s:.2f}' for s in ours)})")
    print(f"  schema-only baseline (libyaml + jsonschema, no templates): median {b:.2f} s "
          f"(found {summary} errors)")
    print(f"ratio emitter / schema-only = {o / b:.2f}; target: emitter < 2 s "
          f"({'met' if o < 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
