"""Wall time of `emitter fire` versus datadogpy's `dog event post`, same event, same intake.

Both CLIs run as fresh subprocesses (that is how scripts and CI use them), interleaved, against
the loopback fake intake running in this process. Prints each tool's median and the ratio
emitter/dog (target: <= 0.75), plus, for scale, Python's bare start-up, `import requests` alone
(dog pays it to post; emitter's lean transport does not, without a proxy), `emitter fire
--dry-run` (everything but the HTTP client) and `emitter fire --state-dir` (committed to the
durable outbox first, as issue 3 has it).

PYTHONDONTWRITEBYTECODE is dropped for the children so the warm-up run leaves .pyc files, as
an installed package has; otherwise every edited module would be recompiled on every run.

    .venv/bin/python benchmarks/bench_fire.py [-n 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.intake import INTAKE_KEY, FakeIntake  # noqa: E402

BIN = Path(sys.executable).parent
RULE = ["rules/deploy.yaml", "--rule", "deploy-finished",
        "--var", "service=payments", "--var", "version=1.4.2", "--var", "outcome=success"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def dog_command(event: dict[str, object]) -> list[str]:
    """`dog event post` with the same fields emitter posts."""
    cmd = [str(BIN / "dog"), "event", "post", "--no_host"]
    if event.get("tags"):
        cmd += ["--tags", ",".join(str(t) for t in event["tags"])]  # type: ignore[attr-defined]
    for field, flag in (("aggregation_key", "--aggregation_key"), ("alert_type", "--alert_type"),
                        ("priority", "--priority"), ("source_type_name", "--type")):
        if field in event:
            cmd += [flag, str(event[field])]
    return [*cmd, str(event["title"]), str(event["text"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="repetitions of each tool")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bench-fire-home-")
    with FakeIntake(INTAKE_KEY) as intake:
        Path(home, ".dogrc").write_text(
            f"[Connection]\napikey = {INTAKE_KEY}\nappkey = unused\napi_host = {intake.url}\n"
        )
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DD_", "DATADOG_")) and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(HOME=home, DD_API_KEY=INTAKE_KEY, DATADOG_HOST=intake.url)
        emitter = [str(BIN / "emitter"), "fire", *RULE]
        dry = subprocess.run([*emitter, "--dry-run"], env=env, cwd=ROOT, capture_output=True,
                             text=True, check=True)
        dog = dog_command(json.loads(dry.stdout))
        commands = {
            "emitter fire": emitter,
            "dog event post": dog,
            "python": [sys.executable, "-c", "pass"],
            "import requests": [sys.executable, "-c", "import requests"],
            "fire --dry-run": [*emitter, "--dry-run"],
            "fire --state-dir": [*emitter, "--state-dir", str(Path(home, "state"))],
        }
        for cmd in commands.values():  # warm the page cache and .pyc files
            timed(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.n):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, env))
        sent = intake.events
    expected = 3 * (args.n + 1)  # emitter fire, dog, fire --state-dir
    assert len(sent) == expected, f"intake got {len(sent)} events, expected {expected}"
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        spread = statistics.quantiles(times[name], n=10) if args.n >= 10 else [value, value]
        print(f"{name:17s} median {value * 1000:7.1f} ms  (p10 {spread[0] * 1000:.1f}, "
              f"p90 {spread[-1] * 1000:.1f}; n={args.n})")
    ratio = medians["emitter fire"] / medians["dog event post"]
    print(f"ratio emitter/dog: {ratio:.2f} (target <= 0.75)")
    dry_ratio = medians["fire --dry-run"] / medians["dog event post"]
    print(f"ratio fire --dry-run/dog: {dry_ratio:.2f} (all of emitter's own start-up and work, "
          "no HTTP client)")
    queued_ratio = medians["fire --state-dir"] / medians["dog event post"]
    print(f"ratio fire --state-dir/dog: {queued_ratio:.2f} (through the durable outbox)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
