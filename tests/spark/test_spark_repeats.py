"""Repeated assessment ids across splits and files: where each id is first seen in file order,
from its smallest sequence number when Spark read the splits in file order and from a second
pass when it did not (the property needs no Spark; the job's test skips without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.pipeline import TableScorer
from pamlib.spark import _first_places
from tests.spark.exports import MAPPING, Export, make_export
from tests.spark.test_spark_lines import read_as_lines

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

Split = tuple[str, int, int]  # file, split start, rows


@st.composite
def reads(
    draw: st.DrawFn,
) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, int, int, str]]]:
    """Splits of a few files as a Spark job may read them — packed into tasks in any order (or
    in file order), each task numbering its rows from its partition id << 33 — and an id for
    every row: the splits' (file, start, rows, first number) and the rows' (file, start,
    number, id)."""
    splits: list[Split] = []
    for f in range(draw(st.integers(1, 3))):
        sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        splits += [(f"part-{f}.csv", k * 4096, rows) for k, rows in enumerate(sizes)]
    in_file_order = draw(st.booleans())
    order = sorted(splits) if in_file_order else draw(st.permutations(splits))
    new_task = draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    table, rows = [], []
    task, index = 0, 0
    for (file, start, n), new in zip(order, new_task, strict=True):
        if new:
            task, index = task + draw(st.integers(1, 2)), 0
        first = (task << 33) + index
        table.append((file, start, n, first))
        ids = draw(st.lists(st.sampled_from("abcd"), min_size=n, max_size=n))
        rows += [(file, start, first + k, ids[k]) for k in range(n)]
        index += n
    return draw(st.permutations(table)), rows


@given(reads())
def test_a_smallest_number_is_placed_at_the_first_occurrence_unless_in_doubt(
    read: tuple[list[tuple[str, int, int, int]], list[tuple[str, int, int, str]]],
) -> None:
    """Placed exactly when no split before its own in file order was numbered higher (such a
    split may hold the id); placed, it is the id's first occurrence in file order."""
    splits, rows = read
    firsts: dict[str, tuple[str, int, int]] = {}  # the oracle: every row, in file order
    for file, start, seq, key in sorted(rows):
        firsts.setdefault(key, (file, start, seq))
    smallest = {key: min(seq for *_, seq, k in rows if k == key) for key in firsts}
    keys = sorted(firsts)
    places = _first_places(splits, [smallest[k] for k in keys])
    for key, place in zip(keys, places, strict=True):
        own = next(s for s in splits if s[3] <= smallest[key] < s[3] + s[2])
        doubt = any(s[:2] < own[:2] and s[3] > own[3] for s in splits)
        assert (place is None) is doubt
        if place is not None:
            assert (*place, smallest[key]) == firsts[key]


def test_numbers_in_file_order_are_all_placed() -> None:
    splits = [("a.csv", 0, 3, 0), ("a.csv", 9, 2, 3), ("b.csv", 0, 2, 1 << 33)]
    assert _first_places(splits, [2, 4, 1 << 33]) == [("a.csv", 0), ("a.csv", 9), ("b.csv", 0)]


def test_a_number_in_no_split_or_in_overlapping_ones_is_not_placed() -> None:
    splits = [("a.csv", 0, 3, 0), ("b.csv", 0, 2, 1 << 33)]
    assert _first_places(splits, [3, -1, 1 << 33]) == [None, None, ("b.csv", 0)]
    overlapping = [("a.csv", 0, 3, 0), ("a.csv", 9, 1, 2)]
    assert _first_places(overlapping, [0, 2]) == [None, None]


def _combined(first: Export, second: Export, path: Path) -> dict[int, tuple[str, int]]:
    """Both files as one (the second's header dropped), as ``pamlib score`` reads one export;
    its line → (file name, record number)."""
    text = first.path.read_bytes()
    path.write_bytes(text + second.path.read_bytes().partition(b"\n")[2])
    shift = text.count(b"\n") - 1
    where = {line: (first.path.name, n) for n, line in enumerate(first.lines, start=1)}
    where |= {line + shift: (second.path.name, n) for n, line in enumerate(second.lines, start=1)}
    return where


@pytest.mark.parametrize("quotes", [True, False], ids=["split by Spark", "read as lines"])
@pytest.mark.parametrize(
    ("names", "second_pass"),
    [(("a.csv", "b.csv"), True), (("b.csv", "a.csv"), False)],
    ids=["small file first by name: read after the big one", "big file first: file order"],
)
def test_ids_repeated_across_files_of_different_sizes_are_pamlib_score_s(  # noqa: PLR0917 - fixtures
    spark: Any,
    tmp_path: Path,
    names: tuple[str, str],
    second_pass: bool,
    quotes: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spark packs the bigger file's task first, so with the smaller file first by name the
    numbers do not follow file order and the first occurrences of ids seen first in the big
    file's rows come from a second pass; every id of the small file repeats in the big one.
    Without quotes the job reads the export as lines, with the same result."""
    import pamlib.spark as ps

    folder = tmp_path / "export"
    folder.mkdir()
    small = make_export(folder, n=80, seed=3, name=names[0], quotes=quotes)
    big = make_export(folder, n=240, seed=9, name=names[1], quotes=quotes)
    first, second = sorted((small, big), key=lambda e: e.path.name)
    where = _combined(first, second, tmp_path / "combined.csv")
    expected = TableScorer(mapping=MAPPING, provider="demo").score_source(tmp_path / "combined.csv")

    placed: list[list[tuple[str, int] | None]] = []

    def spy(*args: Any) -> Any:
        placed.append(found := _first_places(*args))
        return found

    monkeypatch.setattr(ps, "_first_places", spy)
    df = ps.read_export(spark, str(folder), mapping=MAPPING, multiline=True)
    run = ps.score(df, provider="demo")
    assert read_as_lines(run) is not quotes
    assert len(placed) == 1
    assert (None in placed[0]) is second_pass

    scored = [
        r.asDict(recursive=True) for r in run.scored.orderBy("source_file", "source_row").collect()
    ]
    keys = ("source_file", "source_row")
    assert [{k: v for k, v in r.items() if k not in keys} for r in scored] == (
        expected.scored.to_arrow().to_pylist()
    )
    rejects = sorted(
        ((r["source"].rsplit("/", 1)[-1], r["row"]), r["code"], r["message"])
        for r in run.rejects.collect()
    )
    assert rejects == sorted(
        (where[r["row"]], r["code"], r["message"]) for r in expected.rejects.to_pylist()
    )
    repeats = {place for place, code, _ in rejects if code == "duplicate-assessment-id"}
    assert (first.path.name, 1) not in repeats
    assert (second.path.name, 1) in repeats  # its id came first in the other file
    summary = run.summary()
    assert summary.reconciles
    assert summary.n_read == expected.summary.n_read
    assert summary.rejected_by_code == expected.summary.rejected_by_code
    run.unpersist()


@pytest.mark.parametrize("limit", [None, 0], ids=["repeats sent to tasks", "repeats joined"])
@pytest.mark.parametrize("multiline", [False, True])
def test_a_line_wider_than_the_header_is_not_its_id_s_first_occurrence(
    spark: Any, tmp_path: Path, multiline: bool, limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark's CSV reader marks a record corrupt only where a query reads every column; the
    pass that finds repeats reads the ids, and must not count the id of a record the job then
    rejects for its field count (``pamlib score`` does not)."""
    import pamlib.spark as ps

    export = make_export(tmp_path, n=120, quotes=False)
    path = tmp_path / "wide.csv"
    text = export.path.read_text(encoding="utf-8")
    path.write_text(text.replace(",A00005,", ",A00090,,", 1), encoding="utf-8")
    expected = TableScorer(mapping=MAPPING, provider="demo").score_source(path)
    assert (91, "duplicate-assessment-id") not in {  # the line after the header's, 90 on
        (r["row"], r["code"]) for r in expected.rejects.to_pylist()
    }
    monkeypatch.setattr(ps, "_READ_LINES", False)
    if limit is not None:
        monkeypatch.setattr(ps, "_BROADCAST_REPEATS", limit)
    df = ps.read_export(spark, str(path), mapping=MAPPING, multiline=multiline)
    run = ps.score(df, provider="demo")
    assert not read_as_lines(run)
    rejects = sorted((r["row"], r["code"], r["message"]) for r in run.rejects.collect())
    assert rejects == sorted(  # one record a line: record n is line n + 1
        (r["row"] - 1, r["code"], r["message"]) for r in expected.rejects.to_pylist()
    )
    assert run.summary().rejected_by_code == expected.summary.rejected_by_code
    run.unpersist()


def test_the_pass_reads_every_column_of_the_records(spark: Any, tmp_path: Path) -> None:
    """What keeps the pass's corrupt records those of the job (see the test above): Spark
    parses every column for it."""
    import pamlib.spark as ps

    export = make_export(tmp_path, n=120, quotes=False)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING)
    header = tuple(c for c in df.columns if c not in ps.KEY_COLUMNS)
    keyed = df.select(ps._readable("assessment_id", header).alias("readable"))
    spark.conf.set("spark.sql.maxMetadataStringLength", "10000")  # the whole read schema
    try:
        plan = keyed._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.unset("spark.sql.maxMetadataStringLength")
    read = next(line for line in plan.splitlines() if "ReadSchema" in line)
    schema = read[read.index("ReadSchema") :]
    assert all(f"{c}:" in schema for c in header), schema
