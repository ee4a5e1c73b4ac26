"""Exports of several files that once made Spark's results differ from ``pamlib score``'s: each
test compares the scored rows, rejects and counts with ``pamlib score`` on the files joined in
name order (synthetic records only, one a line)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import attrs
import pytest

from pamlib.formats._records import MAX_FIELD_CHARS
from pamlib.formats.base import ReadOptions
from pamlib.formats.layout import with_mapping
from pamlib.pipeline import TableScorer
from pamlib.spark import Duplicates, RowKey
from tests.spark.exports import HEADER, MAPPING
from tests.spark.test_spark_lines import read_as_lines

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

KEYS = ("source_file", "source_row")


def _record(i: int, aid: str | None = None) -> str:
    return ",".join(
        [f"P{i:04d}", aid or f"A{i:05d}", "2024-03-01", "PAM-13", "site-1", *["3"] * 13, ""]
    )


def _file(first: int, end: int, *, repeat: str | None = None) -> bytes:
    """A header and records ``first`` … ``end - 1``; the first takes the id ``repeat``."""
    rows = [_record(i, repeat if i == first else None) for i in range(first, end)]
    return "\n".join([",".join(HEADER), *rows, ""]).encode()


def _expected(
    folder: Path, names: list[str], encoding: str | None = None
) -> tuple[Any, dict[int, tuple[str, int]]]:
    """``pamlib score`` on the files joined in name order (each later header dropped), and its
    line → (file name, record number)."""
    joined, where, line = b"", {}, 1
    for name in sorted(names):
        lines = (folder / name).read_bytes().splitlines()
        joined += b"".join(line + b"\n" for line in (lines if not joined else lines[1:]))
        for n in range(1, len(lines)):
            line += 1
            where[line] = (name, n)
    reference = folder.parent / "joined.csv"
    reference.write_bytes(joined)
    options = with_mapping(ReadOptions(), MAPPING)
    if encoding is not None:  # as --encoding gives it
        options = attrs.evolve(options, settings={**options.settings, "encoding": encoding})
    scorer = TableScorer(mapping=MAPPING, provider="demo", options=options)
    return scorer.score_source(reference), where


def _same_as_pamlib_score(
    run: Any, folder: Path, names: list[str], encoding: str | None = None
) -> None:
    expected, where = _expected(folder, names, encoding)
    scored = [r.asDict(recursive=True) for r in run.scored.collect()]
    by_key = sorted(scored, key=lambda r: (urllib.parse.unquote(r["source_file"]), r["source_row"]))
    assert [{k: v for k, v in r.items() if k not in KEYS} for r in by_key] == (
        expected.scored.to_arrow().to_pylist()
    )
    rejects = sorted(
        ((urllib.parse.unquote(r["source"].rsplit("/", 1)[-1]), r["row"]), r["code"], r["message"])
        for r in run.rejects.collect()
    )
    assert rejects == sorted(
        (where[r["row"]], r["code"], r["message"]) for r in expected.rejects.to_pylist()
    )
    summary = run.summary()
    assert summary.reconciles
    assert summary.reconciliation == expected.summary.reconciliation
    run.unpersist()


@pytest.mark.parametrize(
    ("lines", "limit"),
    [(True, None), (False, None), (False, 0)],
    ids=["read as lines", "repeats sent to tasks", "repeats joined"],
)
@pytest.mark.parametrize("bigger", ["a b.csv", "a!.csv"])
def test_an_id_repeated_across_files_comes_first_in_name_order_not_in_uri_order(  # noqa: PLR0917 - fixtures
    spark: Any,
    tmp_path: Path,
    bigger: str,
    lines: bool,
    limit: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``a b.csv`` comes before ``a!.csv`` by name, but Spark's ``_metadata.file_path`` is
    ``a%20b.csv``, which a comparison of URIs puts after it: the record of ``a!.csv`` was kept
    and the first file's record rejected as the repeat. The bigger file is read first, so
    either the smallest sequence number places the first occurrence or a second look does."""
    import pamlib.spark as ps

    folder = tmp_path / "export"
    folder.mkdir()
    sizes = {"a b.csv": (1, 5), "a!.csv": (5, 9)}
    first, end = sizes[bigger]
    sizes[bigger] = (first, end + 30)
    (folder / "a b.csv").write_bytes(_file(*sizes["a b.csv"]))
    (folder / "a!.csv").write_bytes(_file(*sizes["a!.csv"], repeat="A00001"))
    monkeypatch.setattr(ps, "_READ_LINES", lines)
    if limit is not None:
        monkeypatch.setattr(ps, "_BROADCAST_REPEATS", limit)
    run = ps.score(ps.read_export(spark, str(folder), mapping=MAPPING), provider="demo")
    assert read_as_lines(run) is lines
    _same_as_pamlib_score(run, folder, ["a b.csv", "a!.csv"])


@pytest.mark.parametrize("multiline", [True, False])
def test_an_empty_file_first_in_name_order_is_no_header(
    spark: Any, tmp_path: Path, multiline: bool
) -> None:
    """The header was taken from the first file in name order even when that file was empty,
    and the export refused as having none; an empty file holds no header and no row, so the
    first file with a line gives it (a header alone, without a line break, holds no row)."""
    import pamlib.spark as ps

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a-empty.csv").write_bytes(b"")
    (folder / "b-header.csv").write_bytes(",".join(HEADER).encode())
    (folder / "c.csv").write_bytes(_file(1, 30))
    (folder / "d-empty.csv").write_bytes(b"")
    (folder / "e.csv").write_bytes(_file(30, 40, repeat="A00003"))
    df = ps.read_export(spark, str(folder), mapping=MAPPING, multiline=multiline)
    run = ps.score(df, provider="demo")
    assert read_as_lines(run)
    _same_as_pamlib_score(run, folder, ["b-header.csv", "c.csv", "e.csv"])


def test_read_export_s_errors_withhold_an_nhs_number_in_the_path(
    spark: Any, tmp_path: Path
) -> None:
    """The errors of :func:`read_export` quoted the path as given, NHS numbers and all (an
    export saved one file per patient, in a folder so named); they now withhold each number as
    ``source_file`` does, keeping the rest of the path."""
    import pamlib.spark as ps
    from pamlib.errors import ConfigurationError, FormatError

    number = "9434765919"
    folder = tmp_path / f"patient {number}"
    folder.mkdir()
    empty = folder / f"{number}.csv"
    empty.write_bytes(b"")
    odd = folder / f"{number}-b.csv"
    odd.write_bytes(_file(1, 3).replace(b"Date taken", b"When", 1))
    twice = folder / f"{number}-c.csv"
    twice.write_bytes(_file(1, 3).replace(b"site", b"notes", 1))
    cases: list[tuple[type[Exception], Path, str]] = [
        (ConfigurationError, empty, "no header"),
        (FormatError, odd, "no assessed_on column"),
        (ConfigurationError, twice, "repeats a column name"),
        (FormatError, folder / f"{number}-none.csv", "no such file"),
    ]
    for kind, path, why in cases:
        with pytest.raises(kind, match=why) as info:
            ps.read_export(spark, str(path), mapping=MAPPING)
        assert number not in str(info.value)
        assert "patient <NHS number>" in str(info.value)


@pytest.mark.parametrize("quoted", ["first", "second"])
def test_headers_quoted_otherwise_are_read_with_split_keys(
    spark: Any, tmp_path: Path, quoted: str
) -> None:
    """:func:`read_export` takes files whose headers hold the same names, quoted or not, as one
    layout, and Spark's reader drops each file's first line; the job with no pass compared
    each first line's text with the first file's and stopped mid-job. It now compares the
    names."""
    import pamlib.spark as ps

    folder = tmp_path / "export"
    folder.mkdir()
    bare = _file(1, 30)
    names = ",".join(f'"{name}"' for name in HEADER).encode()
    again = names + b"\n" + _file(30, 40).partition(b"\n")[2]
    first, second = (again, bare) if quoted == "first" else (bare, again)
    (folder / "a.csv").write_bytes(first)
    (folder / "b.csv").write_bytes(b"\xef\xbb\xbf" + second)  # a byte-order mark too
    df = ps.read_export(spark, str(folder), mapping=MAPPING, multiline=False)
    run = ps.score(df, provider="demo", duplicates="partition", row_key="split")
    assert read_as_lines(run)
    _same_as_pamlib_score(run, folder, ["a.csv", "b.csv"])


@pytest.mark.parametrize(
    ("encoding", "lines", "limit"),
    [(None, True, None), ("utf-8", False, None), ("utf-8", False, 0)],
    ids=["too long, read as lines", "and undecoded, repeats sent to tasks", "repeats joined"],
)
def test_a_record_rejected_before_its_id_is_checked_is_no_first_occurrence(  # noqa: PLR0917 - fixtures
    spark: Any,
    tmp_path: Path,
    encoding: str | None,
    lines: bool,
    limit: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pamlib score`` registers no id of a record it rejects as ``field-too-long`` or
    ``encoding`` (a byte not valid in the encoding given), and scores the next record with that
    id; the pass before the job counted such a record's id, so that record became a
    ``duplicate-assessment-id`` reject on Spark. Each file is one split here (a line over the
    limit would otherwise span hundreds of the tests' small ones)."""
    import pamlib.spark as ps

    folder = tmp_path / "export"
    folder.mkdir()
    header, *rows = _file(1, 12).split(b"\n")
    rows[1] += b"x" * (MAX_FIELD_CHARS + 1)  # A00002's notes: field-too-long
    if encoding is not None:
        rows[0] = rows[0].replace(b"site-1", b"site-\xff")  # A00001: encoding
    rows[5] = _record(6, "A00001").encode()
    rows[7] = _record(8, "A00002").encode()
    (folder / "a.csv").write_bytes(b"\n".join([header, *rows]))
    (folder / "b.csv").write_bytes(_file(20, 25, repeat="A00002"))
    monkeypatch.setattr(ps, "_READ_LINES", lines)
    if limit is not None:
        monkeypatch.setattr(ps, "_BROADCAST_REPEATS", limit)
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(4 << 20))
    try:
        df = ps.read_export(spark, str(folder), mapping=MAPPING, encoding=encoding)
        run = ps.score(df, provider="demo")
        assert read_as_lines(run) is lines
        _same_as_pamlib_score(run, folder, ["a.csv", "b.csv"], encoding)
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")


@pytest.mark.parametrize(
    ("multiline", "row_key", "duplicates"),
    [(True, "number", "global"), (False, "number", "global"), (False, "split", "partition")],
)
def test_a_file_of_a_byte_order_mark_alone_is_empty(
    spark: Any, tmp_path: Path, multiline: bool, row_key: RowKey, duplicates: Duplicates
) -> None:
    """What some tools save for an empty sheet: three bytes, no header, no row. First in name
    order it was taken for the header (the export refused as empty); later, as a header that
    differs from the first file's (the export refused naming it)."""
    import pamlib.spark as ps

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a.csv").write_bytes(b"\xef\xbb\xbf")
    (folder / "b.csv").write_bytes(_file(1, 30))
    (folder / "c.csv").write_bytes(b"\xef\xbb\xbf")
    df = ps.read_export(spark, str(folder), mapping=MAPPING, multiline=multiline)
    run = ps.score(df, provider="demo", duplicates=duplicates, row_key=row_key)
    _same_as_pamlib_score(run, folder, ["b.csv"])
