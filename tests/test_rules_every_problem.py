"""``pamlib rules check`` reports every problem in a file at once, a misspelt pathway included."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import RuleError
from pamlib.plugins import PluginHost
from pamlib.tailoring.engine import build_engine

#: One fault each: the field it is reported at, and the TOML lines that make it.
FAULTS = {
    "priority": ("priority", 'priority = "high"'),
    "condition": ("when.levle", "when = { levle = 2 }"),
    "reason": ("reason", 'reason = "   "'),
    "pathway": ("then[0].recommend", 'then = [ { recommend = "health-coachng" } ]'),
}
DEFAULTS = {
    "priority": "priority = 1",
    "condition": "when = { level = 2 }",
    "reason": 'reason = "Level 2 is offered coaching."',
    "pathway": 'then = [ { recommend = "health-coaching" } ]',
}


def rule_text(rule_id: str, faults: frozenset[str]) -> str:
    lines = ["[[rule]]", f'id = "{rule_id}"']
    lines += [FAULTS[k][1] if k in faults else DEFAULTS[k] for k in FAULTS]
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Only pamlib's own pathways are known."""


@given(st.lists(st.frozensets(st.sampled_from(sorted(FAULTS))), min_size=1, max_size=4))
def test_every_fault_is_reported_once_whatever_else_is_wrong(
    tmp_path_factory: pytest.TempPathFactory, rules: list[frozenset[str]]
) -> None:
    """Each fault put in a rule is one problem at its field, however many others the rule or
    the file has: a misspelt pathway is never held back until the rest is fixed."""
    path = tmp_path_factory.mktemp("rules") / "site.toml"
    path.write_text(
        "\n".join(rule_text(f"site.r{i}", f) for i, f in enumerate(rules)), encoding="utf-8"
    )
    expected = sorted(
        f"site.toml: rule 'site.r{i}': {FAULTS[k][0]}" for i, f in enumerate(rules) for k in f
    )
    if not expected:
        build_engine([path])
        return
    with pytest.raises(RuleError) as info:
        build_engine([path])
    found = sorted(p.where.replace(str(path.parent) + "/", "") for p in info.value.problems)
    assert found == expected


def test_rules_check_prints_a_misspelt_pathway_beside_the_other_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        rule_text("site.a", frozenset({"priority", "pathway"}))
        + rule_text("site.b", frozenset({"condition"})),
        encoding="utf-8",
    )
    assert main(["rules", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "rule 'site.a': priority" in err
    assert "rule 'site.b': when.levle" in err
    assert "unknown pathway 'health-coachng'" in err
    assert "rule 'site.a': then[0].recommend" in err


def test_a_pathway_defined_in_the_file_is_known_to_a_refused_rule(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    text = rule_text("site.a", frozenset({"priority"})).replace("health-coaching", "walks")
    path.write_text(text + '\n[[pathway]]\nid = "walks"\nname = "Walks"\n', encoding="utf-8")
    with pytest.raises(RuleError) as info:
        build_engine([path])
    assert [p.code for p in info.value.problems] == ["priority"]
