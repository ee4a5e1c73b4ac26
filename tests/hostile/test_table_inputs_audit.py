"""Hostile in-memory tables, raw and scored: what an embedding program builds itself.

Each case was read silently as something else, or failed with a bare exception of pyarrow's or
pandas', before it was fixed:

- raw tables: NaN in a float column that also holds a fraction (polars and Arrow keep NaN apart
  from null) was the text ``nan``, so the row was rejected instead of the item left unanswered;
  a float32 column was written widened (``0.10000000149011612``, not ``0.1``); a pandas
  ``Period`` column was read as its count of days (every date rejected); a UUID column as
  sixteen raw bytes; ``Decimal`` and ``numpy.datetime64`` values in an object column (what
  ``pandas.read_sql`` gives) were refused though the same values typed by Arrow are read;
- scored tables from pandas: a column of mixed Python values (ids as numbers and text, dates
  and Timestamps) failed with pyarrow's error, quoting a patient's id; repeated column names
  with pandas' bare ``ValueError``; a filtered frame's index became a column
  ``__index_level_0__`` passed through to every output;
- scored tables from Arrow or polars: ``large_list`` flags failed with a bare pyarrow error;
  a float32 score was read widened (47.29999923706055), a decimal one refused;
- rows of Python values (as JSON gives them) given to ``apply_recommendations`` had every value
  that was not text read as empty — scores, levels, dates — so every row silently got no
  pathway; ``ScoredColumns.from_rows`` read a list of flags as its Python repr, and a column
  name that is not text failed with a bare ``TypeError``.
"""

from __future__ import annotations

import decimal
import json
import uuid
from typing import Any

import numpy as np
import pytest

from pamlib.errors import ConfigurationError, FormatError
from pamlib.pipeline import score_table
from pamlib.plugins import PluginHost

pa = pytest.importorskip("pyarrow")

ITEMS = [f"q{k:02d}" for k in range(1, 14)]


def _host() -> PluginHost:
    return PluginHost(load_entry_points=False, disabled=())


def _text(n: int = 3) -> dict[str, list[str]]:
    """A raw export's columns as a CSV holds them."""
    return {
        "assessment_id": [f"a{i}" for i in range(n)],
        "patient_id": [f"P{i}" for i in range(n)],
        "assessed_on": [f"2024-03-0{i + 1}" for i in range(n)],
        **{q: [str((i + k) % 4 + 1) for i in range(n)] for k, q in enumerate(ITEMS)},
    }


def _score(data: Any) -> Any:
    return score_table(data, provider="demo", instrument="PAM-13", host=_host())


def _same_run(got: Any, expected: Any) -> None:
    assert got.summary.reconciliation == expected.summary.reconciliation
    assert got.scored.to_arrow().equals(expected.scored.to_arrow())
    assert got.rejects.drop_columns(["fields"]).equals(expected.rejects.drop_columns(["fields"]))


def _with(name: str, values: Any, text: list[str]) -> tuple[Any, Any]:
    """The export with one column typed, and the same export with that column as text."""
    typed, plain = pa.table(_text()), _text()
    plain[name] = text
    index = typed.schema.get_field_index(name)
    if index < 0:
        return typed.append_column(name, values), pa.table(plain)
    return typed.set_column(index, name, values), pa.table(plain)


# -- raw tables ----------------------------------------------------------------------------


def test_nan_beside_a_fraction_is_an_unanswered_item_not_text() -> None:
    values = pa.array([3.0, float("nan"), 2.5], pa.float64())  # NaN a value, not null
    typed, text = _with("q01", values, ["3", "", "2.5"])
    run = _score(typed)
    _same_run(run, _score(text))
    assert run.summary.reconciliation == "read 3 = scored 2 + not scored 0 + rejected 1"
    assert run.rejects.column("code").to_pylist() == ["impossible-answer"]  # 2.5 alone


def test_a_float32_column_is_written_as_itself() -> None:
    values = pa.array(np.array([0.1, 23.7, np.nan], dtype=np.float32))
    typed, text = _with("bmi", values, ["0.1", "23.7", ""])
    run = _score(typed)
    _same_run(run, _score(text))
    assert run.scored.column("bmi").to_pylist() == ["0.1", "23.7", ""]


def test_a_float16_column_is_written_as_itself() -> None:
    """A fraction as the shortest text its float16 holds (``0.1``, not ``0.099975586``); a
    whole number exactly (``65504``, which that shortest text would give as ``65500``)."""
    values = pa.array(np.array([0.1, 47.3, 65504], dtype=np.float16))
    typed, text = _with("bmi", values, ["0.1", "47.3", "65504"])
    run = _score(typed)
    _same_run(run, _score(text))
    assert run.scored.column("bmi").to_pylist() == ["0.1", "47.3", "65504"]


def test_a_decimal_of_negative_scale_is_its_digits() -> None:
    """A NUMERIC column with a negative scale (a site code in tens) holds 30, not ``3E+1``."""
    values = pa.array(
        [decimal.Decimal("3E+1"), decimal.Decimal("-9E+1"), None], pa.decimal128(2, -1)
    )
    typed, text = _with("ward", values, ["30", "-90", ""])
    run = _score(typed)
    _same_run(run, _score(text))
    assert run.scored.column("ward").to_pylist() == ["30", "-90", ""]


def test_a_pandas_period_column_is_read_as_pandas_writes_it() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_text())
    frame["assessed_on"] = pd.to_datetime(frame["assessed_on"]).dt.to_period("D")
    frame["cohort"] = pd.to_datetime(["2024-03-01"] * 3).to_period("M")
    expected = {**_text(), "cohort": ["2024-03"] * 3}
    run = _score(frame)
    _same_run(run, _score(pa.table(expected)))
    assert run.summary.n_scored == 3


def test_a_uuid_column_is_its_usual_text() -> None:
    ids = [uuid.UUID(int=k) for k in range(3)]
    typed, text = _with("visit", pa.array(ids, pa.uuid()), [str(u) for u in ids])
    _same_run(_score(typed), _score(text))


def test_decimals_and_numpy_dates_in_a_pandas_object_column_read_as_typed_ones() -> None:
    """``pandas.read_sql`` gives a NUMERIC column as Decimal objects: read as an Arrow decimal
    column is (``3.00`` is the answer 3, ``2.50`` not one), never refused."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_text())
    frame["q01"] = pd.Series([decimal.Decimal("3.00"), decimal.Decimal("2.50"), None], dtype=object)
    frame["patient_id"] = pd.Series([decimal.Decimal(n) for n in (1001, 1002, 1003)], dtype=object)
    frame["assessed_on"] = pd.Series(
        [np.datetime64(d) for d in _text()["assessed_on"]], dtype=object
    )
    expected = {**_text(), "q01": ["3", "2.50", ""], "patient_id": ["1001", "1002", "1003"]}
    _same_run(_score(frame), _score(pa.table(expected)))


# -- scored tables -------------------------------------------------------------------------


def _scored() -> Any:
    rows = _text(4)
    rows["patient_id"] = ["P0", "P0", "P1", "P1"]
    rows["assessed_on"] = ["2024-01-01", "2024-07-01", "2024-02-01", "2024-08-01"]
    return _score(pa.table(rows)).scored


def test_a_scored_frame_of_mixed_python_values_is_read_as_their_text() -> None:
    pd = pytest.importorskip("pandas")
    from pamlib.tables.scored import ScoredTable

    scored = _scored()
    frame = scored.to_pandas()
    frame["patient_id"] = pd.Series([1001, 1001, "SECRET-7", "SECRET-7"], dtype=object)
    frame["assessed_on"] = pd.Series(
        [d if i % 2 else pd.Timestamp(d) for i, d in enumerate(frame["assessed_on"])],
        dtype=object,
    )
    table = ScoredTable.from_arrow(frame)
    assert table.column("patient_id").to_pylist() == ["1001", "1001", "SECRET-7", "SECRET-7"]
    assert table.column("assessed_on").equals(scored.column("assessed_on"))
    frame["patient_id"] = pd.Series([{"x": "SECRET-7"}] * 4, dtype=object)
    with pytest.raises(FormatError) as caught:
        ScoredTable.from_arrow(frame)
    assert [p.code for p in caught.value.problems] == ["unreadable-column"]
    assert "SECRET" not in str(caught.value)


def test_a_filtered_scored_frame_brings_no_index_column() -> None:
    pytest.importorskip("pandas")
    import pamlib
    from pamlib.tables.scored import ScoredTable

    frame = _scored().to_pandas()
    kept = frame[frame["assessment_id"] != "a1"]  # its index is 0, 2, 3: not a range
    table = ScoredTable.from_arrow(kept)
    assert table.column_names == _scored().column_names
    assert pamlib.tailor(kept, host=_host()).column_names[-4:][0] == "recommended_pathways"


def test_repeated_names_in_a_scored_frame_are_a_problem() -> None:
    pd = pytest.importorskip("pandas")
    from pamlib.tables.scored import ScoredTable

    frame = _scored().to_pandas()
    frame = pd.concat([frame, frame[["instrument"]]], axis=1)
    with pytest.raises(FormatError) as caught:
        ScoredTable.from_arrow(frame, source="cohort")
    assert [(p.where, p.code) for p in caught.value.problems] == [("cohort", "duplicate-column")]


def test_large_list_flags_are_flags() -> None:
    from pamlib.tables.scored import ScoredTable

    table = _scored().to_arrow()
    at = table.schema.get_field_index("flags")
    large = table.set_column(at, "flags", table.column("flags").cast(pa.large_list(pa.string())))
    assert ScoredTable.from_arrow(large).to_arrow().equals(table)


def test_float32_and_decimal_scores_are_the_scores_written() -> None:
    from pamlib.tables.scored import ScoredTable

    table = _scored().to_arrow()
    at = table.schema.get_field_index("score")
    scores = table.column("score").to_pylist()
    narrow = table.set_column(at, "score", table.column("score").cast(pa.float32()))
    assert ScoredTable.from_arrow(narrow).column("score").to_pylist() == scores
    exact = [None if s is None else decimal.Decimal(f"{s:.1f}") for s in scores]
    as_decimal = table.set_column(at, "score", pa.array(exact, pa.decimal128(4, 1)))
    assert ScoredTable.from_arrow(as_decimal).column("score").to_pylist() == scores
    level = table.schema.get_field_index("level")
    levels = [None if v is None else decimal.Decimal(v) for v in table.column("level").to_pylist()]
    as_decimal = table.set_column(level, "level", pa.array(levels, pa.decimal128(1, 0)))
    assert ScoredTable.from_arrow(as_decimal).to_arrow().equals(table)


# -- rows of Python values -----------------------------------------------------------------


def _json_rows() -> list[dict[str, Any]]:
    """The scored rows as a service receives them: JSON, with numbers, lists and booleans."""
    rows = _scored().to_arrow().to_pylist()
    loaded: list[dict[str, Any]] = json.loads(json.dumps(rows, default=str))
    return loaded


def _text_rows() -> list[dict[str, str]]:
    def text(value: Any) -> str:
        if isinstance(value, list):
            return ";".join(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return [{k: text(v) for k, v in row.items()} for row in _json_rows()]


def test_rows_of_python_values_tailor_as_their_text() -> None:
    from pamlib.tailoring.rows import apply_recommendations

    expected = apply_recommendations(_text_rows(), host=_host())
    assert all(expected["recommended_pathways"])
    assert apply_recommendations(_json_rows(), host=_host()) == expected
    columns = {name: [row[name] for row in _json_rows()] for name in _json_rows()[0]}
    assert apply_recommendations(columns, host=_host()) == expected
    numbered = [{**row, 7: "x"} for row in _json_rows()]  # a name that is not text
    assert apply_recommendations(numbered, host=_host()) == expected


def test_report_rows_read_a_list_of_flags_as_flags() -> None:
    from pamlib.reporting._columns import ScoredColumns

    rows = _json_rows()
    rows[0]["flags"] = ["missing-items", "demo"]
    rows[1]["level"] = float(rows[1]["level"])  # a DataFrame's to_dict, with gaps
    columns = ScoredColumns.from_rows(rows)
    assert columns.has_flag("missing-items").tolist() == [True, False, False, False]
    assert columns.level.tolist() == [r["level"] for r in _json_rows()]
    numbered: list[dict[Any, Any]] = [{**r, 7: "x"} for r in rows]  # a name that is not text
    assert len(ScoredColumns.from_rows(numbered)) == 4
    with pytest.raises(FormatError) as caught:
        ScoredColumns.from_rows([{**r, "site": object()} for r in rows])
    assert [p.code for p in caught.value.problems] == ["unreadable-column"]


def test_rows_as_dictionaries_are_read_with_every_key_of_every_row() -> None:
    """``pa.Table.from_pylist``, which the embedding guide once suggested, takes its columns
    from the first row: an answer first given in a later row was dropped without a word (here
    q13, so every row became a ``missing-item-column`` reject). Rows are now read as given."""
    import pamlib

    items = [f"q{k:02d}" for k in range(1, 14)]
    first = {"assessment_id": "a1", "patient_id": "p1", "assessed_on": "2025-03-01"}
    rows = [
        first | dict.fromkeys(items[:12], 3),
        {**first, "assessment_id": "a2", "assessed_on": "2025-09-01"}
        | dict.fromkeys(items, 4)
        | {"ward": "W1"},
    ]
    run = pamlib.score_table(rows, provider="demo", instrument="PAM-13")
    assert run.summary.reconciliation == "read 2 = scored 2 + not scored 0 + rejected 0"
    assert run.scored.column("n_answered").to_pylist() == [12, 13]
    assert run.scored.column("ward").to_pylist() == ["", "W1"]
    assert run.scored.column("assessed_on").to_pylist()[0].isoformat() == "2025-03-01"
    # a generator of rows too; values under no column name (csv.DictReader's surplus fields)
    # and two keys of one text are refused, naming no value
    again = pamlib.score_table(iter(rows), provider="demo", instrument="PAM-13")
    assert again.summary.n_scored == 2
    with pytest.raises(FormatError, match="cannot be read as a table") as caught:
        pamlib.score_table([{**rows[0], None: ["p-secret"]}], provider="demo")
    assert "p-secret" not in str(caught.value)
    with pytest.raises(FormatError) as caught:
        pamlib.score_table([{1: "x", "1": "y"}], provider="demo")
    assert [p.code for p in caught.value.problems] == ["duplicate-column"]
    with pytest.raises(ConfigurationError, match="mix dictionaries"):
        pamlib.score_table([rows[0], 5], provider="demo")


def test_a_frame_with_columns_of_several_levels_is_said_to_be_one() -> None:
    """A MultiIndex of columns was refused as a layout with no item columns, naming columns
    such as ``('q01', '')``: now said as what it is, for raw exports and scored tables."""
    pd = pytest.importorskip("pandas")
    from pamlib.tables.scored import ScoredTable

    frame = pd.DataFrame({("q01", "a"): ["1"], ("patient_id", "a"): ["p"]})
    with pytest.raises(ConfigurationError, match="several levels"):
        score_table(frame, provider="demo", instrument="PAM-13")
    with pytest.raises(ConfigurationError, match="several levels"):
        ScoredTable.from_arrow(frame)
