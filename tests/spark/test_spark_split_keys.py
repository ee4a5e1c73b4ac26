"""``row_key="split"``: no pass over the export before the job. Each task keys its rows by their
split; the keys keep each file's order, equal the row numbers in a file's first split, and the
results are those of the numbered job but for the keys."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError
from pamlib.spark import RowKey
from tests.spark.exports import MAPPING, Export
from tests.spark.test_spark_lines import _cells, _well_formed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

KEYS = ("source_file", "source_row")
PLACE = ("source", "row", "location")


def _run(spark: Any, path: Path, row_key: RowKey, *, lines: bool = True, **options: Any) -> Any:
    import pamlib.spark as ps

    read = {k: options.pop(k) for k in ("multiline", "encoding") if k in options}
    read.setdefault("multiline", False)
    df = ps.read_export(spark, str(path), mapping=MAPPING, **read)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ps, "_READ_LINES", lines)
        options.setdefault("duplicates", "off")
        run = ps.score(df, provider="demo", row_key=row_key, **options)
    assert run._job is not None
    return run


def _outcome(run: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """Scored rows and rejects in key order, and the summary."""
    scored = [r.asDict(recursive=True) for r in run.scored.orderBy(*KEYS).collect()]
    rejects = [r.asDict(recursive=True) for r in run.rejects.orderBy("source", "row").collect()]
    summary = run.summary()
    run.unpersist()
    return scored, rejects, summary


def _keys(scored: list[dict[str, Any]], rejects: list[dict[str, Any]]) -> list[int]:
    return sorted([r["source_row"] for r in scored] + [r["row"] for r in rejects])


@pytest.mark.parametrize("lines", [True, False], ids=["as lines", "split by Spark"])
@pytest.mark.parametrize("which", ["plain", "quoted"])
def test_split_keys_give_the_numbered_job_s_results_in_the_same_order(
    spark: Any, request: pytest.FixtureRequest, which: str, lines: bool, tmp_path: Path
) -> None:
    """Several splits a file (the tests' sessions split every 4 KiB): the rows, rejects and
    counts of ``row_key="number"``, the keys in the same order as the row numbers."""
    export: Export = request.getfixturevalue(which)
    path = tmp_path / "late-reject.csv"  # a reject in the file's last split
    text = export.path.read_text(encoding="utf-8")
    last = text.rindex("PAM-13")
    path.write_text(text[:last] + "PAM-99" + text[last + 6 :], encoding="utf-8")
    numbered = _outcome(_run(spark, path, "number", lines=lines))
    run = _run(spark, path, "split", lines=lines)
    assert (run._job[1].lines is not None) is lines
    keyed = _outcome(run)
    numbers, keys = _keys(*numbered[:2]), _keys(*keyed[:2])
    assert len(set(keys)) == len(keys) == numbered[2].n_read - numbered[2].n_blank
    assert keys != numbers  # the file is several splits: keys past the first are not numbers
    number_of = dict(zip(keys, numbers, strict=True))
    assert all(number_of[k] == k for k in keys if k <= 4096)  # the first split's are
    for a, b in zip(keyed[0], numbered[0], strict=True):
        assert {**a, "source_row": number_of[a["source_row"]]} == b
    for a, b in zip(keyed[1], numbered[1], strict=True):
        assert {k: v for k, v in a.items() if k not in PLACE} == {
            k: v for k, v in b.items() if k not in PLACE
        }
        assert number_of[a["row"]] == b["row"]
    later = 0
    for a in keyed[1]:  # past the first split, a reject says where its split starts
        found = re.fullmatch(r"row (\d+) of the split at byte (\d+)", a["location"])
        if found is None:
            assert a["location"] == f"row {a['row']}"
            assert number_of[a["row"]] == a["row"]
        else:
            assert int(found[1]) + int(found[2]) == a["row"]
            later += 1
    assert later
    assert keyed[2] == numbered[2]


def test_a_file_in_one_split_is_keyed_by_its_row_numbers(spark: Any, plain: Export) -> None:
    """(Spark splits a file into pieces of at most ``maxPartitionBytes``, and smaller ones
    where the data would leave a core idle: at least ``openCostInBytes``.)"""
    confs = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    previous = [spark.conf.get(c) for c in confs]
    for c in confs:
        spark.conf.set(c, str(128 << 20))
    try:
        numbered = _outcome(_run(spark, plain.path, "number"))
        keyed = _outcome(_run(spark, plain.path, "split"))
    finally:
        for c, value in zip(confs, previous, strict=True):
            spark.conf.set(c, value)
    assert keyed == numbered


def test_the_one_job_write_counts_what_the_tasks_read(
    spark: Any, quoted: Export, tmp_path: Path
) -> None:
    """Written before anything else, ``read`` is the tasks' own count of the rows they read,
    beside their count of what each became: the same as the numbered job's pass counted."""
    import pyarrow.parquet as pq

    numbered = _run(spark, quoted.path, "number").write(str(tmp_path / "numbered"))
    keyed = _run(spark, quoted.path, "split").write(str(tmp_path / "keyed"))
    assert keyed == numbered
    assert keyed.n_read == 300
    rows = pq.read_table(tmp_path / "keyed" / "scored").column("source_row").to_pylist()
    assert len(set(rows)) == len(rows) == keyed.n_scored + keyed.n_not_scored


def test_a_kept_export_is_let_go_once_the_output_is_kept(spark: Any, plain: Export) -> None:
    """``cache_export`` with no pass: Spark's CSV reader splits the records (the cache holds
    them), and the cache is dropped once the job's output is kept instead."""
    import pamlib.spark as ps

    df = ps.read_export(spark, str(plain.path), mapping=MAPPING, multiline=False)
    run = ps.score(df, provider="demo", duplicates="off", row_key="split", cache_export=True)
    assert run._job is not None
    assert run._job[1].lines is None
    cached = [df.is_cached]
    assert run.summary().reconciles
    cached.append(df.is_cached)
    assert cached == [True, False]
    run.unpersist()


def test_row_key_split_is_refused_with_duplicates_found_everywhere(
    spark: Any, plain: Export
) -> None:
    with pytest.raises(ConfigurationError, match="within each task only"):
        _run(spark, plain.path, "split", duplicates="global")
    with pytest.raises(ConfigurationError, match="'number' or 'split'"):
        _run(spark, plain.path, "lines")  # type: ignore[arg-type]


def test_repeats_are_found_within_each_task(spark: Any, plain: Export, tmp_path: Path) -> None:
    """``duplicates="partition"``: the second occurrence of an id in the same task is a
    repeat; the export's far-apart repeat is in another task and is not."""
    path = tmp_path / "near.csv"
    text = plain.path.read_text(encoding="utf-8")
    path.write_text(text.replace(",A00003,", ",A00002,", 1), encoding="utf-8")
    _, base_rejects, _ = _outcome(_run(spark, plain.path, "split", duplicates="partition"))
    scored, rejects, summary = _outcome(_run(spark, path, "split", duplicates="partition"))
    assert summary.reconciles
    assert [r["source_row"] for r in scored if r["assessment_id"] == "A00002"] == [2]
    new = Counter(r["code"] for r in rejects) - Counter(r["code"] for r in base_rejects)
    assert list(new.values()) == [1]
    [repeat] = [r for r in rejects if r["row"] == 3]
    assert repeat["code"] in new


# -- lines no pass looked at -------------------------------------------------------------------


def _faulty(plain: Export, folder: Path) -> Path:
    """The plain export with lines a pass would have sent to Spark's CSV reader."""
    lines = plain.path.read_bytes().split(b"\n")
    lines[11] += b"\n\n"  # two empty lines: no record
    lines[21] += b"\n   "  # a line of spaces: a blank record
    lines[31] = lines[31].replace(b"site-", b'si"te-', 1)  # a quote inside a bare field
    lines[41] = lines[41].replace(b"site-", b"site-\xff", 1)  # not UTF-8
    lines[51] = lines[51].replace(b"PAM-13,", b'PAM-13,"open', 1)  # a quote left open
    path = folder / "faulty.csv"
    path.write_bytes(b"\n".join(lines))
    return path


def test_lines_no_pass_looked_at_are_records_rejects_or_nothing_as_pamlib_reads_them(
    spark: Any, plain: Export, tmp_path: Path
) -> None:
    """Empty lines hold no record; a line of spaces is blank; bytes not UTF-8 are an
    ``encoding`` reject (as when Spark's CSV reader splits the records); a quote inside a bare
    field is text, as ``pamlib score`` reads it; a quote left open at the end of the line is
    ``pamlib score``'s ``unclosed-quote`` reject (without ``multiLine`` a record is a line)."""
    run = _run(spark, _faulty(plain, tmp_path), "split", encoding="utf-8")
    assert run._job[1].lines is not None
    scored, rejects, summary = _outcome(run)
    _, base_rejects, base = _outcome(_run(spark, plain.path, "split"))
    assert summary.reconciles
    assert summary.n_read == base.n_read + 1  # the line of spaces
    assert summary.n_blank == base.n_blank + 1
    codes = Counter(r["code"] for r in rejects)
    assert codes - Counter(r["code"] for r in base_rejects) == {"encoding": 1, "unclosed-quote": 1}
    assert summary.n_scored == base.n_scored - 2
    [inner] = [r["site"] for r in scored if '"' in (r["site"] or "")]
    assert inner.startswith('si"te-')


def test_a_file_whose_first_line_is_not_the_header_stops_the_job(
    spark: Any, plain: Export, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    folder = tmp_path / "two"
    folder.mkdir()
    text = plain.path.read_text(encoding="utf-8")
    (folder / "a.csv").write_text(text, encoding="utf-8")
    (folder / "b.csv").write_text(text, encoding="utf-8")
    run = _run(spark, folder, "split")
    (folder / "b.csv").write_text(text.replace("Patient ID", "Patient", 1), encoding="utf-8")
    with pytest.raises(ps.SparkJobError, match="does not start with the header"):
        run.summary()


# -- the keys alone (no Spark) -----------------------------------------------------------------


@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    header=st.booleans(),
    cut=st.integers(1, 20),
)
def test_split_keys_rise_through_the_file_and_number_its_first_split(
    sizes: list[int], header: bool, cut: int
) -> None:
    """Splits of 40 bytes holding up to 40 lines each, read in two batches (cut anywhere):
    the keys rise with the file's order and count the rows of its first split."""
    import pyarrow as pa

    from pamlib._spark_lines import split_keys

    length = 40  # bytes a split: each holds at most that many lines
    blocks = np.concatenate([np.full(min(n, length), k * length) for k, n in enumerate(sizes)])
    files = pa.array(["f.csv"] * len(blocks))
    seen: dict[tuple[str, int], int] = {}
    keys, places = split_keys(files[:cut], blocks[:cut], seen, header_counted=header)
    more, later = split_keys(files[cut:], blocks[cut:], seen, header_counted=header)
    keys, places = np.concatenate([keys, more]), np.concatenate([places, later])
    assert (np.diff(keys) > 0).all()
    first = blocks == 0
    expected = np.arange(first.sum()) + (0 if header else 1)
    assert keys[first].tolist() == expected.tolist()
    assert (places[~first] >= 0).all()


_CELL = st.text(st.sampled_from('ab ,"é'), max_size=5)


@settings(max_examples=300)
@given(
    rows=st.lists(st.lists(_CELL, min_size=1, max_size=4), min_size=1, max_size=20),
    quoting=st.booleans(),
)
def test_a_line_no_pass_looked_at_is_read_as_pamlib_reads_that_line(
    rows: list[list[str]], quoting: bool
) -> None:
    """Lines of any shape, quotes anywhere (written as they come, or by the csv module): each
    is a row of the header's three fields as ``pamlib score``'s record reader reads that line
    alone (empty fields null), or else whole in ``_corrupt_record`` for the job's structural
    reject; the first line of the first split is the header and no row; keys count the lines."""
    import csv as csv_module
    import io

    import pyarrow as pa

    from pamlib._spark_lines import LineSplitter
    from pamlib.formats._records import split_records, structural_reject
    from pamlib.spark import _BLOCK, _FILE, _ROW, CORRUPT_COLUMN

    header = ("x", "y", "z")
    lines = []
    for row in rows:
        if quoting:
            text = io.StringIO()
            csv_module.writer(text, lineterminator="").writerow(row)
            lines.append(text.getvalue())
        else:
            lines.append(",".join(row))
    values = ["x,y,z", *lines]
    batch = pa.RecordBatch.from_pydict(
        {
            "value": pa.array(values),
            _FILE: pa.array(["f.csv"] * len(values)),
            _BLOCK: pa.array([0] * len(values), pa.int64()),
        }
    )
    splitter = LineSplitter(plan=None, header=header, delimiter=",", header_line="x,y,z")
    given_back = list(splitter(iter([batch])))
    kept = [(k, line) for k, line in enumerate(lines, start=1) if line]  # empty: no record
    if not given_back:
        assert not kept
        return
    out = pa.Table.from_batches(given_back)
    assert out.column(_ROW).to_pylist() == [k for k, _ in kept]
    for i, (_, line) in enumerate(kept):
        got = [out.column(n)[i].as_py() for n in header]
        if _well_formed(line, ","):  # as Spark's CSV reader reads it: a quoted empty field ""
            fields = next(csv_module.reader([line]))
            cells = _cells(line, ",")
            expected = None
            if len(fields) == 3:
                expected = [
                    v or (None if not c.startswith('"') else v)
                    for v, c in zip(fields, cells, strict=True)
                ]
        else:  # as pamlib score's record reader reads the line alone
            records = list(split_records(io.StringIO(line, newline=""), delimiter=","))
            expected = None
            if len(records) == 1 and structural_reject(records[0], 3) is None:
                expected = [f or None for f in records[0].fields]
        if expected is not None:
            assert got == expected
            assert out.column(CORRUPT_COLUMN)[i].as_py() is None
        else:
            assert got == [None, None, None]
            assert out.column(CORRUPT_COLUMN)[i].as_py() == line
