"""Hostile in-memory tables and JSON Lines: what an embedding program can hand pamlib.

Each case once slipped through as a bare exception of pyarrow's or pandas', or was read
silently as something else: a clash of column names, a mapping entry naming no pamlib column,
a decimal answer, a repeated JSON key, and a rejects file written over the run's own input.
"""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import pytest

from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats.guard import OutputRefusedError
from pamlib.pipeline import TableScorer, score_table, write_rejects
from pamlib.plugins import PluginHost

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ITEMS = [f"q{k:02d}" for k in range(1, 14)]


def _host() -> PluginHost:
    return PluginHost(load_entry_points=False, disabled=())


def _rows(n: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "assessment_id": f"a{i}",
            "patient_id": f"P{i}",
            "assessed_on": f"2024-03-0{i % 9 + 1}",
            "instrument": "PAM-13",
            **{q: (i + k) % 4 + 1 for k, q in enumerate(ITEMS)},
        }
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "name", ["score", "status", "flags", "reason", "recommended_pathways", "reassess_by"]
)
def test_an_input_column_named_as_an_output_column_is_a_located_problem(name: str) -> None:
    table = pa.Table.from_pylist(_rows()).append_column(name, pa.array(["x", "y", "z"]))
    with pytest.raises(FormatError) as caught:
        score_table(table, provider="raw-sum", host=_host())
    assert [(p.where, p.code) for p in caught.value.problems] == [(name, "column-clash")]


def test_two_input_columns_of_one_name_are_a_located_problem() -> None:
    base = pa.Table.from_pylist(_rows())
    table = pa.Table.from_arrays(
        [*base.columns, pa.array(["n"] * 3), pa.array(["m"] * 3)],
        names=[*base.column_names, "notes", "notes"],
    )
    with pytest.raises(FormatError) as caught:
        score_table(table, provider="raw-sum", host=_host())
    assert [p.code for p in caught.value.problems] == ["column-clash"]


@pytest.mark.parametrize("target", ["q_13", "assesment_id", ""])
def test_a_mapping_entry_naming_no_pamlib_column_is_refused(target: str) -> None:
    table = pa.Table.from_pylist(_rows()).rename_columns(
        [*(["assessment_id", "patient_id", "assessed_on", "instrument"]), *ITEMS[:-1], "Last"]
    )
    with pytest.raises(FormatError) as caught:
        score_table(table, provider="raw-sum", mapping={"Last": target}, host=_host())
    assert "mapping" in str(caught.value)


def test_a_valid_mapping_dictionary_still_maps() -> None:
    table = pa.Table.from_pylist(_rows()).rename_columns(
        [*(["assessment_id", "patient_id", "assessed_on", "instrument"]), *ITEMS[:-1], "Last"]
    )
    run = score_table(table, provider="raw-sum", mapping={"Last": "q13"}, host=_host())
    assert run.scored.column("n_answered").to_pylist() == [13, 13, 13]


def test_whole_decimal_answers_are_the_answers_as_whole_floats_are() -> None:
    rows = _rows()
    table = pa.Table.from_pylist(rows)
    as_float = table.set_column(4, "q01", pa.array([3.0, 2.5, None], pa.float64()))
    as_decimal = table.set_column(
        4,
        "q01",
        pa.array([decimal.Decimal("3.00"), decimal.Decimal("2.50"), None], pa.decimal128(5, 2)),
    )
    by_float = score_table(as_float, provider="raw-sum", host=_host())
    by_decimal = score_table(as_decimal, provider="raw-sum", host=_host())
    assert by_decimal.summary.reconciliation == by_float.summary.reconciliation
    assert by_decimal.scored.column("raw_score") == by_float.scored.column("raw_score")
    assert by_decimal.rejects.column("code").to_pylist() == ["impossible-answer"]


def test_a_pandas_index_that_is_also_a_column_is_read_once() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_rows()).set_index("patient_id", drop=False)
    run = score_table(frame, provider="raw-sum", host=_host())
    assert run.scored.column("patient_id").to_pylist() == ["P0", "P1", "P2"]


def test_a_stream_arrow_cannot_read_is_a_configuration_error() -> None:
    class Unreadable:
        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            raise pa.ArrowInvalid("a type pyarrow does not know")

    with pytest.raises(ConfigurationError, match="cannot be read through Arrow"):
        score_table(Unreadable(), provider="raw-sum", host=_host())


def test_a_json_lines_object_naming_a_key_twice_is_rejected(tmp_path: Path) -> None:
    source = tmp_path / "twice.jsonl"
    first = '{"assessment_id": "a0", "patient_id": "P0", "assessed_on": "2024-03-01", '
    answers = ", ".join(f'"{q}": 2' for q in ITEMS)
    source.write_text(
        f'{first}"instrument": "PAM-13", {answers}}}\n'
        f'{first.replace("a0", "a1")}"instrument": "PAM-13", {answers}, "q01": 4}}\n',
        encoding="utf-8",
    )
    run = TableScorer(provider="raw-sum", host=_host()).score_source(source)
    assert run.summary.reconciliation == "read 2 = scored 1 + not scored 0 + rejected 1"
    rejects = run.rejects.to_pylist()
    assert [(r["row"], r["code"]) for r in rejects] == [(2, "json")]
    assert "repeats" in rejects[0]["message"]


def test_a_runs_rejects_are_never_written_over_its_input(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(_rows()), source)
    before = source.read_bytes()
    run = TableScorer(provider="raw-sum", host=_host()).score_source(source)
    with pytest.raises(OutputRefusedError):
        write_rejects(run, source)
    assert source.read_bytes() == before
    write_rejects(run, tmp_path / "rejects.csv")
    assert (tmp_path / "rejects.csv").read_text(encoding="utf-8").startswith("source,")


def test_a_scored_table_is_never_written_over_the_file_it_came_from(tmp_path: Path) -> None:
    import pamlib
    from pamlib.pipeline import write_scored
    from pamlib.tables.scored import ScoredTable

    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(_rows()), source)
    before = source.read_bytes()
    run = TableScorer(provider="demo", host=_host()).score_source(source)
    tailored = pamlib.tailor(run.scored, host=_host())  # the record follows the table
    for table in (run.scored, tailored):
        with pytest.raises(OutputRefusedError):
            write_scored(table, source, host=_host())
    assert source.read_bytes() == before
    scored = tmp_path / "scored.parquet"
    write_scored(run.scored, scored, host=_host())
    again = ScoredTable.read(scored)
    with pytest.raises(OutputRefusedError):
        write_scored(again, scored, host=_host())
    write_scored(again, tmp_path / "copy.parquet", host=_host())
