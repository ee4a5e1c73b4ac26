"""Matching headers to pamlib's columns, and mapping files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats.base import ReadOptions
from pamlib.formats.layout import Layout, item_number, load_mapping
from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "site-export-mapping.toml"
CANONICAL = [
    "patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument", "site",
    *(f"q{i:02d}" for i in range(1, 14)),
]  # fmt: skip


def test_canonical_header() -> None:
    layout = Layout.resolve(CANONICAL, ReadOptions())
    assert layout.columns == {name: i for i, name in enumerate(CANONICAL[:6])}
    assert layout.items == tuple(range(6, 19))
    assert layout.extra_names == ("site",)


def test_names_match_in_any_case_and_items_without_zero() -> None:
    header = ["Patient_ID", " Assessed_On ", "INSTRUMENT", "Q1", "q2", "Q03", "Notes"]
    layout = Layout.resolve(header, ReadOptions())
    assert set(layout.columns) == {"patient_id", "assessed_on", "instrument"}
    assert layout.items == (3, 4, 5)
    assert layout.extra_names == ("Notes",)


def test_item_numbers() -> None:
    assert [item_number(n) for n in ("q1", "Q01", "q22", "q23", "q0", "qq1")] == [
        1, 1, 22, None, None, None
    ]  # fmt: skip


def test_every_header_problem_is_reported_at_once() -> None:
    with pytest.raises(FormatError) as info:
        Layout.resolve(["Name", "When", "Notes"], ReadOptions(mapping={"Missing": "site"}))
    codes = sorted(p.code for p in info.value.problems)
    assert codes == ["missing-column", "no-date", "no-identity", "no-instrument", "no-items"]


def test_two_columns_for_one_name_is_an_error() -> None:
    header = ["patient_id", "Patient_ID", "assessed_on", "instrument", "q01"]
    with pytest.raises(FormatError) as info:
        Layout.resolve(header, ReadOptions())
    assert [p.code for p in info.value.problems] == ["duplicate-column"]


def test_the_example_mapping_reads_the_site_export_header() -> None:
    mapping = load_mapping(EXAMPLE)
    options = mapping.apply(ReadOptions())
    assert options.instrument == "PAM-13"
    assert options.day_first is True
    header = ["NHS Number", "Date Completed", "Practice", "Clinician", *(f"Q{i}" for i in
              range(1, 14)), "Notes"]  # fmt: skip
    layout = Layout.resolve(header, options)
    assert layout.columns == {"nhs_number": 0, "assessed_on": 1, "site": 2}
    assert layout.extra_names == ("site",)
    assert layout.where("assessed_on") == "Date Completed"


def test_mapping_file_problems_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[input]
dates = "sideways"
delimiter = ";;"
colour = "blue"

[columns]
"A" = "not_a_column"
"B" = 7

[answers]
"Meh" = "5"

[extra]
""",
        encoding="utf-8",
    )
    with pytest.raises(FormatError) as info:
        load_mapping(path)
    wheres = sorted(p.where for p in info.value.problems)
    assert wheres == [
        "bad.toml: answers.Meh",
        "bad.toml: columns.A",
        "bad.toml: columns.B",
        "bad.toml: extra",
        "bad.toml: input.colour",
        "bad.toml: input.dates",
        "bad.toml: input.delimiter",
    ]


def test_mapping_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[columns\n", encoding="utf-8")
    with pytest.raises(FormatError, match="not valid TOML"):
        load_mapping(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_mapping(tmp_path / "absent.toml")


def test_mapping_answers_and_instruments(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[answers]\n"Agree a lot" = 4\n"Does not apply" = "na"\n'
        '[instruments]\n"PAM13" = "PAM-13"\n',
        encoding="utf-8",
    )
    options = load_mapping(path).apply(ReadOptions())
    assert options.answer_labels == {"Agree a lot": "4", "Does not apply": "NA"}
    assert options.instrument_aliases == {"PAM13": "PAM-13"}
