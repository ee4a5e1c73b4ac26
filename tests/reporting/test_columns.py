"""Reading a scored table: rows, Arrow, CSV and Parquet agree; problems are all reported."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, FormatError
from pamlib.reporting import (
    SCORED_TABLE_COLUMNS,
    IdentifyingColumnError,
    ReportConfig,
    ScoredColumns,
    build_report,
    load_scored,
    summary_json,
)

Row = dict[str, str]
MakeRow = Callable[..., Row]
MakeCohort = Callable[..., list[Row]]

needs_arrow = pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is None, reason="reading files needs the arrow extra"
)


def write_csv(path: Path, rows: list[Row]) -> Path:
    names = list(SCORED_TABLE_COLUMNS) + [k for k in rows[0] if k not in SCORED_TABLE_COLUMNS]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=names, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def same_columns(a: ScoredColumns, b: ScoredColumns) -> None:
    for name in ("assessment_id", "patient_id", "flags"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist()
    for name in ("assessed_on", "scored", "level", "demo"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.score, b.score)  # NaN == NaN here
    for name, values in b.text.items():  # ``a`` may hold more (empty) columns
        assert a.text[name].tolist() == values.tolist()


def test_rows_csv_and_parquet_agree(tmp_path: Path, make_cohort: MakeCohort) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = make_cohort(seed=2, n_patients=60)
    from_rows = ScoredColumns.from_rows(rows)
    from_csv = load_scored(write_csv(tmp_path / "scored.csv", rows))
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "scored.parquet")
    same_columns(from_csv, from_rows)
    same_columns(load_scored(tmp_path / "scored.parquet"), from_rows)
    same_columns(ScoredColumns.from_arrow(table), from_rows)
    config = ReportConfig(group_by="site")
    when = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)  # the context says when: make it the same
    assert summary_json(
        build_report(tmp_path / "scored.csv", config, generated_at=when)
    ) == summary_json(build_report(from_rows, config, generated_at=when))


def test_typed_arrow_columns_are_read_too(make_row: MakeRow) -> None:
    pa = pytest.importorskip("pyarrow")
    import datetime as dt

    table = pa.table(
        {
            "patient_id": ["p", "p"],
            "assessed_on": [dt.date(2024, 1, 10), dt.date(2024, 9, 10)],
            "status": ["scored", "scored"],
            "score": [40.0, 45.5],
            "level": pa.array([1, None], type=pa.int64()),
            "demo": [False, True],
        }
    )
    columns = ScoredColumns.from_arrow(table)
    assert columns.level.tolist() == [1, 0]
    assert columns.demo.tolist() == [False, True]
    assert columns.assessed_on.astype(str).tolist() == ["2024-01-10", "2024-09-10"]


@needs_arrow
def test_identifiers_stay_text(tmp_path: Path, make_row: MakeRow) -> None:
    rows = [make_row("0012", "2024-01-10", 40.0), make_row("12", "2024-01-10", 41.0)]
    columns = load_scored(write_csv(tmp_path / "ids.csv", rows))
    assert sorted(columns.patient_id.tolist()) == ["0012", "12"]


def test_every_problem_is_reported_by_row_without_values(make_row: MakeRow) -> None:
    rows = [
        make_row("SECRET-1", "2024-01-10", 40.0),
        {**make_row("SECRET-2", "2024-01-10", 40.0), "assessed_on": "2024-02-30"},
        {**make_row("SECRET-3", "2024-01-10", 40.0), "assessed_on": "2024"},
        {**make_row("SECRET-4", "2024-01-10", 40.0), "score": "101"},
        {**make_row("SECRET-5", "2024-01-10", 40.0), "score": "high"},
        {**make_row("SECRET-6", "2024-01-10", 40.0), "level": "5"},
        {**make_row("SECRET-7", "2024-01-10", 40.0), "status": "done"},
        {**make_row("SECRET-8", "2024-01-10", 40.0), "demo": "maybe"},
        {**make_row("SECRET-9", "2024-01-10", 40.0), "patient_id": ""},
        {**make_row("SECRET-10", "2024-01-10", 40.0), "demo": "TRUE"},  # fine
    ]
    with pytest.raises(FormatError) as caught:
        ScoredColumns.from_rows(rows)
    problems = {(p.where, p.code) for p in caught.value.problems}
    assert problems == {
        ("rows: row 2", "bad-date"),
        ("rows: row 3", "bad-date"),
        ("rows: row 4", "bad-score"),
        ("rows: row 5", "bad-score"),
        ("rows: row 6", "bad-level"),
        ("rows: row 7", "bad-status"),
        ("rows: row 8", "bad-demo"),
        ("rows: row 9", "no-patient-key"),
    }
    assert "SECRET" not in str(caught.value)
    assert "high" not in str(caught.value)


@needs_arrow
def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "thin.csv"
    path.write_text("patient_id,assessed_on,status\np,2024-01-01,scored\n", encoding="utf-8")
    with pytest.raises(FormatError) as caught:
        load_scored(path)
    assert {p.message for p in caught.value.problems} == {"no column 'score'", "no column 'level'"}


@needs_arrow
def test_repeated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("patient_id,patient_id,assessed_on,status,score,level\n", encoding="utf-8")
    with pytest.raises(FormatError, match="not a scored table"):
        load_scored(path)


def test_unknown_group_column(make_row: MakeRow) -> None:
    columns = ScoredColumns.from_rows([make_row("p", "2024-01-10", 40.0)])
    with pytest.raises(ConfigurationError, match="no column 'ward'"):
        build_report(columns, ReportConfig(group_by="ward"))
    with pytest.raises(
        ConfigurationError, match=r"cannot group by .patient_id.: it identifies patients"
    ):
        build_report(columns, ReportConfig(group_by="patient_id"))


@pytest.mark.parametrize(
    "settings",
    [
        {"min_months": 0},
        {"min_months": 12, "max_months": 6},
        {"threshold": 0},
        {"threshold": 3.25},
        {"group_by": " "},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ReportConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n_alone", "n_shared", "refused"),
    [(4, 0, False), (5, 0, True), (5, 5, False), (6, 5, True)],
)
def test_a_column_is_identifying_when_most_of_its_groups_hold_one_patient(
    make_row: MakeRow, n_alone: int, n_shared: int, refused: bool
) -> None:
    # n_alone groups of one patient each, n_shared groups of two patients each.
    rows = [make_row(f"a{i}", "2024-01-10", 40.0, ward=f"w{i}") for i in range(n_alone)]
    rows += [
        make_row(f"s{i}{j}", "2024-01-10", 40.0, ward=f"shared{i}")
        for i in range(n_shared)
        for j in range(2)
    ]
    config = ReportConfig(group_by="ward")
    if refused:
        with pytest.raises(IdentifyingColumnError, match=f"{n_alone} of its"):
            build_report(ScoredColumns.from_rows(rows), config)
    else:
        assert len(build_report(ScoredColumns.from_rows(rows), config).figures.groups) == (
            n_alone + n_shared
        )


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("p1", True),  # another patient's patient_id
        ("X-first", True),  # an assessment id
        ("943 476 5919", True),  # an NHS number (valid check digit), in the table or not
        ("9434765910", False),  # ten digits, but not a valid NHS number
        ("Other", False),
    ],
)
def test_a_group_value_that_is_an_identifier_is_refused(
    make_row: MakeRow, value: str, refused: bool
) -> None:
    """A column that mixes one identifier with shared values passes the count of groups of one
    patient; any value that is an identifier of the table, or an NHS number, is refused."""
    rows = [make_row("p1", "2024-01-10", 40.0, assessment_id="X-first", ward="Other")]
    rows += [make_row(f"q{i}", "2024-01-10", 40.0, ward="Other") for i in range(9)]
    rows.append(make_row("q9", "2024-02-10", 50.0, ward=value))
    config = ReportConfig(group_by="ward")
    if refused:
        with pytest.raises(IdentifyingColumnError, match="some of its values") as info:
            build_report(ScoredColumns.from_rows(rows), config)
        assert value not in str(info.value)
    else:
        assert build_report(ScoredColumns.from_rows(rows), config).figures.groups


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("Clinic X0012 review", True),  # a patient's id, quoted as a word
        ("clinic x0012", True),  # letter case aside
        ("ref:A-2024-77.", True),  # an assessment id; the dot after it is no part of it
        ("Ward 12", False),  # a short word: some patient's id by chance ("12" is one)
        ("North Practice", False),  # words of letters alone ("north" is a patient's id)
        ("Clinic X00123", False),  # another id, not one of the table's
    ],
)
def test_a_group_value_that_quotes_an_identifier_is_refused(
    make_row: MakeRow, value: str, refused: bool
) -> None:
    """An id quoted in a name (a word of four characters or more, with a digit) names the
    patient as the id alone would; short words and words of letters alone are not looked up."""
    rows = [make_row(p, "2024-01-10", 40.0, ward="Other") for p in ("X0012", "12", "north")]
    rows.append(make_row("q0", "2024-01-10", 40.0, assessment_id="A-2024-77", ward="Other"))
    rows += [make_row(f"q{i}", "2024-01-10", 40.0, ward="Other") for i in range(1, 9)]
    rows.append(make_row("q9", "2024-02-10", 50.0, ward=value))
    config = ReportConfig(group_by="ward")
    if refused:
        with pytest.raises(IdentifyingColumnError, match="some of its values") as info:
            build_report(ScoredColumns.from_rows(rows), config)
        assert value.lower() not in str(info.value).lower()
    else:
        assert build_report(ScoredColumns.from_rows(rows), config).figures.groups


_id_char = st.sampled_from("ABCxyz0123456789_")


@given(
    ident=st.text(_id_char, min_size=3, max_size=12).map(lambda t: t + "7"),
    before=st.sampled_from(["", "Clinic ", "ref:", "(", "Ward 3, "]),
    after=st.sampled_from(["", " review", ")", ".", "; North"]),
)
def test_an_id_quoted_anywhere_in_a_value_is_found(ident: str, before: str, after: str) -> None:
    """Whatever words or punctuation surround it, an id of four characters or more with a
    digit is looked up as a patient key and as an assessment id."""
    import pyarrow as pa

    from pamlib.reporting._privacy import check_not_identifiers, identifier_candidates

    value = before + ident + after
    assert ident in identifier_candidates([value])
    for keys, ids in (([ident], []), ([], [ident.upper()])):
        with pytest.raises(IdentifyingColumnError):
            check_not_identifiers(
                {"ward": [value]},
                patient_keys=pa.array(keys, type=pa.string()),
                assessment_ids=pa.array(ids, type=pa.string()),
            )


def test_a_group_value_that_is_a_patient_keyed_by_nhs_number_is_refused(make_row: MakeRow) -> None:
    rows = [make_row("", "2024-01-10", 40.0, nhs_number="9434765919", ward="Other")]
    rows += [make_row(f"q{i}", "2024-01-10", 40.0, ward="Other") for i in range(9)]
    rows.append(make_row("q9", "2024-02-10", 50.0, ward="nhs:9434765919"))
    with pytest.raises(IdentifyingColumnError, match="some of its values"):
        build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="ward"))


@pytest.mark.parametrize(
    "name",
    [
        "nhs_number",
        "NHS Number",
        "Patient-ID",
        "assessment_id",
        "DOB",
        "year_of_birth",
        "home address",
        "Postcode",
        "surname",
        "mrn",
        "email",
    ],
)
def test_identifier_names_are_refused_before_any_data_is_read(make_row: MakeRow, name: str) -> None:
    columns = ScoredColumns.from_rows([make_row("p", "2024-01-10", 40.0, **{name: "x"})])
    with pytest.raises(IdentifyingColumnError, match="it identifies patients"):
        columns.column(name)


@given(
    keys=st.lists(st.sampled_from(["p1", "p2", "p10", "", "é", "P1"]), max_size=30),
    extra=st.lists(st.sampled_from(["p1", "zz", "", "q"]), max_size=4),
)
def test_factorize_text_of_a_dictionary_is_that_of_its_strings(
    keys: list[str], extra: list[str]
) -> None:
    """A dictionary may repeat a string or hold one no row uses (patient keys are kept
    dictionary-encoded): the distinct strings and codes are those of the plain strings."""
    import pyarrow as pa

    from pamlib.reporting._columns import factorize_text

    plain = pa.array(keys, pa.string())
    dictionary = list(dict.fromkeys(keys)) + extra + keys[:2]  # unused and repeated entries
    position = {k: i for i, k in reversed(list(enumerate(dictionary)))}
    encoded = pa.DictionaryArray.from_arrays(
        pa.array([position[k] for k in keys], pa.int32()), pa.array(dictionary, pa.string())
    )
    want_distinct, want_codes = factorize_text(plain)
    distinct, codes = factorize_text(encoded)
    assert distinct.to_pylist() == want_distinct.to_pylist() == sorted(set(keys))
    assert codes.tolist() == want_codes.tolist()


@given(
    keys=st.lists(st.sampled_from(["p1", "p2", "p10", "", "é", "P1"]), max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    encode=st.booleans(),
)
def test_factorize_text_of_chunks_is_that_of_the_joined_strings(
    keys: list[str], cuts: list[int], encode: bool
) -> None:
    """Patient keys read from a file stay in chunks, each with its own dictionary (a key may
    be in several): the distinct strings and codes are those of the strings joined."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.reporting._columns import factorize_text

    bounds = sorted({0, len(keys), *(min(c, len(keys)) for c in cuts)})
    chunks = [pa.array(keys[a:b], pa.string()) for a, b in itertools.pairwise(bounds)]
    if encode:
        chunks = [pc.dictionary_encode(c) for c in chunks]
    chunked = pa.chunked_array(chunks, chunks[0].type if chunks else pa.string())
    want_distinct, want_codes = factorize_text(pa.array(keys, pa.string()))
    distinct, codes = factorize_text(chunked)
    assert distinct.to_pylist() == want_distinct.to_pylist()
    assert codes.tolist() == want_codes.tolist()


@given(
    values=st.lists(st.text(max_size=3), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    picks=st.lists(st.integers(0, 1000), max_size=20),
)
def test_take_text_from_chunks_is_take_from_the_joined_array(
    values: list[str], cuts: list[int], picks: list[int]
) -> None:
    import pyarrow as pa

    from pamlib.reporting._columns import take_text

    bounds = sorted({0, len(values), *(min(c, len(values)) for c in cuts)})
    chunked = pa.chunked_array(
        [pa.array(values[a:b], pa.string()) for a, b in itertools.pairwise(bounds)]
    )
    rows = np.array([p % len(values) for p in picks], dtype=np.int32)
    assert take_text(chunked, rows).to_pylist() == [values[r] for r in rows.tolist()]


@given(
    pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=40),
    step=st.integers(1, 7),
)
def test_keeping_rows_in_place_is_a_mask(pairs: list[tuple[int, int]], step: int) -> None:
    """Linking keeps usable and in-window rows by moving them to the front of its own arrays,
    a part at a time: the same rows, in the same order, as a mask picks."""
    from unittest import mock

    from pamlib.reporting import _trajectories

    first = np.array([a for a, _ in pairs], dtype=np.int32)
    second = np.array([b for _, b in pairs], dtype=np.int32)
    mask = (first + second) % 3 == 0
    with mock.patch.object(_trajectories, "_WINDOW_ROWS", step):
        kept = _trajectories._keep((first.copy(), second.copy()), lambda part: mask[part])
        by_index = _trajectories._keep(
            (first.copy(), second.copy()),
            lambda rows: mask[rows],
            np.arange(len(first), dtype=np.int32),
        )
    for got in (kept, by_index):
        assert got[0].tolist() == first[mask].tolist()
        assert got[1].tolist() == second[mask].tolist()
