"""Safe YAML loading: places of keys and values, refused tags, duplicates, limits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from emitter.problems import Location
from emitter.rules import yamlload
from emitter.rules.yamlload import load_yaml

# Every behaviour must hold with libyaml's composer and with PyYAML's pure-Python one.
LOADERS = [pytest.param(yamlload.PY_LOADER, id="python")]
if yamlload.C_LOADER is not None:
    LOADERS.append(pytest.param(yamlload.C_LOADER, id="libyaml"))


@pytest.fixture(params=LOADERS, autouse=True)
def _loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlload, "_Loader", request.param)


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_values_keys_and_plain_scalars_keep_their_places(tmp_path: Path) -> None:
    path = write(tmp_path, "a:\n  b: [x, 'yes', true]\n  é: 1.5\nd: 2024-01-02\n")
    doc, problems = load_yaml(path)
    assert problems == [] and doc is not None
    assert doc.data == {"a": {"b": ["x", "yes", True], "é": 1.5}, "d": "2024-01-02"}
    assert doc.location(("a", "b", 1)) == Location(path, 2, 10)
    assert doc.location(("a", "b", 2)) == Location(path, 2, 17)
    assert doc.key_location(("a", "b")) == Location(path, 2, 3)
    assert doc.location(("a", "é")) == Location(path, 3, 6)  # columns count characters
    # a missing path falls back to its nearest existing ancestor
    assert doc.location(("a", "b", 7, "z")) == Location(path, 2, 6)
    assert doc.plain_scalar(("a", "b", 2)) == "true"
    assert doc.plain_scalar(("a", "b", 1)) is None  # quoted
    assert doc.plain_scalar(("a", "é")) == "1.5"
    assert doc.plain_scalar(("a", "b", 0)) is None  # a plain string is no surprise


def _touch_payload(marker: Path) -> str:
    return f"!!python/object/apply:os.mkdir ['{marker}']"


def test_the_payload_really_creates_a_file_when_unsafely_loaded(tmp_path: Path) -> None:
    # The control for the next test: the same tag, given to an unsafe loader, does run.
    marker = tmp_path / "control"
    yaml.unsafe_load(f"x: {_touch_payload(marker)}\n")
    assert marker.exists()


def test_python_tag_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(
        tmp_path,
        f"ok: 1\nbad: !!python/object/apply:os.system ['touch {marker}']\n"
        f"worse: {_touch_payload(marker)}\n",
    )
    doc, problems = load_yaml(path)
    assert doc is None
    assert not marker.exists()
    places = [(p.location.line, p.location.col) for p in problems if p.location]
    assert places == [(2, 6), (3, 8)]
    assert all(p.check == "yaml" for p in problems)
    assert "!!python/object/apply:os.system is not allowed" in problems[0].message


@pytest.mark.parametrize("text", ["x: !custom 1\n", "x: !!binary aGVsbG8=\n", "x: !!set {a, b}\n"])
def test_tags_outside_the_core_schema_are_refused(tmp_path: Path, text: str) -> None:
    doc, problems = load_yaml(write(tmp_path, text))
    assert doc is None
    assert len(problems) == 1 and "is not allowed" in problems[0].message
    assert problems[0].location == Location(str(tmp_path / "r.yaml"), 1, 4)


def test_core_tags_are_accepted(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: !!str 123\nb: !!int '7'\nc: !!float 1\n"))
    assert problems == [] and doc is not None
    assert doc.data == {"a": "123", "b": 7, "c": 1.0}


def test_duplicate_keys_name_both_lines(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: 1\nb:\n  c: 1\n  c: 2\na: 3\n"))
    assert doc is None
    messages = [(p.location.line, p.message) for p in problems if p.location]
    assert messages == [
        (4, "duplicate key 'c': first at line 3, again at line 4 "
            "(YAML would silently keep only the last one)"),
        (5, "duplicate key 'a': first at line 1, again at line 5 "
            "(YAML would silently keep only the last one)"),
    ]


def test_merge_keys_work_and_own_keys_win(tmp_path: Path) -> None:
    text = "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n"
    doc, problems = load_yaml(write(tmp_path, text))
    assert problems == [] and doc is not None
    assert doc.data["m"] == {"y": 3, "x": 1}
    assert doc.location(("m", "x")).line == 1  # merged values point at the anchor


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    doc, problems = load_yaml(path)
    elapsed = time.monotonic() - started
    assert doc is None
    assert "alias bomb" in problems[0].message
    assert elapsed < 5, "the bound must stop expansion long before 9**10 values"


def _merge_bomb(levels: int) -> str:
    lines = ["a0: &a0 {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1, k9: 1}"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} {{<<: [{','.join([f'*a{i - 1}'] * 10)}], m{i}: 1}}")
    return "\n".join(lines) + "\n"


def test_merge_key_bomb_is_refused_at_the_merge(tmp_path: Path) -> None:
    # `<<` references escaped the alias limit and cost tenfold a level (582 bytes: over 60 s).
    doc, problems = load_yaml(write(tmp_path, _merge_bomb(8)))
    assert doc is None and len(problems) == 1
    assert "merge keys `<<` and aliases expand to more than" in problems[0].message
    assert (problems[0].location.line, problems[0].location.col) == (4, 14)  # type: ignore[union-attr]


def test_a_mapping_merged_many_times_is_worked_out_once(tmp_path: Path) -> None:
    text = _merge_bomb(2) + "".join(f"u{i}: {{<<: *a2}}\n" for i in range(5))
    doc, problems = load_yaml(write(tmp_path, text))
    assert problems == [] and doc is not None
    assert doc.data["u4"] == {"m2": 1, "m1": 1, **{f"k{i}": 1 for i in range(10)}}


def test_modest_aliases_are_fine(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: &t [x, y]\nb: *t\nc: *t\n"))
    assert problems == [] and doc is not None
    assert doc.data["c"] == ["x", "y"]


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: &a [1, *a]\n"))
    assert doc is None and "refers to its own parent" in problems[0].message


def test_oversize_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "a: " + "x" * 2000 + "\n")
    doc, problems = load_yaml(path, max_bytes=1000)
    assert doc is None
    assert "over the 1000-byte limit" in problems[0].message
    doc, problems = load_yaml(path, max_bytes=4000)
    assert doc is not None and problems == []


def test_default_size_limit_is_one_mebibyte(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * 1_048_576 + "\na: 1\n")
    doc, problems = load_yaml(path)
    assert doc is None and "1048576-byte limit" in problems[0].message


def test_second_document_is_an_error_at_its_start(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: 1\n---\nb: 2\n"))
    assert doc is None
    assert problems[0].location is not None and problems[0].location.line == 2
    assert "second YAML document" in problems[0].message


def test_syntax_error_points_at_the_mark(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"))
    assert doc is None
    assert problems[0].message.startswith("YAML syntax error:")
    assert problems[0].location is not None and problems[0].location.line == 3
    assert "line 2" in problems[0].message
    assert problems[0].check == "yaml"


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: " + "[" * 150 + "]" * 150 + "\n"))
    assert doc is None and "deep" in problems[0].message


def test_bad_utf8_and_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\n")
    doc, problems = load_yaml(str(bad))
    assert doc is None and "not valid UTF-8" in problems[0].message
    assert problems[0].location == Location(str(bad), 2, 4)
    doc, problems = load_yaml(str(tmp_path / "missing.yaml"))
    assert doc is None and "cannot read" in problems[0].message


def test_empty_file_gives_no_data_and_no_problem(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "# nothing\n"))
    assert problems == [] and doc is not None and doc.data is None


def test_non_string_keys_become_their_text(tmp_path: Path) -> None:
    # `on:` is a boolean in YAML 1.1; as a key the user means the word.
    doc, problems = load_yaml(write(tmp_path, "on: 1\n2: x\n"))
    assert problems == [] and doc is not None
    assert doc.data == {"on": 1, "2": "x"}


def test_complex_key_is_refused(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "? [a, b]\n: 1\n"))
    assert doc is None and "key must be a plain string" in problems[0].message


# ---- YAML 1.2 core schema ----------------------------------------------------------------

CORE_SCHEMA = [
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False),
    ("yes", "yes"), ("No", "No"), ("on", "on"), ("off", "off"), ("y", "y"), ("tRue", "tRue"),
    ("null", None), ("~", None), ("NULL", None), ("", None), ("nULL", "nULL"),
    ("010", 10), ("-010", -10), ("+12", 12), ("0o17", 15), ("0x1F", 31), ("0", 0),
    ("1:30", "1:30"), ("0b101", "0b101"), ("1_000", "1_000"), ("0o8", "0o8"),
    ("1.5", 1.5), ("1.", 1.0), (".5", 0.5), ("1e3", 1000.0), ("-1.5E+2", -150.0),
    (".inf", float("inf")), ("-.Inf", float("-inf")), ("+.INF", float("inf")),
    ("2024-01-02", "2024-01-02"), ("<<", "<<"),
]


@pytest.mark.parametrize(("text", "value"), CORE_SCHEMA, ids=[t or "empty" for t, _ in CORE_SCHEMA])
def test_plain_scalars_resolve_by_the_yaml_1_2_core_schema(
    tmp_path: Path, text: str, value: object
) -> None:
    doc, problems = load_yaml(write(tmp_path, f"x: {text}\n" if text != "<<" else "x: '<<'\n"))
    assert problems == [] and doc is not None
    got = doc.data["x"]
    assert got == value and type(got) is type(value)


def test_nan_is_a_float(tmp_path: Path) -> None:
    doc, _ = load_yaml(write(tmp_path, "a: .nan\nb: .NaN\nc: .NAN\n"))
    assert doc is not None and all(v != v for v in doc.data.values())


def test_yaml_1_1_spellings_are_remembered_for_hints(tmp_path: Path) -> None:
    doc, _ = load_yaml(write(tmp_path, "a: yes\nb: 'yes'\nc: 1:30\nd: hello\ne: 010\n"))
    assert doc is not None
    assert doc.yaml11_spelling(("a",)) == "yes"
    assert doc.yaml11_spelling(("b",)) is None  # quoted: a string in every YAML
    assert doc.yaml11_spelling(("c",)) == "1:30"
    assert doc.yaml11_spelling(("d",)) is None
    assert doc.yaml11_spelling(("e",)) is None  # an integer in both (10 here, 8 in YAML 1.1)


@pytest.mark.parametrize("text", ["!!int 1_000", "!!int 0b11", "!!bool yes", "!!float 1:30",
                                  "!!null nil"])
def test_tags_take_yaml_1_2_values_only(tmp_path: Path, text: str) -> None:
    doc, problems = load_yaml(write(tmp_path, f"x: {text}\n"))
    assert doc is None and len(problems) == 1
    assert problems[0].location is not None and problems[0].location.col == 4
    assert "fix the value or drop the tag" in problems[0].message


def test_tags_convert_by_yaml_1_2(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "a: !!int '010'\nb: !!float 1\nc: !!bool TRUE\n"))
    assert problems == [] and doc is not None
    assert doc.data == {"a": 10, "b": 1.0, "c": True} and isinstance(doc.data["b"], float)


def test_merge_keys_are_kept_as_editors_read_them(tmp_path: Path) -> None:
    doc, problems = load_yaml(write(tmp_path, "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n"))
    assert problems == [] and doc is not None
    assert doc.data["use"] == {"x": 1, "y": 3}
