"""Progress bars on stderr for long commands (`replay`, `outbox drain`): shown only when
stderr is a terminal and tqdm (the `progress` extra) is installed; otherwise nothing at all.

tqdm is imported only once a bar is to be shown, so a command whose stderr is a pipe or a
file never loads it and writes exactly what it wrote without progress.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

Advance = Callable[[int], None]


def _ignore(_n: int) -> None:
    return None


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _open_bar(description: str, total: int | None, unit: str, scale: bool,
              stream: TextIO) -> Any:
    """A tqdm bar on `stream`, or None when tqdm is not installed (progress is optional)."""
    try:
        module = importlib.import_module("tqdm")
    except ImportError:
        return None
    # leave=False: the bar is wiped when done, so a command's own summary follows cleanly.
    return module.tqdm(total=total, desc=description, unit=unit, unit_scale=scale,
                       unit_divisor=1024 if scale else 1000, file=stream, leave=False,
                       dynamic_ncols=True)


@contextmanager
def progress(description: str, total: int | None = None, *, unit: str = "it",
             scale: bool = False, stream: TextIO | None = None) -> Iterator[Advance]:
    """Yield `advance(n)`: call it as work gets done (n units of `total`). When `stream`
    (default: stderr) is not a terminal or tqdm is missing, `advance` does nothing.
    `scale=True` shows k/M/G multiples (of 1024, for bytes)."""
    out = sys.stderr if stream is None else stream
    bar = _open_bar(description, total, unit, scale, out) if is_terminal(out) else None
    if bar is None:
        yield _ignore
        return
    try:
        yield bar.update
    finally:
        bar.close()
