"""A file whose path holds an NHS number (an export saved one file per patient, as
``9434765919.csv``, or in a folder so named) is not named by that path in Spark's output unless
the run keeps NHS numbers: its ``source_file`` (and the rejects' ``source``) withholds each
NHS number and gives the file's place among the export's files in name order instead, so that
every row key stays one file's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
import pytest

from pamlib._spark_line_ends import file_key
from pamlib.errors import PamlibError
from pamlib.spark import _Job
from tests.spark.exports import MAPPING, make_export

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

NUMBERS = ("9434765919", "4010232137")
#: The export's files as written: in name order, the folder named by an NHS number first.
NAMES = (f"{NUMBERS[1]}/export.csv", f"plain/{NUMBERS[0]}.csv", "plain/export-b.csv")


def _job(places: dict[str, int], *, withhold: bool = True) -> _Job:
    return _Job(
        payload=b"", digest="", header=(), schema=None, withhold_files=withhold, file_places=places
    )


def test_a_file_name_holding_an_nhs_number_is_shown_by_its_place() -> None:
    uri = "file:///data/exports/943%20476%205919.csv"
    job = _job({file_key(uri): 3})
    assert job._shown_file(uri) == "file:///data/exports/<NHS number>.csv#3"
    assert job._shown_file("file:///data/exports/order-1234567890.csv") == (
        "file:///data/exports/order-1234567890.csv"  # not a valid NHS number: kept
    )
    assert _job({}, withhold=False)._shown_file(uri) == uri


def test_a_file_the_driver_did_not_list_stops_the_task() -> None:
    with pytest.raises(PamlibError, match="not among the export's files") as caught:
        _job({})._shown_file("file:///data/9434765919.csv")
    assert "9434765919" not in str(caught.value)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("per-patient")
    for seed, name in enumerate(NAMES, start=5):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        made = make_export(target.parent, n=120, seed=seed, name=target.name, quotes=False)
        assert made.path == target
    return root


def _keys(rows: list[Any], column: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row[column], []).append(row["source_row" if column != "source" else "row"])
    return {name: sorted(rows) for name, rows in found.items()}


def _holds_a_number(text: str) -> bool:
    return any(number in text for number in NUMBERS)


@pytest.mark.parametrize("row_key", ["number", "split"])
def test_spark_output_withholds_nhs_numbers_in_file_paths(
    spark: Any, folder: Path, tmp_path: Path, row_key: Literal["number", "split"]
) -> None:
    import pamlib.spark as ps

    df = ps.read_export(spark, str(folder / "*" / "*.csv"), mapping=MAPPING, multiline=False)
    # each file's ids are A00001 on: repeats across files are no concern here
    kept = ps.score(df, provider="demo", keep_nhs_number=True, row_key=row_key, duplicates="off")
    run = ps.score(df, provider="demo", row_key=row_key, duplicates="off")
    assert run.summary() == kept.summary()

    scored_kept = _keys(kept.scored.collect(), "source_file")
    scored = _keys(run.scored.collect(), "source_file")
    rejects_kept = _keys(kept.rejects.collect(), "source")
    rejects = _keys(run.rejects.collect(), "source")
    assert len(scored) == len(scored_kept) == 3
    assert sum(map(_holds_a_number, scored_kept)) == 2  # kept: the URIs as Spark gives them
    assert not any(map(_holds_a_number, [*scored, *rejects]))
    places = {}
    for name in scored:
        found = re.fullmatch(r"file:.*/(<NHS number>/export|<NHS number>)\.csv#(\d)", name)
        if found is None:
            assert name.endswith("/export-b.csv")
            places[name] = next(k for k in scored_kept if k.endswith("/export-b.csv"))
        else:
            place = int(found.group(2))  # the file's place in name order
            places[name] = next(k for k in scored_kept if NAMES[place - 1] in k)
    # each file's rows are the same rows, under the name shown for it
    assert {places[k]: v for k, v in scored.items()} == scored_kept
    assert {places[k]: v for k, v in rejects.items()} == rejects_kept

    if row_key == "number":  # written in one job: the same names in the files written
        target = tmp_path / "out"
        assert run.write(str(target)) == kept.summary()
        written = pq.read_table(target / "scored").column("source_file").unique().to_pylist()
        assert sorted(written) == sorted(scored)
        sources = pq.read_table(target / "rejects").column("source").unique().to_pylist()
        assert sorted(sources) == sorted(rejects)
