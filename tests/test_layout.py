"""Matching headers to pamlib's columns, and mapping files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats.base import ReadOptions
from pamlib.formats.layout import (
    CANONICAL_COLUMNS,
    HEADER_SYNONYMS,
    Layout,
    header_key,
    item_number,
    load_mapping,
    recognise,
)
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


# -- forgiving headers ------------------------------------------------------------------------

REQUIRED = ["patient_id", "assessed_on", "instrument", "q01"]


@st.composite
def spelling(draw: st.DrawFn, name: str) -> str:
    """``name`` in any case, its ``_`` as any run of spaces, hyphens, underscores or nothing,
    with spaces around it and a separator between an item's ``q`` and its number."""
    words = name.split("_")
    if item_number(name) is not None:
        words = [name[0], name[1:].lstrip("0") if draw(st.booleans()) else name[1:]]
    separators = st.sampled_from(["", " ", "  ", "-", "_", " - ", "\u00a0"])
    text = words[0]
    for word in words[1:]:
        text += draw(separators) + word
    text = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in text)
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " ", "\t"]))


@given(st.data(), st.sampled_from([*CANONICAL_COLUMNS, "q01", "q07", "q13", "q22"]))
def test_any_casing_or_spacing_of_a_canonical_name_resolves_to_it(
    data: st.DataObject, name: str
) -> None:
    variant = data.draw(spelling(name))
    assert recognise(variant) == name
    header = [c for c in REQUIRED if c != name] + [variant]
    if name.startswith("q") and name != "q01":
        header.remove("q01")
    layout = Layout.resolve(header, ReadOptions())
    position = len(header) - 1
    if name.startswith("q"):
        assert layout.items[int(name[1:]) - 1] == position
    else:
        assert layout.columns[name] == position
    if not name.startswith("q"):
        assert layout.where(name) == variant


@pytest.mark.parametrize(
    ("column", "spelling"),
    [(c, s) for c, names in HEADER_SYNONYMS.items() for s in names],
)
def test_every_synonym_is_recognised_as_its_column(column: str, spelling: str) -> None:
    assert recognise(spelling) == column
    assert recognise(spelling.upper().replace(" ", "_")) == column


def test_no_spelling_means_two_columns() -> None:
    meaning: dict[str, set[str]] = {}
    for column in CANONICAL_COLUMNS:
        for name in (column, *HEADER_SYNONYMS[column]):
            meaning.setdefault(header_key(name), set()).add(column)
    assert all(len(columns) == 1 for columns in meaning.values())
    assert not any(recognise(f"q{k}") != f"q{k:02d}" for k in range(1, 23))


@pytest.mark.parametrize(
    "name", ["Patient Number", "Date", "Practice", "Site Name", "Q23", "Item 1 comment", "Q1a"]
)
def test_names_that_could_mean_something_else_are_passed_through(name: str) -> None:
    assert recognise(name) is None


def test_items_by_number_in_any_spelling() -> None:
    assert [recognise(n) for n in ("Q 1", "q-01", "Item 2", "ITEM_03", "Question 13")] == [
        "q01", "q01", "q02", "q03", "q13"
    ]  # fmt: skip


def test_the_site_export_header_reads_without_a_mapping() -> None:
    header = ["\ufeffNHS Number", "Date Completed", "Practice", "Clinician",
              *(f"Q{i}" for i in range(1, 14)), "Notes"]  # fmt: skip
    layout = Layout.resolve(header, ReadOptions(instrument="PAM-13"))
    assert layout.columns == {"nhs_number": 0, "assessed_on": 1}
    assert layout.items == tuple(range(4, 17))
    assert layout.extra_names == ("Practice", "Clinician", "Notes")
    assert layout.where("assessed_on") == "Date Completed"


def test_two_columns_recognised_as_one_is_an_error_naming_both() -> None:
    header = ["Patient ID", "Date of assessment", "Date completed", "instrument", "q01"]
    with pytest.raises(FormatError) as info:
        Layout.resolve(header, ReadOptions())
    [problem] = info.value.problems
    assert problem.code == "ambiguous-column"
    assert problem.where == ": columns 2, 3"
    assert "'Date of assessment' and 'Date completed' could each be assessed_on" in (
        problem.message
    )


def test_loose_spellings_of_one_name_are_ambiguous_too() -> None:
    header = ["Patient ID", "patient-id", "assessed_on", "instrument", "q01"]
    with pytest.raises(FormatError) as info:
        Layout.resolve(header, ReadOptions(), source="x.csv")
    assert [(p.where, p.code) for p in info.value.problems] == [
        ("x.csv: columns 1, 2", "ambiguous-column")
    ]


def test_an_exact_name_wins_and_the_loose_one_is_passed_through() -> None:
    header = ["Patient ID", "patient_id", "Assessment Date", "assessed_on", "instrument", "Q1"]
    layout = Layout.resolve(header, ReadOptions())
    assert layout.columns == {"patient_id": 1, "assessed_on": 3, "instrument": 4}
    assert layout.extra_names == ("Patient ID", "Assessment Date")


def test_a_mapping_entry_wins_over_a_recognised_name() -> None:
    header = ["Patient ID", "Assessment Date", "Date completed", "instrument", "Q1"]
    options = ReadOptions(mapping={"Date completed": "assessed_on"})
    layout = Layout.resolve(header, options)
    assert layout.columns == {"patient_id": 0, "assessed_on": 2, "instrument": 3}
    assert layout.extra_names == ("Assessment Date",)


def test_a_dropped_column_is_not_recognised() -> None:
    header = ["Patient ID", "Assessment Date", "Date completed", "instrument", "Q1"]
    layout = Layout.resolve(header, ReadOptions(drop=frozenset({"Assessment Date"})))
    assert layout.columns["assessed_on"] == 2
    assert layout.extra_names == ()


def test_the_scoring_page_lists_every_synonym() -> None:
    page = (ROOT / "docs" / "score.rst").read_text(encoding="utf-8")
    section = page[page.index("Header names pamlib recognises") :]
    missing = [s for names in HEADER_SYNONYMS.values() for s in names if s not in section]
    assert missing == []
