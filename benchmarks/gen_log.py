"""Generate a deterministic application log and its file-trigger rules for the benchmarks.

    python benchmarks/gen_log.py OUT.log [--lines 1000000] [--seed 7] [--rules 100] [--width 0]

Most lines are INFO chatter; about 3 % match one of the rule regexes (named groups
included) and about 1 % are near misses that share a rule's words but do not match.
`RULES` (rule id, regex: 10 families x 10 services) is importable so the benchmark and tests
use the same set. `rules(n)` makes n rules (10 families x n/10 services) and `lines(...,
rules=n, width=w)` a log for them whose lines are padded with key=value fields to about w
bytes; the defaults (100 rules, no padding) give exactly the historical log.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Iterator

SERVICES = (
    "payments", "orders", "auth", "search", "billing",
    "inventory", "shipping", "catalog", "gateway", "reports",
)

# One family per kind of problem; each family is instantiated once per service.
FAMILIES: tuple[tuple[str, str], ...] = (
    (r"ERROR \[{s}\] request (?P<request_id>[0-9a-f]{{8}}) failed: (?P<reason>.+)",
     "ERROR [{s}] request {hex} failed: {reason}"),
    (r"WARN \[{s}\] slow query took (?P<ms>\d+)ms on table (?P<table>\w+)",
     "WARN [{s}] slow query took {n}ms on table {word}"),
    (r"^\S+ (?P<host>[\w.-]+) {s}: disk usage (?P<pct>\d+)% on (?P<mount>/\S*)",
     "{host} {s}: disk usage {pct}% on /var/lib/{word}"),
    (r"\[{s}\] user (?P<user>\w+) login failed from (?P<ip>\d+\.\d+\.\d+\.\d+)",
     "[{s}] user {word} login failed from {ip}"),
    (r"{s} circuit breaker (?P<state>open|half-open) after (?P<failures>\d+) failures",
     "{s} circuit breaker {state} after {n} failures"),
    (r"(?i)\[{s}\] out of memory: killed pid (?P<pid>\d+)",
     "[{s}] Out Of Memory: killed pid {n}"),
    (r"\[{s}\] deploy (?P<version>v\d+\.\d+\.\d+) (?:finished|rolled back) by (?P<actor>\w+)",
     "[{s}] deploy v{n}.{pct}.{n} rolled back by {word}"),
    (r"\[{s}\] (?:connection (?:refused|reset)|timeout) talking to (?P<peer>[\w.-]+):(?P<port>\d+)",
     "[{s}] connection reset talking to {host}:{n}"),
    (r"CRITICAL \[{s}\] (?P<what>.+)",
     "CRITICAL [{s}] {reason}"),
    (r"\[{s}\] queue (?P<queue>\w+) depth (?P<depth>\d+) exceeds limit",
     "[{s}] queue {word} depth {n} exceeds limit"),
)

# Lines that share words with the rules but must not match any of them.
NEAR_MISSES = (
    "WARN [{s}] slow query took long on table {word}",
    "[{s}] user {word} login succeeded from {ip}",
    "{s} circuit breaker closed after {n} successes",
    "[{s}] queue {word} depth {n} within limit",
    "ERROR [{s}] request {word} failed",
)



def services(n_rules: int) -> tuple[str, ...]:
    """The services of an `n_rules` set (one rule per family and service)."""
    if n_rules % len(FAMILIES) or n_rules <= 0:
        raise ValueError(f"rules come in multiples of {len(FAMILIES)}, not {n_rules}")
    count = n_rules // len(FAMILIES)
    extra = tuple(f"{SERVICES[k % len(SERVICES)]}-{k // len(SERVICES)}"
                  for k in range(len(SERVICES), count))
    return (SERVICES + extra)[:count]


def rules(n_rules: int = 100) -> tuple[tuple[str, str], ...]:
    return tuple((f"{s}-{i}", regex.format(s=s))
                 for i, (regex, _) in enumerate(FAMILIES) for s in services(n_rules))


RULES: tuple[tuple[str, str], ...] = rules(100)

WORDS = ("alpha", "bravo", "carol", "delta", "users", "ledger", "cache", "sessions", "éclair")
PATHS = ("/api/v1/items", "/api/v1/orders", "/healthz", "/api/v2/search", "/login")


def _fill(template: str, rnd: random.Random, names: tuple[str, ...] = SERVICES) -> str:
    return template.format(
        s=rnd.choice(names),
        hex=f"{rnd.getrandbits(32):08x}",
        reason=rnd.choice(("upstream timeout", "bad gateway", "db locked", "quota exceeded")),
        n=rnd.randint(1, 99999),
        word=rnd.choice(WORDS),
        host=f"web-{rnd.randint(1, 40)}.prod",
        pct=rnd.randint(80, 99),
        ip=".".join(str(rnd.randint(1, 254)) for _ in range(4)),
        state=rnd.choice(("open", "half-open")),
    )


_PAD_KEYS = ("trace_id", "span_id", "region", "pod", "client", "bytes_in", "bytes_out", "route")


def _pad(line: str, width: int, rnd: random.Random) -> str:
    """`line` with key=value fields appended until it is about `width` bytes long."""
    parts = [line]
    size = len(line.encode())
    while size + 1 < width:
        field = f"{rnd.choice(_PAD_KEYS)}={rnd.getrandbits(40):010x}"
        parts.append(field)
        size += len(field) + 1
    return " ".join(parts)[: max(width - 1, len(line))] if width else line


def lines(count: int, seed: int = 7, *, rules: int = 100, width: int = 0) -> Iterator[str]:
    """`count` log lines for the `rules(rules)` set; `width` > 0 pads each to about that
    many bytes with its newline (a line is never cut below its own text)."""
    rnd = random.Random(seed)
    names = SERVICES if rules == 100 else services(rules)
    for i in range(count):
        hh, mm, ss = (i // 36000) % 24, (i // 600) % 60, (i // 10) % 60
        ts = f"2026-11-26T{hh:02d}:{mm:02d}:{ss:02d}.{i % 1000:03d}Z"
        roll = rnd.random()
        if roll < 0.03:
            _, template = rnd.choice(FAMILIES)
            body = _fill(template, rnd, names)
        elif roll < 0.04:
            body = _fill(rnd.choice(NEAR_MISSES), rnd, names)
        else:
            body = (
                f"INFO [{rnd.choice(names)}] handled GET "
                f"{rnd.choice(PATHS)}/{rnd.randint(1, 99999)}"
                f" status=200 duration_ms={rnd.randint(1, 900)} user={rnd.choice(WORDS)}"
            )
        yield _pad(f"{ts} {body}", width, rnd) if width else f"{ts} {body}"


def write(path: str, count: int, seed: int = 7, *, rules: int = 100, width: int = 0) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.writelines(line + "\n" for line in lines(count, seed, rules=rules, width=width))


def compiled_rules(n_rules: int = 100) -> list[tuple[str, re.Pattern[str]]]:
    return [(rule_id, re.compile(regex)) for rule_id, regex in rules(n_rules)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--width", type=int, default=0, help="pad lines to about this many bytes")
    args = parser.parse_args()
    write(args.out, args.lines, args.seed, rules=args.rules, width=args.width)
    print(f"wrote {args.lines} lines to {args.out}")


if __name__ == "__main__":
    main()
