"""`emitter replay`: a generated log's events and counts match an independent recount."""

from __future__ import annotations

import json
import os
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from emitter.cli import main
from emitter.rules.loader import load_rules
from emitter.ruletest.logtime import parse_log_time
from emitter.ruletest.replay import ReplayOptions, replay_log, replay_webhooks
from emitter.templates.compiler import compile_rules

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
WINDOW = 600  # seconds: the rules' 10m throttle

RULES = """\
version: 1
rules:
  - id: timeouts
    trigger:
      type: file
      path: /var/log/app.log
      match: '^(?P<ts>\\S+) ERROR upstream (?P<upstream>\\w+) timed out'
    throttle: {key: "{{ upstream }}", window: 10m}
    event:
      title: "{{ upstream }} timed out"
      text: "{{ line }}"
      tags: ["upstream:{{ upstream }}"]
  - id: panics
    trigger:
      type: file
      path: /var/log/app.log
      match: '^(?P<ts>\\S+) PANIC (?P<what>.+)$'
    throttle: {window: 10m, mode: summary}
    event:
      title: "panic: {{ what }}"
      text: "{{ line }}"
  - id: hooks
    trigger: {type: webhook, path: /hooks/x}
    when: "payload.level == 'page'"
    event:
      title: "page: {{ payload.msg }}"
      text: "x"
"""


def _generate(path: Path, seed: int = 7) -> list[tuple[float, str, str]]:
    """A log of INFO noise, ERROR timeouts for 4 upstreams and PANIC lines; returns the
    interesting lines as (time, kind, key)."""
    rng = random.Random(seed)
    t = START
    lines: list[str] = []
    facts: list[tuple[float, str, str]] = []
    for _ in range(3000):
        t += timedelta(seconds=rng.randint(0, 40))
        stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        roll = rng.random()
        if roll < 0.10:
            upstream = rng.choice(["alpha", "beta", "gamma", "delta"])
            lines.append(f"{stamp} ERROR upstream {upstream} timed out")
            facts.append((t.timestamp(), "timeout", upstream))
        elif roll < 0.13:
            lines.append(f"{stamp} PANIC worker {rng.randint(1, 3)} died")
            facts.append((t.timestamp(), "panic", ""))
        else:
            lines.append(f"{stamp} INFO request served in {rng.randint(1, 900)}ms")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return facts


def _recount_first(times: list[float]) -> int:
    sent, window_end = 0, None
    for t in times:
        if window_end is None or t >= window_end:
            sent, window_end = sent + 1, t + WINDOW
    return sent


def _recount_summary(times: list[float]) -> tuple[int, int]:
    """(first events sent, windows that dropped something = summary events)."""
    firsts = summaries = 0
    window_end, dropped = None, 0
    for t in times:
        if window_end is None or t >= window_end:
            summaries += 1 if dropped else 0
            firsts, window_end, dropped = firsts + 1, t + WINDOW, 0
        else:
            dropped += 1
    return firsts, summaries + (1 if dropped else 0)


@pytest.fixture
def compiled(tmp_path: Path) -> list:  # type: ignore[type-arg]
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    loaded = load_rules([str(tmp_path / "rules.yaml")])
    assert loaded.ok, loaded.problems
    result, problems = compile_rules(loaded.rules)
    assert not problems
    return list(result)


def test_counts_match_an_independent_recount(tmp_path: Path, compiled: list) -> None:  # type: ignore[type-arg]
    facts = _generate(tmp_path / "app.log")
    file_rules = [c for c in compiled if c.id != "hooks"]
    result = replay_log(file_rules, str(tmp_path / "app.log"))

    timeouts = [f for f in facts if f[1] == "timeout"]
    expected_timeouts = sum(_recount_first([t for t, _, k in timeouts if k == key])
                            for key in {k for _, _, k in timeouts})
    panics = [t for t, kind, _ in facts if kind == "panic"]
    firsts, summaries = _recount_summary(panics)

    counts = result.counts
    assert counts["timeouts"]["matched"] == len(timeouts)
    assert counts["timeouts"]["events"] == expected_timeouts
    assert counts["timeouts"]["throttled"] == len(timeouts) - expected_timeouts
    assert counts["panics"]["matched"] == len(panics)
    assert counts["panics"]["events"] == firsts + summaries
    assert summaries > 0 and expected_timeouts > 4  # the generator exercised both paths

    titles = [e["title"] for r, e in result.events if r == "timeouts"]
    for key in ("alpha", "beta", "gamma", "delta"):
        assert titles.count(f"{key} timed out") == _recount_first(
            [t for t, _, k in timeouts if k == key])


def test_events_carry_the_logs_own_time(tmp_path: Path, compiled: list) -> None:  # type: ignore[type-arg]
    log = tmp_path / "app.log"
    log.write_text("2026-03-01T10:00:00Z ERROR upstream alpha timed out\n"
                   "2026-03-01T10:09:59Z ERROR upstream alpha timed out\n"
                   "2026-03-01T10:10:00Z ERROR upstream alpha timed out\n")
    result = replay_log([c for c in compiled if c.id == "timeouts"], str(log))
    assert result.counts["timeouts"]["events"] == 2
    assert [e["text"][:20] for _, e in result.events] == ["2026-03-01T10:00:00Z",
                                                          "2026-03-01T10:10:00Z"]


def test_since_and_until(tmp_path: Path, compiled: list) -> None:  # type: ignore[type-arg]
    facts = _generate(tmp_path / "app.log", seed=11)
    since = START.timestamp() + 3600
    until = since + 7200
    options = ReplayOptions(since=since, until=until)
    result = replay_log([c for c in compiled if c.id == "timeouts"], str(tmp_path / "app.log"),
                        options)
    inside = [f for f in facts if f[1] == "timeout" and since <= f[0] < until]
    assert result.counts["timeouts"]["matched"] == len(inside)
    assert result.counts["timeouts"]["out_of_range"] == \
        sum(1 for f in facts if f[1] == "timeout") - len(inside)
    assert result.counts["timeouts"]["events"] == sum(
        _recount_first([t for t, _, k in inside if k == key]) for key in {k for *_, k in inside})


def test_webhook_dir(tmp_path: Path, compiled: list) -> None:  # type: ignore[type-arg]
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for i, level in enumerate(["page", "info", "page"]):
        path = hooks / f"{i:03d}.json"
        path.write_text(json.dumps({"level": level, "msg": f"m{i}"}))
        os.utime(path, (START.timestamp() + i, START.timestamp() + i))
    (hooks / "bad.json").write_text("{nope")
    result = replay_webhooks([c for c in compiled if c.id == "hooks"], str(hooks))
    assert [e["title"] for _, e in result.events] == ["page: m0", "page: m2"]
    assert result.counts["hooks"]["matched"] == 3
    assert result.counts["hooks"]["skipped"] == 1
    assert len(result.problems) == 1 and "bad.json" in str(result.problems[0].location)


def test_progress_is_told_all_of_the_input(tmp_path: Path, compiled: list) -> None:  # type: ignore[type-arg]
    log = tmp_path / "app.log"
    _generate(log)
    with log.open("ab") as handle:  # several 1 MiB reads, the last one partial
        handle.write(log.read_bytes() * 20)
    told: list[int] = []
    replay_log([c for c in compiled if c.id == "timeouts"], str(log), on_progress=told.append)
    assert len(told) > 2 and sum(told) == log.stat().st_size

    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for i in range(4):
        (hooks / f"{i}.json").write_text("{nope" if i == 2 else "{}")
    told.clear()
    replay_webhooks([c for c in compiled if c.id == "hooks"], str(hooks), on_progress=told.append)
    assert told == [1, 1, 1, 1]  # the unreadable payload counts as read too


def test_cli_prints_json_lines_and_a_summary(tmp_path: Path, compiled: list,  # type: ignore[type-arg]
                                            capsys: pytest.CaptureFixture[str]) -> None:
    facts = _generate(tmp_path / "app.log", seed=3)
    code = main(["replay", str(tmp_path / "rules.yaml"), "--rule", "timeouts",
                 "--file", str(tmp_path / "app.log")])
    out, err = capsys.readouterr()
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    timeouts = [f for f in facts if f[1] == "timeout"]
    expected = sum(_recount_first([t for t, _, k in timeouts if k == key])
                   for key in {k for *_, k in timeouts})
    assert len(events) == expected
    header, row = err.strip().splitlines()
    assert header.split()[:3] == ["rule", "matched", "events"]
    assert row.split()[:3] == ["timeouts", str(len(timeouts)), str(expected)]


def test_cli_usage_errors(tmp_path: Path, compiled: list,  # type: ignore[type-arg]
                          capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(tmp_path / "rules.yaml")
    assert main(["replay", rules, "--rule", "nope", "--file", rules]) == 2
    assert main(["replay", rules, "--rule", "hooks", "--file", rules]) == 2
    assert main(["replay", rules, "--file", str(tmp_path / "missing.log")]) == 2
    assert main(["replay", rules, "--file", rules, "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "unknown rule 'nope'" in err and "webhook trigger, not file" in err


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-01-01T09:30:00Z", "2026-01-01T09:30:00+00:00"),
        ("2026-01-01T09:30:00.5+02:00", "2026-01-01T07:30:00.500000+00:00"),
        ("2026-01-01 09:30:00,250", "2026-01-01T09:30:00.250000+00:00"),
        ("10/Oct/2025:13:55:36 -0700", "2025-10-10T20:55:36+00:00"),
        ("[10/Oct/2025:13:55:36 +0000]", "2025-10-10T13:55:36+00:00"),
        ("Oct  1 13:55:36", "2025-10-01T13:55:36+00:00"),
        ("1767225600", "2026-01-01T00:00:00+00:00"),
        ("1767225600500", "2026-01-01T00:00:00.500000+00:00"),
    ],
)
def test_log_time_formats(text: str, iso: str) -> None:
    seconds = parse_log_time(text, default_year=2025)
    assert seconds is not None
    assert datetime.fromtimestamp(seconds, timezone.utc).isoformat() == iso


@pytest.mark.parametrize("text", ["", "yesterday", "32/Oct/2025:00:00:00 +0000",
                                  "Foo 10 13:55:36", "2026-13-01T00:00:00Z"])
def test_log_time_refuses(text: str) -> None:
    assert parse_log_time(text, default_year=2025) is None
