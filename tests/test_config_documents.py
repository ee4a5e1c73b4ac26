"""Every configuration document reports every fault at once, each at its path.

Faults are injected at random places of a valid rule file, column mapping and FHIR mapping: a
value of the wrong type in place of a leaf, or an unknown key in a table. Every one of them is
reported, at the key path the messages write (``site.toml: rule 'site.a': when.score.min``),
whatever else is wrong with the file.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib._config import KeyPath, dotted
from pamlib.errors import ConfigurationError, FormatError
from pamlib.fhir.mapping import parse_mapping
from pamlib.formats.layout import load_mapping
from pamlib.tailoring.rules import check_rules_text, parse_rules

Fault = tuple[str, KeyPath]  # ("type", path of a leaf) or ("unknown", path of a table)
WRONG = [[["not", "this"]]]  # no field of any document takes an array of arrays of arrays

RULES: dict[str, Any] = {
    "format": 1,
    "rule": [
        {
            "id": "site.a",
            "priority": 2,
            "reason": "Level 2 is offered coaching.",
            "when": {"level": [1, 2], "score": {"min": 10, "max": 60}, "site": "north"},
            "unless": {"attributes": {"carer": True}, "transition": "down"},
            "then": [
                {"recommend": "health-coaching", "intensity": "high"},
                {"pathway": "health-coaching", "contact_frequency": "weekly", "note": "n"},
                {"reassess_after_months": 3, "reason": "soon"},
            ],
        },
        {"id": "site.b", "reason": "r", "then": [{"suppress": "*"}]},
    ],
    "pathway": [
        {
            "id": "walks",
            "name": "Walks",
            "description": "d",
            "concept": {"system": "https://example.org", "code": "W"},
        }
    ],
}
CSV: dict[str, Any] = {
    "input": {"instrument": "PAM-13", "dates": "day-first", "delimiter": ";", "drop": ["Notes"]},
    "columns": {"NHS Number": "nhs_number", "Q1": "q01"},
    "answers": {"Agree a lot": 4, "Does not apply": "NA"},
    "instruments": {"PAM13": "PAM-13"},
}
FHIR: dict[str, Any] = {
    "questionnaire": [
        {
            "url": "https://example.org/Q",
            "versions": ["1.0"],
            "instrument": "PAM-13",
            "ignore": ["total"],
            "missing_subject": "anonymous",
            "weight_offset": 1,
            "items": {"q1": "pam13.01"},
            "answers": {"system": "https://example.org/cs", "Y": 4, "N": "NA"},
        }
    ]
}


def candidates(
    value: Any, path: KeyPath, open_tables: Sequence[KeyPath], whole: Sequence[KeyPath]
) -> list[Fault]:
    """Every place a fault can go: each leaf (a table in ``whole`` counts as one), and an
    unknown key in each table but the ``open_tables`` (whose keys are the user's own)."""
    if isinstance(value, dict) and path not in whole:
        out: list[Fault] = [] if path in open_tables else [("unknown", path)]
        for key, item in value.items():
            if key != "id":  # an id names its table in every location: keep it
                out += candidates(item, (*path, key), open_tables, whole)
        return out
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [
            c
            for i, item in enumerate(value)
            for c in candidates(item, (*path, i), open_tables, whole)
        ]
    return [("type", path)]


def inject(document: dict[str, Any], faults: Sequence[Fault]) -> dict[str, Any]:
    out = copy.deepcopy(document)
    node: Any
    for kind, path in faults:
        if kind == "unknown":
            node = out
            for part in path:
                node = node[part]
            node["zz_unknown"] = 1
    for kind, path in faults:  # after the unknown keys: a leaf's table may gain one too
        if kind == "type":
            node = out
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = WRONG
    return out


def expected(faults: Sequence[Fault]) -> list[KeyPath]:
    return [(*path, "zz_unknown") if kind == "unknown" else path for kind, path in faults]


def toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[ " + ", ".join(toml(v) for v in value) + " ]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def toml_document(document: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in document.items())


def faults_of(document: dict[str, Any], **kwargs: Any) -> st.SearchStrategy[list[Fault]]:
    return st.lists(st.sampled_from(candidates(document, (), **kwargs)), min_size=1, unique=True)


def rule_where(path: KeyPath) -> str:
    if path[0] in ("rule", "pathway"):
        table = RULES[str(path[0])][int(path[1])]
        rest = f": {dotted(path[2:])}" if len(path) > 2 else ""
        return f"site.toml: {path[0]} {table['id']!r}{rest}"
    return f"site.toml: {dotted(path)}"


def test_the_valid_documents_are_valid(tmp_path: Path) -> None:
    assert len(parse_rules(toml_document(RULES), "site.toml").rules) == 2
    (tmp_path / "m.toml").write_text(toml_document(CSV), encoding="utf-8")
    assert load_mapping(tmp_path / "m.toml").instrument == "PAM-13"
    assert len(parse_mapping(FHIR, "m.toml").questionnaires) == 1


@settings(max_examples=40, deadline=None)
@given(faults=faults_of(RULES, open_tables=[], whole=[]))
def test_every_fault_in_a_rule_file_is_reported_at_its_path(faults: list[Fault]) -> None:
    _, problems = check_rules_text(toml_document(inject(RULES, faults)), "site.toml")
    found = {p.where for p in problems}
    assert {rule_where(path) for path in expected(faults)} <= found


@settings(max_examples=40, deadline=None)
@given(faults=faults_of(CSV, open_tables=[("columns",), ("answers",), ("instruments",)], whole=[]))
def test_every_fault_in_a_column_mapping_is_reported_at_its_path(
    tmp_path_factory: pytest.TempPathFactory, faults: list[Fault]
) -> None:
    path = tmp_path_factory.mktemp("mapping") / "m.toml"
    path.write_text(toml_document(inject(CSV, faults)), encoding="utf-8")
    with pytest.raises(FormatError) as info:
        load_mapping(path)
    found = {p.where for p in info.value.problems}
    assert {f"m.toml: {dotted(p)}" for p in expected(faults)} <= found


ITEMS = ("questionnaire", 0, "items")


@settings(max_examples=40, deadline=None)
@given(faults=faults_of(FHIR, open_tables=[(*ITEMS[:2], "answers")], whole=[ITEMS]))
def test_every_fault_in_a_fhir_mapping_is_reported_at_its_path(faults: list[Fault]) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_mapping(inject(FHIR, faults), "m.toml")
    lines = str(info.value).splitlines()
    for path in expected(faults):
        assert any(line.endswith(f"@ m.toml: {dotted(path)}") for line in lines), path
