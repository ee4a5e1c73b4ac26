"""An export whose lines are its records is read as lines and split in Python: the same rows,
rejects and counts as Spark's CSV reader gives (and so as ``pamlib score`` gives); anything
that could make the two differ sends the export to Spark's reader instead."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.pipeline import TableScorer
from tests.spark.exports import MAPPING, Export

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

KEYS = ("source_file", "source_row")


def read_as_lines(run: Any) -> bool:
    """Whether the run's job reads the export as lines."""
    assert run._job is not None
    return run._job[1].lines is not None


def _result(run: Any) -> tuple[Any, ...]:
    scored = [r.asDict(recursive=True) for r in run.scored.orderBy(*KEYS).collect()]
    rejects = sorted(
        (
            r["source"],
            r["row"],
            r["location"],
            r["code"],
            r["message"],
            str(r["fields"]),
            r["record"],
        )
        for r in run.rejects.collect()
    )
    summary = run.summary()
    assert summary.reconciles
    run.unpersist()
    return scored, rejects, summary.reconciliation, summary.rejected_by_code


def _both(
    spark: Any, path: Path, monkeypatch: pytest.MonkeyPatch, *, lines: bool, **options: Any
) -> tuple[Any, ...]:
    """The export scored as lines (``lines``: this must be the way taken) and by Spark's CSV
    reader; both results, which must be equal."""
    import pamlib.spark as ps

    names = ("multiline", "mapping", "delimiter", "encoding")
    read = {k: options.pop(k) for k in names if k in options}
    run = ps.score(ps.read_export(spark, str(path), **read), **options)
    assert read_as_lines(run) is lines
    first = _result(run)
    monkeypatch.setattr(ps, "_READ_LINES", False)
    run = ps.score(ps.read_export(spark, str(path), **read), **options)
    assert not read_as_lines(run)
    second = _result(run)
    monkeypatch.setattr(ps, "_READ_LINES", True)
    assert first == second
    return first


@pytest.mark.parametrize("multiline", [False, True])
@pytest.mark.parametrize("duplicates", ["global", "partition", "off"])
@pytest.mark.parametrize("which", ["plain", "quoted"])
def test_lines_give_spark_s_rows_and_pamlib_score_s_results(  # noqa: PLR0917 - fixtures
    spark: Any,
    request: pytest.FixtureRequest,
    which: str,
    multiline: bool,
    duplicates: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(Repeats within each task only, with ``multiline=True``, are repeats within each file:
    there the export is not read as lines, which would split it into several tasks.)"""
    plain: Export = request.getfixturevalue(which)
    scored, rejects, _, by_code = _both(
        spark,
        plain.path,
        monkeypatch,
        lines=not (multiline and duplicates == "partition"),
        multiline=multiline,
        mapping=MAPPING,
        provider="demo",
        duplicates=duplicates,
    )
    expected = TableScorer(mapping=MAPPING, provider="demo").score_source(plain.path)
    if duplicates == "global":
        row_of = {line: n for n, line in enumerate(plain.lines, start=1)}
        assert [(r[1], r[3], r[4]) for r in rejects] == sorted(
            (row_of[r["row"]], r["code"], r["message"]) for r in expected.rejects.to_pylist()
        )
        assert [{k: v for k, v in r.items() if k not in KEYS} for r in scored] == (
            expected.scored.to_arrow().to_pylist()
        )
        assert by_code == expected.summary.rejected_by_code
    assert {"field-count", "date", "impossible-answer"} <= set(by_code)


def _rewrite(source: Path, target: Path, change: Any) -> Path:
    text = source.read_text(encoding="utf-8")
    target.write_bytes(change(text))
    return target


@pytest.mark.parametrize(
    ("change", "multiline", "lines"),
    [
        pytest.param(lambda t: t.replace("\n", "\r\n"), False, True, id="CRLF"),
        pytest.param(lambda t: t.replace("\n", "\r\n"), True, False, id="CRLF, multiline"),
        pytest.param(lambda t: t.replace("P0012,", "P0012\r", 1), False, True, id="a lone CR"),
        # (with multiline on, a lone CR in a \n file is refused: test_spark_line_ends)
        pytest.param(lambda t: "\ufeff" + t, True, True, id="a byte-order mark"),
        pytest.param(lambda t: t.replace(",", ";"), True, True, id="semicolons"),
        pytest.param(lambda t: t.replace("site-1", "sité-\ufffd"), True, True, id="U+FFFD"),
        pytest.param(lambda t: t.replace("A00012,", "A00012,,,", 1), False, True, id="more fields"),
        pytest.param(
            lambda t: t.replace("notes", "no`t.es", 1), False, True, id="a backtick in a name"
        ),
        pytest.param(
            lambda t: t.replace(",A00005,", ",A00090,,", 1),
            False,
            True,
            id="more fields, a later id",
        ),
        pytest.param(
            lambda t: t.replace(",A00005,", ",A00090\n", 1),
            False,
            True,
            id="fewer fields, a later id",
        ),
        pytest.param(
            lambda t: t.replace("P0012,A00012,", '"P0012","A00012",', 1), True, True, id="quoted"
        ),
        pytest.param(
            lambda t: t.replace(",A00090,", ',"A00012",', 1), False, True, id="quoted repeat"
        ),
        pytest.param(
            lambda t: t.replace(",A00090,", ',"A00012","",', 1), False, True, id="quoted, more"
        ),
        pytest.param(
            lambda t: t.replace(",A00090,", ',"A0,0090",', 1), False, True, id="quoted comma"
        ),
    ],
)
def test_other_shapes_of_lines_are_read_as_lines_where_both_readers_agree(  # noqa: PLR0917
    spark: Any,
    plain: Export,
    tmp_path: Path,
    change: Any,
    multiline: bool,
    lines: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``multiLine`` on, Spark's CSV reader finds line ends its own way (a lone CR is
    text to it): lines holding a CR are left to it."""
    path = tmp_path / "export.csv"
    path.write_bytes(change(plain.path.read_text(encoding="utf-8")).encode())
    _both(
        spark, path, monkeypatch, lines=lines, mapping=MAPPING, provider="demo", multiline=multiline
    )


@pytest.mark.parametrize(
    ("change", "encoding"),
    [
        pytest.param(lambda t: t.replace("left a message", 'left "a" message'), None, id="a quote"),
        pytest.param(lambda t: t.replace("\n", "\n  \n", 30), None, id="whitespace lines"),
        pytest.param(lambda t: t.replace("\n", "\n\n", 30), None, id="empty lines"),
        pytest.param(lambda t: t + t.partition("\n")[0] + "\n", None, id="the header again"),
        pytest.param(lambda t: t.replace("site-1", "site-\udcff"), "utf-8", id="not UTF-8"),
        pytest.param(lambda t: t.replace(",A00090,", ',"A00090"x,', 1), None, id="after quotes"),
        pytest.param(lambda t: t.replace(",A00090,", ',"A00\n090",', 1), None, id="line break"),
        pytest.param(lambda t: t.replace(",A00090,", ', "A00090",', 1), None, id="space, quote"),
    ],
)
def test_lines_that_may_not_be_records_go_to_spark_s_reader(  # noqa: PLR0917 - fixtures
    spark: Any,
    plain: Export,
    tmp_path: Path,
    change: Any,
    encoding: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        change(plain.path.read_text(encoding="utf-8")).encode("utf-8", "surrogateescape")
    )
    _both(
        spark, path, monkeypatch, lines=False, mapping=MAPPING, provider="demo", encoding=encoding
    )


def test_a_data_frame_changed_after_reading_or_a_kept_export_is_split_by_spark(
    spark: Any, plain: Export
) -> None:
    import pamlib.spark as ps

    df = ps.read_export(spark, str(plain.path), mapping=MAPPING)
    assert read_as_lines(ps.score(df, provider="demo"))
    assert not read_as_lines(ps.score(df, provider="demo", cache_export=True))
    fewer = df.where(df["site"] != "site-1")
    run = ps.score(fewer, provider="demo")
    assert not read_as_lines(run)
    assert run.summary().n_read < 300


def test_an_export_changed_between_the_count_and_the_job_stops_the_job(
    spark: Any, plain: Export, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    path = tmp_path / "export.csv"
    text = plain.path.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    run = ps.score(ps.read_export(spark, str(path), mapping=MAPPING), provider="demo")
    assert read_as_lines(run)
    path.write_text(text.replace("site-2", 'site"2'), encoding="utf-8")  # same length
    with pytest.raises(ps.SparkJobError, match="the export changed while it was scored"):
        run.summary()
    middle = text.index("\n", len(text) // 2)
    merged = text[:middle] + "x" + text[middle + 1 :]  # two lines one: a split short of a row
    path.write_text(merged, encoding="utf-8")
    run = ps.score(ps.read_export(spark, str(path), mapping=MAPPING), provider="demo")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ps.SparkJobError, match="the export changed while it was scored"):
        run.summary()


# -- the split alone, against the csv module (no Spark) ----------------------------------------

HEADER = ("x", "y", "z")


def _split_alone(lines: Any, delimiter: str, *, block: int = 0, before: int = 0) -> Any:
    """What a task makes of ``lines``, one split of a file, ``before`` rows after its start."""
    import pyarrow as pa

    from pamlib._spark_lines import LinesPlan, LineSplitter
    from pamlib.spark import _BLOCK, _FILE, _SEQ

    plan = LinesPlan(
        n_read=len(lines),
        before={("f.csv", block): before},
        rows={("f.csv", block): len(lines)},
        headers=frozenset(),
        repeats={},
    )
    batch = pa.RecordBatch.from_pydict(
        {
            "value": lines if isinstance(lines, pa.Array) else pa.array(lines, pa.string()),
            _FILE: pa.array(["f.csv"] * len(lines)),
            _BLOCK: pa.array([block] * len(lines), pa.int64()),
            _SEQ: pa.array(range(len(lines)), pa.int64()),
        }
    )
    [out] = list(LineSplitter(plan=plan, header=HEADER, delimiter=delimiter)(iter([batch])))
    return out


_FIELD = st.text(st.sampled_from("ab9 -é\t;\ufeff"), max_size=4)


@given(
    rows=st.lists(st.lists(_FIELD, min_size=1, max_size=5), min_size=1, max_size=30),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_a_batch_of_lines_splits_as_spark_s_reader_splits_it(
    rows: list[list[str]], delimiter: str
) -> None:
    """Lines of three fields split into three text columns (empty fields null, as Spark reads
    them); lines of any other number of fields whole in ``_corrupt_record`` — numbered in
    order from the rows before their split."""

    from pamlib.spark import _FIRST, _ROW, CORRUPT_COLUMN

    lines = [delimiter.join(f.replace(delimiter, "") for f in row) for row in rows]
    out = _split_alone(lines, delimiter, block=4096, before=10)
    assert out.column(_ROW).to_pylist() == list(range(11, 11 + len(lines)))
    assert out.column(_FIRST).to_pylist() == [True] * len(lines)
    for k, line in enumerate(lines):
        found = list(csv.reader(io.StringIO(line), delimiter=delimiter, quoting=csv.QUOTE_NONE))
        fields = found[0] if found else [""]
        got = [out.column(name)[k].as_py() for name in HEADER]
        if len(fields) == 3:
            assert got == [f or None for f in fields]
            assert out.column(CORRUPT_COLUMN)[k].as_py() is None
        else:
            assert got == [None, None, None]
            assert out.column(CORRUPT_COLUMN)[k].as_py() == line


_QUOTED_FIELD = st.text(st.sampled_from('ab9 ,;"é'), max_size=5)


@given(
    rows=st.lists(st.lists(_QUOTED_FIELD, min_size=1, max_size=5), min_size=1, max_size=30),
    delimiter=st.sampled_from([",", ";"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
)
@pytest.mark.parametrize("line_by_line", [False, True], ids=["batch", "line by line"])
def test_a_batch_of_quoted_lines_splits_as_spark_s_reader_splits_it(
    rows: list[list[str]],
    delimiter: str,
    quoting: Literal[0, 1, 2, 3],
    line_by_line: bool,
) -> None:
    """Lines written by the csv module (quoted fields, doubled quotes, quoted delimiters):
    those of three fields split into the written values (a quoted empty field empty, a bare
    one null, as Spark reads them), the others whole in ``_corrupt_record`` — also where
    pyarrow cannot say which line it could not split, and each line is split alone."""
    from pamlib._spark_lines import LineSplitter
    from pamlib.spark import CORRUPT_COLUMN

    lines = []
    for row in rows:
        text = io.StringIO()
        csv.writer(text, delimiter=delimiter, quoting=quoting, lineterminator="").writerow(row)
        lines.append(text.getvalue())
    with pytest.MonkeyPatch.context() as patch:
        if line_by_line:
            patch.setattr(LineSplitter, "_split", _unnumbered(LineSplitter._split))
        out = _split_alone(lines, delimiter)
    for k, (row, line) in enumerate(zip(rows, lines, strict=True)):
        got = [out.column(name)[k].as_py() for name in HEADER]
        if len(row) == 3 and line:
            bare = [not cell.startswith('"') for cell in _cells(line, delimiter)]
            assert got == [None if b and not v else v for v, b in zip(row, bare, strict=True)]
            assert out.column(CORRUPT_COLUMN)[k].as_py() is None
        else:
            assert got == [None, None, None]
            assert out.column(CORRUPT_COLUMN)[k].as_py() == line


def _unnumbered(split: Any) -> Any:
    """``LineSplitter._split`` as where pyarrow gives no line numbers to what it skips."""
    import pyarrow.csv as pcsv

    def without_numbers(self: Any, values: Any, **options: Any) -> Any:
        read = pcsv.read_csv

        def reading(*args: Any, **kwargs: Any) -> Any:
            handler = kwargs["parse_options"].invalid_row_handler
            if handler is not None:
                kwargs["parse_options"].invalid_row_handler = lambda row: handler(
                    pcsv.InvalidRow(row.expected_columns, row.actual_columns, None, row.text)
                )
            return read(*args, **kwargs)

        pcsv.read_csv = reading
        try:
            return split(self, values, **options)
        finally:
            pcsv.read_csv = read

    return without_numbers


def _cells(line: str, delimiter: str) -> list[str]:
    """A well-formed line's fields as written, quotes kept (to tell a quoted empty field)."""
    cells, start, inside = [], 0, False
    for i, char in enumerate(line):
        if char == '"':
            inside = not inside
        elif char == delimiter and not inside:
            cells.append(line[start:i])
            start = i + 1
    return [*cells, line[start:]]


def _well_formed(line: str, delimiter: str) -> bool:
    """A plain oracle: every field bare (no quote) or wholly quoted, quotes doubled inside."""
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            i += 1
            while True:
                if i >= n:
                    return False
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        else:
            while i < n and line[i] not in ('"', delimiter):
                i += 1
            if i < n and line[i] == '"':
                return False
        if i == n:
            return True
        if line[i] != delimiter:
            return False
        i += 1


@given(line=st.text(st.sampled_from('a,;"\t'), max_size=12), delimiter=st.sampled_from(",;\t"))
def test_the_well_formed_patterns_agree_with_a_plain_oracle(line: str, delimiter: str) -> None:
    """The pattern the pass gives Java's engine (possessive repeats: Python's ``re`` reads them
    too) and the one each task gives RE2 (pyarrow) accept exactly the well-formed lines."""
    import re

    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib._spark_lines import well_formed

    expected = _well_formed(line, delimiter)
    assert (re.search(well_formed(delimiter, java=True), line) is not None) is expected
    found = pc.match_substring_regex(pa.array([line]), well_formed(delimiter, java=False))
    assert found[0].as_py() is expected


def test_a_line_no_longer_valid_utf8_stops_the_task() -> None:
    """Bytes that are not UTF-8 reach a task only if the file changed after the pass (which
    refuses them): the task stops, saying so, rather than pass them on as text."""
    import pyarrow as pa

    from pamlib._spark_lines import ChangedExportError

    raw = b"a\xff,b,c"
    values = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(np.array([0, len(raw)], np.int32)), pa.py_buffer(raw)]
    )
    with pytest.raises(ChangedExportError, match="not valid UTF-8"):
        _split_alone(values, ",")


def test_a_batch_of_several_splits_numbers_each_from_its_own_start() -> None:
    """A task packs splits of several files: each run of one split in a batch is numbered on
    from the rows of its file before it, across batches too."""
    import pyarrow as pa

    from pamlib._spark_lines import LinesPlan, LineSplitter
    from pamlib.spark import _BLOCK, _FILE, _ROW, _SEQ

    splits = [("a.csv", 0, 3), ("a.csv", 4096, 2), ("b.csv", 4096, 4)]
    plan = LinesPlan(
        n_read=9,
        before={("a.csv", 0): 0, ("a.csv", 4096): 3, ("b.csv", 4096): 10},
        rows={(f, b): n for f, b, n in splits},
        headers=frozenset(),
        repeats={},
    )
    keys = [(f, b) for f, b, n in splits for _ in range(n)]
    batches = [
        pa.RecordBatch.from_pydict(
            {
                "value": pa.array(["x,y,z"] * len(part)),
                _FILE: pa.array([f for f, _ in part]),
                _BLOCK: pa.array([b for _, b in part], pa.int64()),
                _SEQ: pa.array(range(start, start + len(part)), pa.int64()),
            }
        )
        for start, part in ((0, keys[:4]), (4, keys[4:7]), (7, keys[7:]))
    ]
    out = list(LineSplitter(plan=plan, header=HEADER, delimiter=",")(iter(batches)))
    assert [r for b in out for r in b.column(_ROW).to_pylist()] == [1, 2, 3, 4, 5, 11, 12, 13, 14]


@given(sizes=st.lists(st.integers(1, 9), max_size=12), rows=st.integers(1, 20))
def test_a_task_joins_spark_s_batches_keeping_every_row_in_order(
    sizes: list[int], rows: int
) -> None:
    """A task joins the small batches Spark gives it before any work on them (groups as
    :func:`~pamlib.formats._arrow.batch_groups` makes them): the same rows in the same order,
    a batch a group."""
    import pyarrow as pa

    from pamlib.spark import _gathered

    given_batches = [
        pa.RecordBatch.from_pydict({"v": pa.array([f"{i}:{j}" for j in range(n)], pa.string())})
        for i, n in enumerate(sizes)
    ]
    joined = list(_gathered(iter(given_batches), rows=rows, limit=1 << 20))
    values = [v for b in joined for v in b.column(0).to_pylist()]
    assert values == [v for b in given_batches for v in b.column(0).to_pylist()]
    assert all(b.num_rows >= rows for b in joined[:-1])  # no byte limit reached here


def test_a_task_passes_empty_batches_over() -> None:
    import pyarrow as pa

    from pamlib.spark import _gathered

    empty = pa.RecordBatch.from_pydict({"v": pa.array([], pa.string())})
    one = pa.RecordBatch.from_pydict({"v": pa.array(["a"], pa.string())})
    assert list(_gathered(iter([empty, empty]), rows=4)) == []
    joined = list(_gathered(iter([empty, one, empty, one]), rows=4))
    assert [b.column(0).to_pylist() for b in joined] == [["a", "a"]]
