"""Rule files: what they may say, and bad files rejected with the file, rule id and field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from pamlib.errors import RuleError
from pamlib.plugins import PluginHost
from pamlib.tailoring import (
    DEFAULT_RULES,
    EXAMPLE_SITE_RULES,
    Context,
    Note,
    Reassess,
    Recommend,
    SetContactFrequency,
    SetIntensity,
    Suppress,
    build_engine,
    load_rules,
    parse_rules,
)
from pamlib.tailoring._conditions import CONDITION_KEYS
from tests.tailoring_strategies import rule_tables, toml_file

SRC = Path(__file__).resolve().parent.parent / "src" / "pamlib" / "tailoring"


@pytest.fixture(scope="module")
def bare_host() -> PluginHost:
    return PluginHost(load_entry_points=False, disabled=())


def problems_of(text: str, source: str = "site.toml") -> list[tuple[str, str]]:
    with pytest.raises(RuleError) as info:
        parse_rules(text, source)
    return [(p.where, p.code) for p in info.value.problems]


def test_shipped_files_are_valid() -> None:
    defaults = load_rules(DEFAULT_RULES)
    assert all(r.id.startswith("pamlib.") and r.priority == 0 for r in defaults.rules)
    example = load_rules(EXAMPLE_SITE_RULES)
    assert {r.id.split(".")[0] for r in example.rules} == {"riverside"}
    assert [p["id"] for p in example.pathways] == ["riverside.breathe-easy"]


def test_actions_as_written() -> None:
    rule_file = parse_rules(
        """
        [[rule]]
        id = "site.all"
        priority = 7
        reason = "  every kind of action  "
        when = { level = [1, 2], attributes = { condition = ["COPD", "asthma"], carer = false } }
        unless = { flags = "demo" }
        then = [
          { recommend = ["health-coaching", "peer-support"], intensity = "high", reason = "why" },
          { suppress = "*" },
          { pathway = "peer-support", intensity = "low", contact_frequency = "weekly", note = "n" },
          { note = "general" },
          { reassess_after_months = 3 },
        ]
        """,
        "all.toml",
    )
    (r,) = rule_file.rules
    assert (r.id, r.priority, r.reason, r.source) == (
        "site.all",
        7,
        "every kind of action",
        "all.toml",
    )
    assert r.then == (
        Recommend("health-coaching", "high", None, None, "why"),
        Recommend("peer-support", "high", None, None, "why"),
        Suppress("*"),
        SetIntensity("peer-support", "low"),
        SetContactFrequency("peer-support", "weekly"),
        Note("n", "peer-support"),
        Note("general"),
        Reassess(3),
    )
    copd = Context("a", level=2, attributes={"Condition": " copd "})
    assert r.evaluate(copd) == r.then
    assert (
        r.evaluate(Context("a", level=2, attributes={"condition": "copd", "carer": "yes"})) is None
    )
    assert (
        r.evaluate(Context("a", level=2, attributes={"condition": "copd"}, flags={"demo"})) is None
    )
    assert r.evaluate(Context("a", level=3, attributes={"condition": "copd"})) is None


R1 = 'id = "r1"\nreason = "r"\n'
NOTE = '\nthen = [{ note = "n" }]'


@pytest.mark.parametrize(
    ("body", "where", "code"),
    [
        ('id = "a b"\nreason = "r"' + NOTE, "rule #1 ('a b'): id", "id"),
        ('id = "r1"' + NOTE, "rule 'r1': reason", "reason"),
        (R1, "rule 'r1': then", "then"),
        (R1 + "then = []", "rule 'r1': then", "then"),
        (R1 + "priority = 1.5" + NOTE, "rule 'r1': priority", "priority"),
        (R1 + "colour = 1" + NOTE, "rule 'r1': colour", "unknown-field"),
        (R1 + "when = { level = 5 }" + NOTE, "rule 'r1': when.level", "level"),
        (R1 + "when = { level = true }" + NOTE, "rule 'r1': when.level", "level"),
        (R1 + "when = { score = { min = 60, max = 50 } }" + NOTE, "rule 'r1': when.score", "range"),
        (R1 + "when = { score = { min = 120 } }" + NOTE, "rule 'r1': when.score.min", "number"),
        (
            R1 + "when = { change = { over = 3 } }" + NOTE,
            "rule 'r1': when.change.over",
            "unknown-field",
        ),
        (
            R1 + 'when = { transition = "sideways" }' + NOTE,
            "rule 'r1': when.transition",
            "transition",
        ),
        (R1 + 'when = { flags = "sparkly" }' + NOTE, "rule 'r1': when.flags", "flag"),
        (
            R1 + "when = { attributes = { condition = 3 } }" + NOTE,
            "rule 'r1': when.attributes.condition",
            "attribute",
        ),
        (
            R1 + "when = { python = \"__import__('os')\" }" + NOTE,
            "rule 'r1': when.python",
            "unknown-field",
        ),
        (R1 + "unless = 3" + NOTE, "rule 'r1': unless", "table"),
        (R1 + 'then = [{ recommend = "a b" }]', "rule 'r1': then[0].recommend", "pathway"),
        (R1 + 'then = [{ recommend = "*" }]', "rule 'r1': then[0].recommend", "pathway"),
        (R1 + 'then = [{ recommend = "p", suppress = "p" }]', "rule 'r1': then[0]", "action"),
        (
            R1 + 'then = [{ suppress = "p", intensity = "high" }]',
            "rule 'r1': then[0].intensity",
            "action",
        ),
        (R1 + 'then = [{ intensity = "high" }]', "rule 'r1': then[0].intensity", "pathway"),
        (R1 + 'then = [{ pathway = "p" }]', "rule 'r1': then[0]", "action"),
        (
            R1 + "then = [{ reassess_after_months = 0 }]",
            "rule 'r1': then[0].reassess_after_months",
            "months",
        ),
        (
            R1 + 'then = [{ reassess_after_months = 6, pathway = "p" }]',
            "rule 'r1': then[0].pathway",
            "action",
        ),
        (R1 + 'then = [{ note = "" }]', "rule 'r1': then[0].note", "text"),
        (R1 + 'then = [{ exec = "rm -rf /" }]', "rule 'r1': then[0].exec", "unknown-field"),
        (R1 + 'then = ["recommend"]', "rule 'r1': then[0]", "action"),
    ],
)
def test_bad_rule_named_by_file_rule_and_field(body: str, where: str, code: str) -> None:
    assert (f"site.toml: {where}", code) in problems_of(f"[[rule]]\n{body}\n")


def test_every_problem_at_once() -> None:
    found = problems_of(
        """
        colour = "red"
        format = 2
        [[rule]]
        id = "r1"
        reason = "r"
        then = [{ note = "n" }]
        [[rule]]
        id = "r1"
        reason = "again"
        then = [{ note = "n" }]
        [[rule]]
        id = "r2"
        then = [{ intensity = "high" }]
        [[pathway]]
        id = "p"
        name = ""
        """
    )
    assert found == [
        ("site.toml: colour", "unknown-field"),
        ("site.toml: format", "format"),
        ("site.toml: rule 'r1': id", "duplicate"),
        ("site.toml: rule 'r2': reason", "reason"),
        ("site.toml: rule 'r2': then[0].intensity", "pathway"),
        ("site.toml: pathway 'p': name", "text"),
    ]


def test_not_toml() -> None:
    assert problems_of("[[rule]\nid = ") == [("site.toml", "toml")]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path / "missing.toml")
    (problem,) = info.value.problems
    assert problem.where.endswith("missing.toml")
    assert problem.code == "read"


def test_unknown_pathways_and_duplicate_ids_across_files(
    tmp_path: Path, bare_host: PluginHost
) -> None:
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text('[[rule]]\nid = "site.x"\nreason = "r"\nthen = [{ recommend = "nowhere" }]\n')
    two.write_text('[[rule]]\nid = "site.x"\nreason = "r"\nthen = [{ note = "n" }]\n')
    with pytest.raises(RuleError) as info:
        build_engine([one, two], host=bare_host)
    found = {(p.where, p.code) for p in info.value.problems}
    assert (f"{one}: rule 'site.x': then[0].recommend", "unknown-pathway") in found
    assert (f"rule 'site.x' ({one}, {two})", "duplicate") in found
    with pytest.raises(RuleError, match=r"pamlib\.coaching-level-1"):
        build_engine([DEFAULT_RULES], host=bare_host)  # the defaults are already registered


def test_pathway_tables(tmp_path: Path, bare_host: PluginHost) -> None:
    coded = tmp_path / "coded.toml"
    coded.write_text(
        '[[pathway]]\nid = "peer-support"\n'
        'concept = { system = "https://example.org/codes", code = "PS" }\n'
    )
    same = tmp_path / "same.toml"
    same.write_text(coded.read_text())
    engine = build_engine([coded, same], host=bare_host)
    pathway = engine.pathways["peer-support"]
    assert pathway.name == "Peer support"
    assert pathway.concept is not None
    assert (pathway.concept.system, pathway.concept.code) == ("https://example.org/codes", "PS")

    other = tmp_path / "other.toml"
    other.write_text('[[pathway]]\nid = "peer-support"\ndescription = "changed"\n')
    nameless = tmp_path / "nameless.toml"
    nameless.write_text('[[pathway]]\nid = "new-thing"\n')
    with pytest.raises(RuleError) as info:
        build_engine([coded, other, nameless], host=bare_host)
    found = {(p.where, p.code) for p in info.value.problems}
    assert ("pathway 'peer-support'", "conflict") in found
    assert (f"{nameless}: pathway 'new-thing': name", "missing") in found
    with pytest.raises(RuleError) as info:
        parse_rules(
            '[[pathway]]\nid = "p"\nname = "P"\nconcept = { code = "1", colour = "x" }\n', "c.toml"
        )
    assert {(p.where, p.code) for p in info.value.problems} == {
        ("c.toml: pathway 'p': concept.colour", "unknown-field"),
        ("c.toml: pathway 'p': concept.system", "missing"),
    }


@given(tables=rule_tables())
def test_generated_files_read_back(tables: list[dict[str, Any]]) -> None:
    rule_file = parse_rules(toml_file(tables), "gen.toml")
    assert [r.id for r in rule_file.rules] == [t["id"] for t in tables]
    for rule, table in zip(rule_file.rules, tables, strict=True):
        assert rule.priority == table["priority"]
        assert len(rule.then) >= len(table["then"])


def test_conditions_reference_is_complete() -> None:
    """Every condition is documented in the rule file reference."""
    docs = (SRC.parent.parent.parent / "docs" / "tailoring.rst").read_text(encoding="utf-8")
    for key in CONDITION_KEYS:
        assert f"``{key}``" in docs, key
    for key in (
        "recommend",
        "suppress",
        "intensity",
        "contact_frequency",
        "note",
        "reassess_after_months",
    ):
        assert f"``{key}``" in docs, key


def test_no_code_execution_from_rule_files() -> None:
    """Nothing in the tailoring package can run code named by data."""
    forbidden = re.compile(r"(?<![.\w])(eval|exec|compile|__import__)\(|import_module|run_path")
    for name in ("rules", "_conditions", "context", "engine", "rows", "reassessment"):
        path = SRC / f"{name}.py"
        assert not forbidden.search(path.read_text(encoding="utf-8")), path.name
