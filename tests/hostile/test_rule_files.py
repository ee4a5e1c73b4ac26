"""Hostile tailoring rules: Python rules returning bad actions or raising, rule files whose
conditions can never mean what they say, file names that look like message text, and text
that is not fit for a terminal."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pamlib._documents import DocumentError, parse_json, parse_toml
from pamlib.cli import main
from pamlib.errors import Problem, RuleError, ValidationError
from pamlib.identity import normalise_nhs_number
from pamlib.plugins import PluginHost
from pamlib.tailoring import (
    BUILTIN_PATHWAYS,
    Context,
    Engine,
    Note,
    Reassess,
    Recommend,
    SetContactFrequency,
    SetIntensity,
    Suppress,
    rule,
)
from pamlib.tailoring.rules import Action, check_rules_text

PATHWAYS = {p.id: p for p in BUILTIN_PATHWAYS}
PATHWAY = next(iter(PATHWAYS))
#: A value a rule might quote from the context: never in a message.
SECRET = "9990000011"  # noqa: S105 - a made-up NHS number, not a password


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every command here sees pamlib's built-in plugins only."""


def evaluate(result: object) -> RuleError:
    """The error from evaluating a Python rule that returns ``result``."""

    @rule("site.x", priority=5)
    def returns(ctx: Context) -> Any:
        "A rule under test."
        return result

    engine = Engine([returns], PATHWAYS)
    with pytest.raises(RuleError) as caught:
        engine.evaluate(Context("a1", level=2, assessed_on=dt.date(2024, 1, 1)))
    return caught.value


# -- Python rules returning bad actions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "field"),
    [
        (Note(["x"]), "text"),  # type: ignore[arg-type]
        (Note(None), "text"),  # type: ignore[arg-type]
        (Note(5), "text"),  # type: ignore[arg-type]
        (Note("   "), "text"),
        (Note("a note", pathway=["p"]), "pathway"),  # type: ignore[arg-type]
        (Recommend([PATHWAY]), "pathway"),  # type: ignore[arg-type]
        (Recommend(PATHWAY, intensity={"a": 1}), "intensity"),  # type: ignore[arg-type]
        (Recommend(PATHWAY, contact_frequency=2), "contact_frequency"),  # type: ignore[arg-type]
        (Recommend(PATHWAY, note=b"bytes"), "note"),  # type: ignore[arg-type]
        (Recommend(PATHWAY, reason=""), "reason"),
        (Suppress(None), "pathway"),  # type: ignore[arg-type]
        (SetIntensity(PATHWAY, None), "value"),  # type: ignore[arg-type]
        (SetContactFrequency(PATHWAY, 3), "value"),  # type: ignore[arg-type]
        (Reassess(6, reason=[SECRET]), "reason"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_action_field_is_a_rule_error_at_that_field(action: object, field: str) -> None:
    error = evaluate([action])
    assert [p.where for p in error.problems] == [f"rule 'site.x': result[0].{field}"]
    assert "must be a non-empty text" in str(error)
    assert SECRET not in str(error)


def test_every_bad_field_is_reported_at_once() -> None:
    error = evaluate([Note(5), Recommend([PATHWAY], intensity=1)])  # type: ignore[arg-type]
    assert [p.where for p in error.problems] == [
        "rule 'site.x': result[0].text",
        "rule 'site.x': result[1].pathway",
        "rule 'site.x': result[1].intensity",
    ]
    assert "not int" in str(error)
    assert "not list" in str(error)


def test_a_float_number_of_months_is_still_refused() -> None:
    error = evaluate([Reassess(6.0)])  # type: ignore[arg-type]
    assert [p.where for p in error.problems] == ["rule 'site.x': result[0].months"]


def test_good_actions_still_pass() -> None:
    @rule("site.good", priority=5)
    def good(ctx: Context) -> list[Action]:
        "Every kind of action, well formed."
        return [
            Recommend(PATHWAY, intensity="high", contact_frequency="weekly", note="n", reason="r"),
            SetIntensity(PATHWAY, "low"),
            SetContactFrequency(PATHWAY, "monthly"),
            Note("hello", pathway=PATHWAY),
            Reassess(3),
        ]

    outcome = Engine([good], PATHWAYS).evaluate(
        Context("a1", level=2, assessed_on=dt.date(2024, 1, 1))
    )
    assert [r.pathway for r in outcome.recommendations] == [PATHWAY]
    assert outcome.reassess_by == dt.date(2024, 4, 1)


# -- Python rules raising ------------------------------------------------------------------------


def test_a_pamlib_error_from_a_rule_names_the_rule_not_the_input() -> None:
    @rule("site.check", priority=5)
    def check(ctx: Context) -> None:
        "Validate the carer's NHS number."
        normalise_nhs_number(ctx.attributes["carer_nhs"])

    engine = Engine([check], PATHWAYS)
    context = Context("a1", level=2, attributes={"carer_nhs": SECRET})
    with pytest.raises(RuleError) as caught:
        engine.evaluate(context)
    error = caught.value
    assert error.problems == (
        Problem("rule 'site.check'", "rule-failed", "raised ValidationError"),
    )
    assert error.__cause__ is None  # its text may quote the context
    assert SECRET not in str(error)
    assert "nhs_number" not in str(error)


@pytest.mark.parametrize(
    "raised",
    [
        ValueError(f"bad value {SECRET}"),
        KeyError(SECRET),
        ValidationError(f"invalid {SECRET}", [Problem(SECRET, "x", SECRET)]),
        RuleError("about another rule", [Problem("rule 'other.rule'", "x", SECRET)]),
        RuleError("about no rule", []),
        RecursionError(),
    ],
    ids=["ValueError", "KeyError", "ValidationError", "other-rule", "no-problems", "recursion"],
)
def test_any_exception_becomes_a_rule_error_with_its_type_only(raised: Exception) -> None:
    @rule("site.raises", priority=5)
    def raises(ctx: Context) -> None:
        "Always raises."
        raise raised

    with pytest.raises(RuleError) as caught:
        Engine([raises], PATHWAYS).evaluate(Context("a1", level=2))
    assert caught.value.problems == (
        Problem("rule 'site.raises'", "rule-failed", f"raised {type(raised).__name__}"),
    )
    assert caught.value.__cause__ is None  # its text may quote the context
    assert SECRET not in str(caught.value)


def test_a_rule_error_about_the_rule_itself_passes_through() -> None:
    own = RuleError("my own words", [Problem("rule 'site.own': when", "mine", "not today")])

    @rule("site.own", priority=5)
    def raises(ctx: Context) -> None:
        "Raises a rule error about itself."
        raise own

    with pytest.raises(RuleError) as caught:
        Engine([raises], PATHWAYS).evaluate(Context("a1", level=2))
    assert caught.value is own


# -- rule files: conditions that cannot mean what they say ---------------------------------------


def check(tmp_path: Path, text: str, name: str = "site.toml") -> list[Problem]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    _, problems = check_rules_text(text, str(path))
    return problems


RULE = '[[rule]]\nid = "site.r"\nreason = "Why."\nthen = [ { suppress = "*" } ]\n'


def test_an_empty_unless_is_refused_at_its_field(tmp_path: Path) -> None:
    problems = check(tmp_path, RULE + "unless = {}\n")
    assert [(p.where, p.code) for p in problems] == [
        (f"{tmp_path / 'site.toml'}: rule 'site.r': unless", "empty")
    ]
    assert "never apply" in problems[0].message


def test_an_empty_unless_is_an_error_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(RULE + "unless = {}\n", encoding="utf-8")
    assert main(["rules", "check", str(path)]) == 1
    captured = capsys.readouterr()
    assert "OK" not in captured.out
    assert "unless \n" not in captured.out
    assert f"@ {path}: rule 'site.r': unless" in captured.err


def test_an_empty_when_still_means_always(tmp_path: Path) -> None:
    assert check(tmp_path, RULE + "when = {}\n") == []


def test_an_unless_with_conditions_is_still_accepted(tmp_path: Path) -> None:
    assert check(tmp_path, RULE + 'unless = { flags = "demo" }\n') == []


def test_an_unless_with_a_bad_condition_reports_that_condition(tmp_path: Path) -> None:
    problems = check(tmp_path, RULE + "unless = { levle = 2 }\n")
    assert [p.where.rsplit(": ", 1)[1] for p in problems] == ["unless.levle"]


@pytest.mark.parametrize("name", ['""', '"   "'])
@pytest.mark.parametrize("table", ["when", "unless"])
def test_an_empty_attribute_name_is_refused(tmp_path: Path, name: str, table: str) -> None:
    problems = check(tmp_path, RULE + f"{table} = {{ attributes = {{ {name} = true }} }}\n")
    assert [(p.where.rsplit(": ", 1)[1], p.code) for p in problems] == [
        (f"{table}.attributes", "attributes")
    ]
    assert "cannot be empty" in problems[0].message


def test_an_empty_attribute_name_among_good_ones_is_refused(tmp_path: Path) -> None:
    text = RULE + 'when = { attributes = { condition = "COPD", "" = "x" } }\n'
    assert [p.code for p in check(tmp_path, text)] == ["attributes"]


# -- rules check: warnings belong to the files whose rules they concern --------------------------


def test_a_warning_is_counted_for_a_file_whose_name_has_a_comma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paused = tmp_path / "my, pause.toml"
    paused.write_text(RULE, encoding="utf-8")
    fine = tmp_path / "rule 'fine'.toml"
    fine.write_text(
        '[[rule]]\nid = "site.fine"\nreason = "Why."\nthen = [ { note = "hello" } ]\n',
        encoding="utf-8",
    )
    assert main(["rules", "check", str(paused), str(fine)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"{paused}: valid, 1 warning(s)" in lines[0]
    assert any(line.startswith(f"{fine}: OK") for line in lines)
    warning = (
        f"warning: {paused}: rule 'site.r': then[0]: suppresses every pathway for every "
        "assessment (no when or unless), at priority 0: those assessments get no pathway "
        "unless a rule of higher priority recommends one"
    )
    assert [line for line in lines if line.startswith("warning:")] == [warning]
    assert main(["rules", "check", "--strict", str(paused), str(fine)]) == 1


def test_a_warning_about_rules_in_two_files_counts_in_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for i, pathway in enumerate(PATHWAYS):
        path = tmp_path / f"a, {i}.toml"
        path.write_text(
            f'[[rule]]\nid = "site.s{i}"\nreason = "Why."\n'
            f'then = [ {{ suppress = "{pathway}" }} ]\n',
            encoding="utf-8",
        )
        files.append(path)
    assert main(["rules", "check", *map(str, files)]) == 0
    out = capsys.readouterr().out
    for path in files:
        assert f"{path}: valid, 1 warning(s)" in out


# -- text fit for a terminal, and numbers too long -----------------------------------------------


def test_explain_escapes_control_characters_in_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        "[[rule]]\n"
        'id = "site.loud"\n'
        "priority = 90\n"
        'reason = "Be\\u001b[31m loud\\u0000 now\\r\\n+ recommend faked"\n'
        f'then = [ {{ recommend = "{PATHWAY}", intensity = "hi\\u009bgh" }} ]\n',
        encoding="utf-8",
    )
    argv = ["rules", "explain", "--rules", str(path), "--level", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x00\x1b\r\x9b")
    assert "Be\\x1b[31m loud\\x00 now\\r\\n+ recommend faked" in out
    assert "hi\\x9bgh" in out
    assert not any(line.startswith("+ recommend faked") for line in out.splitlines())
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    reasons = [t["reason"] for t in data["trace"]]
    assert "Be\x1b[31m loud\x00 now\r\n+ recommend faked" in reasons


def test_rules_check_escapes_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        RULE.replace("then", 'when = { attributes = { "a\\u001b[2J" = true } }\nthen'),
        encoding="utf-8",
    )
    assert main(["rules", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "a\\x1b[2J is set" in out


@pytest.mark.parametrize("parse", [parse_toml, parse_json])
def test_a_number_too_long_is_said_plainly(parse: object) -> None:
    text = ("x = " if parse is parse_toml else "") + "9" * 5000
    with pytest.raises(DocumentError) as caught:
        parse(text, "site.toml")  # type: ignore[operator]
    message = caught.value.problem.message
    assert "a number is too long" in message
    assert "sys." not in message
    assert "set_int_max_str_digits" not in message


def test_other_unusable_json_keeps_its_reason() -> None:
    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not a JSON number")

    with pytest.raises(DocumentError) as caught:
        parse_json("NaN", "c.json", parse_constant=refuse)
    assert caught.value.problem.message == "not usable JSON: NaN is not a JSON number"


def test_a_rule_file_with_a_number_too_long_is_a_located_problem(tmp_path: Path) -> None:
    problems = check(tmp_path, RULE.replace("then", "priority = " + "9" * 5000 + "\nthen"))
    assert [p.where for p in problems] == [str(tmp_path / "site.toml")]
    assert "a number is too long (more than " in problems[0].message
