"""The `file` trigger: follows log files like `tail -F` and fires rules on matching lines.

One thread reads every followed file when inotify says a followed file's directory changed
(emitter.triggers.watch; a line reaches the outbox within milliseconds), and in any case every
`poll_interval` seconds (0.25 s by default): the fallback where inotify is missing or blind
(NFS, other systems), so a missed notification costs latency, never a line.
Rules on the same file (and the same `from_beginning`) share one reader and one
`LineMatcher`, so the file is read once whatever the number of rules.

- Start: at the end of the file (after its last complete line) unless `from_beginning`, or
  at the position saved in the `StateStore` when the file is still the same (inode). The
  position is taken in `start()`, before it returns, not when the thread first polls.
- Rotation by rename: when the path names a new inode, the old file is read to its end
  (a last line without newline is taken as a line), then the new file from its start.
- Truncation: a size below our position restarts at offset 0, line 1 (copytruncate).
- Partial lines wait for their newline; lines longer than 1 MiB are split there.
- Invalid UTF-8 is decoded with U+FFFD replacements: a line is never lost.
- A path that is not a regular file (a FIFO, /dev/zero, a directory) is refused: reported
  through `on_error` for its rules and tried again with back-off; other files keep going.
- Position (inode, offset, line number) is saved only after `dispatch` returned for the
  firings of the lines before it (on the shared backend in the same transaction as their
  events, so a failed commit undoes both and the lines are read again); on a dispatch error
  the file waits (with back-off) and the same lines are tried again, so a restart neither
  re-fires nor misses lines.

Variables: see emitter.triggers.kinds.file (the regex's named groups, then `line`, `path`,
`line_number`).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from emitter.rules.model import FileTrigger, Rule
from emitter.state.store import StateStore
from emitter.triggers.base import Backoff, Dispatch, Firing, OnError, RunnerBase
from emitter.triggers.kinds.file import line_variables
from emitter.triggers.linematch import LineHit, LineMatcher, LineRule
from emitter.triggers.watch import FileWatch

MAX_LINE = 1 << 20
SAMPLE = 64 << 10  # bytes of the log the matcher looks at to choose its search keys
CHUNK = 4 << 20
# Firings per dispatch call (one outbox commit): a failure re-sends at most this many lines'
# worth. A 4 MiB read of a 3 %-matching log holds about 1,200: one commit, not three.
BATCH = 2000
_NS = "file"


@dataclass
class _Position:
    dev: int
    inode: int
    offset: int  # start of the first line not yet handled
    line: int  # number of lines before `offset`


class _Tail:
    """One followed file and the rules that watch it."""

    def __init__(self, path: str, rules: Sequence[Rule], from_beginning: bool) -> None:
        self.path = path
        self.rule_ids = tuple(r.id for r in rules)
        self.line_rules = [_line_rule(r) for r in rules]
        self.from_beginning = from_beginning
        self.state_key = f"{os.path.abspath(path)}|{'begin' if from_beginning else 'end'}"
        self.matcher: LineMatcher | None = None
        self.sample = b""  # what the matcher chose its keys on
        self.sample_len = 0
        self.fh: BinaryIO | None = None
        self.pos: _Position | None = None
        self.missing_reported = False
        self.waited = False
        self.backoff = Backoff()
        self.retry_at = 0.0

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        self.fh = None


def _line_rule(rule: Rule) -> LineRule:
    trig = rule.trigger
    assert isinstance(trig, FileTrigger)
    return LineRule(rule.id, trig.match, trig.exclude)


class FileTailRunner(RunnerBase):
    def __init__(
        self,
        rules: Sequence[Rule],
        dispatch: Dispatch,
        on_error: OnError,
        store: StateStore,
        *,
        poll_interval: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("file", on_error)
        self._dispatch = dispatch
        self._store = store
        self._poll = poll_interval
        self._clock = clock
        groups: dict[tuple[str, bool], list[Rule]] = {}
        for rule in rules:
            trig = rule.trigger
            if isinstance(trig, FileTrigger):
                groups.setdefault((trig.path, trig.from_beginning), []).append(rule)
        self.tails = [_Tail(p, rs, begin) for (p, begin), rs in groups.items()]
        self._watch: FileWatch | None = None  # made by start(): poll_once() alone needs none

    def start(self) -> None:
        # Positions are taken here, not on the thread's first poll: "start at the end" means
        # the end when start() returned (the daemon then says "started"), so a line written
        # right after that is read, however late the thread gets to run.
        self._watch = FileWatch(t.path for t in self.tails)
        self.open_all()
        self._start_thread(self._run)

    def open_all(self) -> None:
        """Open every followed file not open yet and take its start position."""
        for tail in self.tails:
            if tail.fh is not None:
                continue
            try:
                self._open(tail)
            except OSError as exc:
                tail.close()
                self._failed(tail, f"cannot read {tail.path}: {exc.strerror or exc}")

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.wake()
        super().stop(timeout)
        for tail in self.tails:
            tail.close()
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            if self._watch is not None:
                self._watch.wait(self._poll)
            else:
                self._stop.wait(self._poll)

    def poll_once(self) -> int:
        """Read every file once up to its end; return the number of firings dispatched."""
        total = 0
        for tail in self.tails:
            if self._clock() < tail.retry_at:
                continue
            try:
                total += self._poll_tail(tail)
            except OSError as exc:
                tail.close()
                self._failed(tail, f"cannot read {tail.path}: {exc.strerror or exc}")
            except Exception as exc:  # noqa: BLE001 - dispatch errors: retry the same lines
                self._failed(tail, f"{tail.path}: lines not accepted, will retry: {exc}")
        return total

    def _failed(self, tail: _Tail, message: str) -> None:
        tail.retry_at = self._clock() + tail.backoff.failed()
        self.report(tail.rule_ids[0] if len(tail.rule_ids) == 1 else None, message)

    # ---- opening, rotation, truncation --------------------------------------------------

    def _poll_tail(self, tail: _Tail) -> int:
        if tail.fh is None and not self._open(tail):
            return 0
        fired = self._read_to_end(tail)
        try:
            st = os.stat(tail.path)
        except FileNotFoundError:
            return fired  # renamed away, new one not yet created: keep the old one open
        assert tail.fh is not None and tail.pos is not None
        if (st.st_dev, st.st_ino) != (tail.pos.dev, tail.pos.inode):
            fired += self._read_to_end(tail)  # whatever was appended before the rename
            fired += self._flush_partial(tail)
            tail.close()
            tail.pos = None
            if self._open(tail, rotated=True):
                fired += self._read_to_end(tail)
        elif os.fstat(tail.fh.fileno()).st_size < tail.pos.offset:
            tail.pos = _Position(tail.pos.dev, tail.pos.inode, 0, 0)
            self._save(tail)
            fired += self._read_to_end(tail)
        return fired

    def _open(self, tail: _Tail, rotated: bool = False) -> bool:
        try:
            fh = open_regular(tail.path)
        except NotRegularFile:
            tail.waited = True  # the regular file that may replace it is new: read it whole
            raise
        except FileNotFoundError:
            tail.waited = True
            if not tail.missing_reported:
                tail.missing_reported = True
                self.report(tail.rule_ids[0], f"{tail.path}: no such file; waiting for it")
            return False
        tail.missing_reported = False
        if self._watch is not None:
            self._watch.add(tail.path)  # its directory may have been made since start()
        st = os.fstat(fh.fileno())
        tail.fh = fh
        # A file that appears after we started waiting for it is new: read it whole.
        tail.pos = self._start_position(tail, fh, st, rotated or tail.waited)
        if tail.matcher is None:
            self._build_matcher(tail, _sample(fh, st.st_size))
        return True

    @staticmethod
    def _build_matcher(tail: _Tail, sample: bytes) -> None:
        tail.matcher = LineMatcher(tail.line_rules, sample, like=tail.matcher, accelerate="soon")
        tail.sample, tail.sample_len = sample, len(sample)

    def _start_position(
        self, tail: _Tail, fh: BinaryIO, st: os.stat_result, rotated: bool
    ) -> _Position:
        saved = self._store.get(_NS, tail.state_key)
        if saved and (saved["dev"], saved["inode"]) == (st.st_dev, st.st_ino):
            if saved["offset"] <= st.st_size:
                return _Position(st.st_dev, st.st_ino, saved["offset"], saved["line"])
            return _Position(st.st_dev, st.st_ino, 0, 0)  # truncated while we were away
        if rotated or saved or tail.from_beginning:
            # A new file after a rotation (seen now, or while we were stopped) is read whole.
            return _Position(st.st_dev, st.st_ino, 0, 0)
        offset, lines = _end_of_last_line(fh, st.st_size)
        pos = _Position(st.st_dev, st.st_ino, offset, lines)
        self._store.put(_NS, tail.state_key, pos.__dict__)
        return pos

    # ---- reading and dispatching ---------------------------------------------------------

    def _read_to_end(self, tail: _Tail) -> int:
        fired = 0
        while not self._stop.is_set():
            assert tail.fh is not None and tail.pos is not None
            tail.fh.seek(tail.pos.offset)
            data = tail.fh.read(CHUNK)
            if tail.sample_len < SAMPLE // 4 and len(data) >= SAMPLE // 4:
                # Keys were chosen on little or no real text: choose again on what we read.
                self._build_matcher(tail, data[:SAMPLE])
            elif data and tail.matcher is not None and tail.matcher.acceleration_came():
                # With the Hyperscan database now. Asked only once lines come: the compile
                # starts then, so a file that stays quiet never pays for it, nor the start.
                self._build_matcher(tail, tail.sample)
            cut = data.rfind(b"\n") + 1
            if cut > 0:
                fired += self._handle(tail, data[:cut], cut)
            elif len(data) >= MAX_LINE:  # an endless line: take its first MiB as a line
                fired += self._handle(tail, data[:MAX_LINE] + b"\n", MAX_LINE)
            else:
                break
            if len(data) < CHUNK:
                break
        tail.backoff.succeeded()
        return fired

    def _flush_partial(self, tail: _Tail) -> int:
        """The old file of a rotation ends without a newline: take the rest as a line."""
        assert tail.fh is not None and tail.pos is not None
        tail.fh.seek(tail.pos.offset)
        rest = tail.fh.read(MAX_LINE)
        return self._handle(tail, rest + b"\n", len(rest)) if rest else 0

    def _handle(self, tail: _Tail, lines: bytes, consumed: int) -> int:
        """Fire for `lines` (read at the saved position) and advance past `consumed` bytes."""
        assert tail.matcher is not None and tail.pos is not None
        hits, newlines = tail.matcher.scan_counted(lines, tail.pos.line + 1)
        base_offset, base_line = tail.pos.offset, tail.pos.line
        # `lines` is what was read up to `consumed`, or one forced line (an endless line's
        # first MiB, a rotation's last line) with the b"\n" we added: a line either way.
        end_line = base_line + newlines
        for i in range(0, len(hits) or 1, BATCH):
            batch = hits[i : i + BATCH]
            if i + BATCH < len(hits):  # more batches follow: save the place reached so far
                place = (base_offset + min(batch[-1].end, consumed), batch[-1].line_number)
            else:
                place = (base_offset + consumed, end_line)
            now = self._clock()  # one stamp per batch: its lines were read together
            self._commit(tail, [self._firing(tail, h, now) for h in batch], *place)
            self.counted(len(batch))
        return len(hits)

    def _commit(self, tail: _Tail, firings: list[Firing], offset: int, line: int) -> None:
        """Dispatch `firings` and save the position past them: one transaction on the shared
        backend, so a failed commit leaves both undone (and the place in memory unmoved)."""
        assert tail.pos is not None
        before = (tail.pos.offset, tail.pos.line)
        try:
            with self._store.batch():
                if firings:
                    self._dispatch(firings)
                tail.pos.offset, tail.pos.line = offset, line
                self._save(tail)
        except BaseException:
            if self._store.shared:  # rolled back with the events: read those lines again
                tail.pos.offset, tail.pos.line = before
            raise

    @staticmethod
    def _firing(tail: _Tail, hit: LineHit, now: float) -> Firing:
        variables = line_variables(hit.groups, hit.line, tail.path, hit.line_number)
        return Firing(hit.rule_id, "file", variables, now)

    def _save(self, tail: _Tail) -> None:
        assert tail.pos is not None
        self._store.put(_NS, tail.state_key, dict(tail.pos.__dict__))


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a directory...: never followed (a FIFO would block
    the open until a writer came, a device like /dev/zero never ends)."""


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISSOCK, "a socket"))


def open_regular(path: str) -> BinaryIO:
    """Open `path` for reading if it is a regular file; raises NotRegularFile otherwise.
    O_NONBLOCK makes the open of a FIFO return at once; it changes nothing for a file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise NotRegularFile(0, f"{kind}, not a regular file: a file trigger follows "
                                    "regular files only", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _sample(fh: BinaryIO, size: int) -> bytes:
    """Up to SAMPLE bytes from the end of the file: what the log looks like."""
    fh.seek(max(0, size - SAMPLE))
    data = fh.read(SAMPLE)
    fh.seek(0)
    return data


def _end_of_last_line(fh: BinaryIO, size: int) -> tuple[int, int]:
    """(offset just past the last newline, number of lines before it)."""
    lines = 0
    last_nl = -1
    fh.seek(0)
    offset = 0
    while offset < size:
        block = fh.read(min(CHUNK, size - offset))
        if not block:
            break
        lines += block.count(b"\n")
        idx = block.rfind(b"\n")
        if idx >= 0:
            last_nl = offset + idx
        offset += len(block)
    return last_nl + 1, lines

