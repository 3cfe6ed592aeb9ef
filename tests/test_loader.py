"""Loading rule files: records built, problems worded and placed, every file in one run."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from emitter.errors import UsageError
from emitter.problems import Location, Problem
from emitter.rules.loader import load_rules
from emitter.rules.model import (
    MISSING,
    CommandTrigger,
    FileTrigger,
    ManualTrigger,
    ScheduleTrigger,
    Tmpl,
    WebhookTrigger,
)

REPO = Path(__file__).resolve().parent.parent

HEAD = "version: 1\nrules:\n"


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def rule(body: str, rid: str = "r1") -> str:
    """One rule under `rules:`; `body` is the rule's keys, indented by the caller's dedent."""
    lines = textwrap.dedent(body).strip("\n").splitlines()
    return f"  - id: {rid}\n" + "".join(f"    {line}\n" for line in lines)


MINIMAL = "trigger: {type: manual}\nevent: {title: t, text: x}\n"


def places(problems: tuple[Problem, ...]) -> list[tuple[int, int, str]]:
    return [(p.location.line, p.location.col, p.message) for p in problems if p.location]


def only(problems: tuple[Problem, ...]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_the_example_rule_loads_into_records() -> None:
    result = load_rules([str(REPO / "rules" / "deploy.yaml")])
    assert result.problems == ()
    (deploy,) = result.rules
    assert deploy.id == "deploy-finished"
    assert deploy.trigger == ManualTrigger()
    assert deploy.location.line == 6
    assert [p.name for p in deploy.params] == ["service", "version", "outcome"]
    outcome = deploy.param("outcome")
    assert outcome is not None and outcome.enum == ("success", "failure")
    assert outcome.default is MISSING and outcome.required
    assert deploy.when is not None and deploy.when.text.startswith("outcome in")
    tags = deploy.event["tags"]
    assert isinstance(tags, tuple)
    # defaults' tags first, each a template with its own place
    assert [t.text for t in tags] == [
        "team:platform", "service:{{ service }}", "version:{{ version }}"
    ]
    assert tags[0].location.line == 4 and tags[1].location.line == 18
    source = deploy.event["source_type_name"]
    assert isinstance(source, Tmpl) and source.text == "my_apps" and source.location.line == 4
    title = deploy.event["title"]
    assert isinstance(title, Tmpl) and title.location.line == 15 and title.location.col == 14
    assert list(deploy.event) == ["title", "text", "tags", "alert_type", "aggregation_key",
                                  "source_type_name"]
    with pytest.raises(TypeError):
        deploy.event["title"] = title  # type: ignore[index]


def test_rule_event_fields_override_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", """\
        version: 1
        defaults:
          event: {title: default title, text: default text, priority: low}
          unified_tags: false
        rules:
          - id: a
            trigger: {type: manual}
            event: {title: own, date_happened: 1700000000}
          - id: b
            trigger: {type: manual}
            unified_tags: true
            event: {date_happened: "{{ ts }}"}
        """)
    result = load_rules([path])
    assert result.problems == ()
    a, b = result.rules
    assert isinstance(a.event["title"], Tmpl) and a.event["title"].text == "own"
    assert isinstance(a.event["text"], Tmpl) and a.event["text"].text == "default text"
    assert a.event["date_happened"] == 1700000000
    assert "tags" not in a.event
    assert a.unified_tags is False and b.unified_tags is True
    assert isinstance(b.event["date_happened"], Tmpl)


def test_every_trigger_type_builds_its_record(tmp_path: Path) -> None:
    rules = "".join([
        rule("trigger: {type: schedule, every: 5m}\nevent: {title: t, text: x}", "s1"),
        rule("trigger: {type: schedule, cron: '0 9 * * 1-5', timezone: Europe/Paris}\n"
             "event: {title: t, text: x}", "s2"),
        rule("trigger: {type: file, path: /var/log/app.log, match: 'ERROR (?P<msg>.*)', "
             "exclude: healthz, from_beginning: true}\nevent: {title: t, text: x}", "f"),
        rule("trigger: {type: webhook, path: /hooks/deploy, token_env: HOOK_TOKEN}\n"
             "event: {title: t, text: x}", "w"),
        rule("trigger: {type: command, command: \"df -h '/var/lib'\", every: 1h, on: change}\n"
             "event: {title: t, text: x}", "c"),
        rule("trigger: {type: stdin}\nevent: {title: t, text: x}", "i"),
    ])
    result = load_rules([write(tmp_path, "r.yaml", HEAD + rules)])
    assert result.problems == ()
    triggers = {r.id: r.trigger for r in result.rules}
    assert triggers["s1"] == ScheduleTrigger(every=300.0)
    assert triggers["s2"] == ScheduleTrigger(cron="0 9 * * 1-5", timezone="Europe/Paris")
    file_trigger = triggers["f"]
    assert isinstance(file_trigger, FileTrigger) and file_trigger.from_beginning
    match = file_trigger.match.search("x ERROR disk full")
    assert match is not None and match.group("msg") == "disk full"
    assert file_trigger.exclude is not None and file_trigger.exclude.search("GET /healthz")
    assert triggers["w"] == WebhookTrigger(path="/hooks/deploy", token_env="HOOK_TOKEN")
    assert triggers["c"] == CommandTrigger(command=("df", "-h", "/var/lib"), every=3600.0,
                                           timeout=30.0, on="change")
    assert triggers["i"].type == "stdin"


def test_unknown_key_says_did_you_mean_at_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule("trigger: {type: manual}\n"
                                                 "event:\n  titel: t\n  text: x"))
    problem = only(load_rules([path]).problems)
    assert problem.location == Location(path, 6, 7)
    assert "unknown key 'titel' in event (did you mean 'title'?)" in problem.message
    assert problem.rule_id == "r1" and problem.check == "schema"


def test_true_where_a_string_is_expected_says_quote_it(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule("trigger: {type: manual}\n"
                                                 "event: {title: t, text: true}"))
    problem = only(load_rules([path]).problems)
    assert problem.message == ("event.text: expected a string, got boolean true from "
                               "unquoted `true`: quote it ('true')")
    assert problem.location == Location(path, 5, len("    event: {title: t, text: ") + 1)


def test_yes_where_a_boolean_is_expected_says_write_true(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule("trigger: {type: manual}\nunified_tags: yes\n"
                                                 "event: {title: t, text: yes}"))
    problem = only(load_rules([path]).problems)
    assert problem.message == ("unified_tags: expected true or false, got string 'yes': "
                               "YAML 1.2 reads `yes` as a string; write true")
    assert problem.location == Location(path, 5, len("    unified_tags: ") + 1)


def test_quoted_yes_is_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule("trigger: {type: manual}\n"
                                                 "event: {title: t, text: 'yes'}"))
    assert load_rules([path]).problems == ()


def test_unquoted_number_as_string_param_example_says_quote_it(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule(
        "trigger: {type: manual}\nparams:\n  version: {type: string, example: 1.10}\n"
        "event: {title: t, text: x}"))
    problem = only(load_rules([path]).problems)
    assert "got number 1.1 from unquoted `1.10`: quote it ('1.10')" in problem.message
    assert problem.location == Location(path, 6, 40)


def test_enum_literal_typo_is_caught_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule("trigger: {type: manual}\n"
                                                 "event: {title: t, text: x, alert_type: eror}"))
    problem = only(load_rules([path]).problems)
    assert "'eror' is not allowed (did you mean 'error'?)" in problem.message
    assert "error, warning, info, success" in problem.message
    assert problem.location == Location(path, 5, 44)


def test_enum_field_accepts_a_template(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule(
        "trigger: {type: manual}\nevent: {title: t, text: x, priority: \"{{ p }}\"}"))
    assert load_rules([path]).problems == ()


def test_quoted_date_happened_says_remove_the_quotes(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule(
        "trigger: {type: manual}\nevent: {title: t, text: x, date_happened: '1700000000'}"))
    problem = only(load_rules([path]).problems)
    assert "remove the quotes" in problem.message


@pytest.mark.parametrize(
    ("trigger", "at", "expected"),
    [
        ("{type: file, path: /x, match: '(?P<a>x'}", "'(?P", "trigger.match: invalid regular"),
        ("{type: file, path: /x, match: ok, exclude: '['}", "'['", "trigger.exclude: invalid"),
        ("{type: schedule, cron: '61 * * * *'}", "'61", "is not a valid cron expression"),
        ("{type: schedule, cron: '* * *'}", "'*", "is not a valid cron expression"),
        ("{type: schedule, every: 1m, timezone: Mars/Base}", "Mars", "unknown time zone 'Mars/"),
        ("{type: schedule, every: 5x}", "5x", "expected a duration such as"),
        ("{type: schedule, every: 0s}", "0s", "must be longer than zero"),
        ("{type: command, command: \"echo 'x\"}", "\"echo", "cannot split"),
        ("{type: schedule}", "{type", "needs exactly one of `every` or `cron`"),
        ("{type: schedule, every: 1m, cron: '* * * * *'}", "{type", "needs exactly one"),
        ("{type: webhook, path: hooks}", "hooks", "'hooks' is not a valid URL path: it must start"),
        ("{type: cronjob}", "cronjob", "'cronjob' is not allowed"),
        ("{type: manual, every: 5m}", "every", "unknown key 'every' in trigger"),
    ],
)
def test_trigger_problems_are_placed(tmp_path: Path, trigger: str, at: str, expected: str) -> None:
    line = f"    trigger: {trigger}"
    text = HEAD + rule(f"trigger: {trigger}\nevent: {{title: t, text: x}}")
    path = write(tmp_path, "r.yaml", text)
    result = load_rules([path])
    problem = only(result.problems)
    assert expected in problem.message
    assert problem.location == Location(path, 4, line.index(at) + 1)
    assert result.rules == ()  # a rule with an error is not handed on


def test_param_default_and_example_checked_against_type_and_enum(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule(
        "trigger: {type: manual}\nparams:\n"
        "  n: {type: integer, default: '3'}\n"
        "  mode: {enum: [a, b], example: c}\n"
        "  flag: {type: boolean, enum: [true, 'no']}\n"
        "  now: {}\n"
        "  ok: {type: number, example: 1, default: 2.5}\n"
        "event: {title: t, text: x}"))
    found = places(load_rules([path]).problems)
    lines = Path(path).read_text().splitlines()
    expected = [(6, "'3'"), (7, "c}"), (8, "'no'"), (9, "now")]
    assert [(line, col) for line, col, _ in found] == [
        (n, lines[n - 1].index(text) + 1) for n, text in expected
    ]
    assert "declared integer, so this must be an integer, got string '3'" in found[0][2]
    assert "'c' is not one of the parameter's enum values: 'a', 'b'" in found[1][2]
    assert "must be true or false, got string 'no'" in found[2][2]
    assert "'now' is reserved" in found[3][2]


def test_bad_param_name_is_placed_at_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule(
        "trigger: {type: manual}\nparams:\n  bad-name: {}\nevent: {title: t, text: x}"))
    problem = only(load_rules([path]).problems)
    assert problem.location == Location(path, 6, 7)
    assert "'bad-name' is not a usable name" in problem.message


def test_title_and_text_required_after_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule("trigger: {type: manual}\nevent: {title: t}"))
    problem = only(load_rules([path]).problems)
    assert "event has no text" in problem.message and problem.location == Location(path, 5, 12)


def test_missing_required_keys_and_version(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "version: 2\nrules:\n  - id: a\n    trigger: {type: manual}\n")
    found = places(load_rules([path]).problems)
    assert (1, 10, "unsupported version 2: this emitter reads rule files of version 1") in found
    assert (3, 5, "missing required key 'event' in the rule") in found


def test_empty_file_and_wrong_top_level(tmp_path: Path) -> None:
    empty = write(tmp_path, "a.yaml", "# nothing here\n")
    listed = write(tmp_path, "b.yaml", "- 1\n")
    result = load_rules([empty, listed])
    assert [p.message for p in result.problems] == [
        "the file is empty; a rule file starts with `version: 1`",
        "the file: expected a mapping, got a list",
    ]


def test_throttle_record(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule(
        MINIMAL + "throttle: {key: '{{ host }}', window: 10m, mode: summary}"))
    (loaded,) = load_rules([path]).rules
    assert loaded.throttle is not None
    assert loaded.throttle.window == 600.0 and loaded.throttle.mode == "summary"
    assert loaded.throttle.key.text == "{{ host }}" and loaded.throttle.key.location.line == 6


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", HEAD + rule(MINIMAL, "same"))
    second = write(tmp_path, "b.yaml", HEAD + rule(MINIMAL, "other") + rule(MINIMAL, "same"))
    result = load_rules([first, second])
    problem = only(result.problems)
    assert problem.check == "duplicate-id" and problem.rule_id == "same"
    assert problem.location == Location(second, 6, 9)
    assert f"first defined at {first}:3:9" in problem.message
    assert [r.id for r in result.rules] == ["same", "other"]


def test_directory_loads_yaml_below_it_sorted_skipping_tests(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", HEAD + rule(MINIMAL, "b"))
    write(tmp_path, "a/z.yml", HEAD + rule(MINIMAL, "z"))
    write(tmp_path, "a/deploy.test.yaml", "this is not a rule file: [")
    write(tmp_path, ".hidden/x.yaml", "not: [valid")
    write(tmp_path, "notes.txt", "ignored")
    result = load_rules([str(tmp_path)])
    assert result.problems == ()
    assert [Path(f).relative_to(tmp_path).as_posix() for f in result.files] == ["a/z.yml", "b.yaml"]
    assert [r.id for r in result.rules] == ["z", "b"]


def test_same_file_twice_is_loaded_once(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", HEAD + rule(MINIMAL))
    result = load_rules([path, str(tmp_path)])
    assert result.files == (path,) and result.problems == ()


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=re.escape(f"{tmp_path}/nope.yaml: no such file")):
        load_rules([str(tmp_path / "nope.yaml")])


def test_every_problem_of_every_file_in_one_run_sorted(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", "a: [1\n")
    write(tmp_path, "a.yaml", HEAD + rule("trigger: {type: manual}\nevent: {title: t, text: x, "
                                          "priority: high}", "x") + rule(MINIMAL, "good")
          + rule("trigger: {type: manual}\nevent: {titel: t, text: x}", "y"))
    write(tmp_path, "b.yaml", "version: 1\nrules:\n  - id: z\n    trigger: {type: manual}\n"
          "    event: {title: t, text: x}\n    event: {title: t, text: x}\n")
    result = load_rules([str(tmp_path)])
    summary = [(Path(p.location.path).name, p.location.line, p.check)
               for p in result.problems if p.location]
    assert summary == [
        ("a.yaml", 5, "schema"),
        ("a.yaml", 11, "schema"),
        ("b.yaml", 6, "yaml"),
        ("c.yaml", 2, "yaml"),
    ]
    assert [r.id for r in result.rules] == ["good"]
    assert not result.ok


def test_empty_value_and_non_mapping_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", HEAD + rule("trigger: {type: manual}\nevent:\n  title:\n"
                                                 "  text: x") + "  - 42\n")
    found = places(load_rules([path]).problems)
    assert found == [
        (6, 13, "event.title: expected a string, got null (nothing is written after the colon)"),
        (8, 5, "the rule: expected a mapping, got number 42"),
    ]


def test_a_whole_float_date_is_loaded_as_the_integer(tmp_path: Path) -> None:
    # It leaked "TypeError: argument of type 'float' is not iterable" (issue 8, defect 3).
    path = write(tmp_path, "f.yaml", HEAD + rule("""
        trigger: {type: manual}
        event: {title: t, text: x, date_happened: 1767225600.0}
    """))
    result = load_rules([path])
    assert result.problems == ()
    value = result.rules[0].event["date_happened"]
    assert value == 1767225600 and type(value) is int


def test_rule_files_read_numbers_and_booleans_as_yaml_1_2() -> None:
    # `every: 010` is 10 s (YAML 1.1 read octal 8); `0o17` is 15; `text: yes` is text.
    result = load_rules([str(REPO / "tests" / "examples" / "valid" / "yaml12_numbers.yaml"),
                         str(REPO / "tests" / "examples" / "valid" / "yes_as_string.yaml")])
    assert [p for p in result.problems if p.is_error] == []
    by_id = {r.id: r for r in result.rules}
    ten, fifteen = by_id["every-ten-seconds"].trigger, by_id["every-fifteen"].trigger
    assert isinstance(ten, ScheduleTrigger) and ten.every == 10.0
    assert isinstance(fifteen, ScheduleTrigger) and fifteen.every == 15.0
    text = by_id["yaml-one-two"].event["text"]
    assert isinstance(text, Tmpl) and text.text == "yes"
