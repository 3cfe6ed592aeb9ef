"""Load 1,000 rules in 100 files with emitter.rules.loader, against plain yaml.load with libyaml
(no positions, no checks) on the same files in the same run. Run: python benchmarks/bench_load.py"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from bench_validate_many import SHARED, make  # same files as the validate benchmark

from emitter.rules.loader import load_rules


def timed(fn: Callable[[], object], repeat: int = 7) -> tuple[float, float]:
    """(best, median) wall time in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make(folder, rule=SHARED)  # the deploy rule 1,000 times, ids changed
        files = sorted(folder.glob("*.yaml"))
        result = load_rules([tmp])
        assert len(result.rules) == 1000 and not result.problems, result.problems[:3]
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        base = timed(lambda: [yaml.load(p.read_text(), Loader=loader) for p in files])
        ours = timed(lambda: load_rules([tmp]))
        print(f"plain yaml.load (libyaml): best {base[0]:.0f} ms, median {base[1]:.0f} ms")
        print(f"emitter load_rules:        best {ours[0]:.0f} ms, median {ours[1]:.0f} ms")
        ratios = ours[0] / base[0], ours[1] / base[1]
        print(f"ratio emitter / plain: best {ratios[0]:.2f}, median {ratios[1]:.2f}")


if __name__ == "__main__":
    main()
