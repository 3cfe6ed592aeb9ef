"""Data-driven rule files: every tests/examples/valid/*.yaml validates with no errors, and
every tests/examples/invalid/*.yaml reports each error its `# expect: LINE:COL: TEXT` lines
announce (at exactly that line and column, with TEXT in the message)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from emitter.validate.pipeline import validate_paths

EXAMPLES = Path(__file__).parent / "examples"
# Fixed, so literal date_happened values in examples (1700000000 = 2023-11-14T22:13Z) do
# not age into errors as real time passes.
NOW = datetime(2023, 11, 15, 12, 0, tzinfo=timezone.utc)
_EXPECT = re.compile(r"#\s*expect:\s*(\d+):(\d+):\s*(.+?)\s*$")


def _files(kind: str) -> list[Path]:
    return sorted((EXAMPLES / kind).glob("*.yaml"))


def expectations(path: Path) -> list[tuple[int, int, str]]:
    """The `# expect:` lines of the file's leading comment block."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        match = _EXPECT.match(line)
        if match:
            found.append((int(match.group(1)), int(match.group(2)), match.group(3)))
    return found


def _errors(path: Path) -> list[tuple[int, int, str]]:
    report = validate_paths([str(path)], now=NOW, environ={})
    return [(p.location.line, p.location.col, p.format_text()) for p in report.problems
            if p.is_error and p.location is not None and Path(p.location.path) == path]


def test_there_are_examples_of_both_kinds() -> None:
    assert len(_files("valid")) >= 3 and len(_files("invalid")) >= 10


@pytest.mark.parametrize("path", _files("valid"), ids=lambda p: p.name)
def test_valid_example(path: Path) -> None:
    report = validate_paths([str(path)], now=NOW, environ={})
    assert [p.format_text() for p in report.problems if p.is_error] == []
    assert report.rules_checked >= 1


@pytest.mark.parametrize("path", _files("invalid"), ids=lambda p: p.name)
def test_invalid_example(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect: LINE:COL: TEXT' line at its top"
    errors = _errors(path)
    for line, col, text in expected:
        hits = [m for (row, column, m) in errors if (row, column) == (line, col) and text in m]
        assert hits, (f"expected an error at {line}:{col} containing {text!r}; got:\n  "
                      + "\n  ".join(m for _, _, m in errors))


def test_the_harness_rejects_a_file_without_expectations(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("version: 1\nrules: []\n", encoding="utf-8")
    assert expectations(bare) == []
    noted = tmp_path / "noted.yaml"
    noted.write_text("# a note\n# expect: 3:5: boom\nversion: 1\n# expect: 9:9: late\n",
                     encoding="utf-8")
    assert expectations(noted) == [(3, 5, "boom")]
