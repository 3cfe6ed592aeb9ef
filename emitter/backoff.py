"""The one back-off policy of emitter: how long to wait after the n-th failure in a row.

Exponential from `base` doubling up to `cap`, with full jitter (uniform in [0, ceiling]) so
that many clients failing together do not come back together. The delivery retries
(emitter.delivery.retry), the sender's shared pause and the triggers' retry loops all read it.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

_MAX_DOUBLINGS = 62  # 2**62 * base is past any cap; keeps the float finite


@dataclass(frozen=True)
class BackoffPolicy:
    """Bounds of the back-off. Failure numbers are 1-based (1 = the first failure)."""

    base: float = 0.5  # seconds; the first wait is drawn from [0, base]
    cap: float = 30.0  # no single wait is longer than this

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("need 0 < base <= cap")

    def ceiling(self, failures: int) -> float:
        """The longest wait after `failures` failures in a row."""
        return min(self.cap, self.base * 2.0 ** min(max(failures - 1, 0), _MAX_DOUBLINGS))

    def delay(self, failures: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, ceiling(failures)] (randomness passed in: pure)."""
        return rng.uniform(0.0, self.ceiling(failures))


class Backoff:
    """A run of failures under one policy: `failed()` counts one and says how long to wait,
    `succeeded()` ends the run. Thread-safe."""

    def __init__(self, policy: BackoffPolicy | None = None,
                 rng: random.Random | None = None) -> None:
        self.policy = policy or BackoffPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lock = threading.Lock()
        self._failures = 0

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    def failed(self) -> float:
        """Record a failure; return the seconds to wait before the next try."""
        with self._lock:
            self._failures += 1
            return self.policy.delay(self._failures, self._rng)

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
