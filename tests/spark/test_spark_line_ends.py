"""Line ends with ``multiline=True``: Spark's multi-line reader takes each file's first line
break as its only line end, where ``pamlib score`` ends a line at any of ``\\r\\n``, ``\\r`` and
``\\n``. A file whose line ends change outside quotes is refused by
:func:`pamlib.spark.read_export`, naming the file and the line; quoted line breaks of any kind
are data, and give ``pamlib score``'s values (those Spark writes as ``\\n`` are written back).
Checked both ways the check reads: on the driver, from the files' starts, and — for files
larger than that — by a pass over the lines on the JVM and a scan of each doubtful split in
Python (the tests' splits are 4 KiB, so quoted line breaks fall across them)."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from pathlib import Path
from typing import Any

import pytest

from pamlib import synthetic
from pamlib.errors import FormatError
from tests.spark.exports import MAPPING, Export, make_export
from tests.spark.test_spark_options import _assert_equal, _pamlib_score

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

N = 200
#: A note with a comma and a doubled quote, and how each record's note may break a line.
NOTE = 'rang, said "fine"'


@pytest.fixture(params=["driver", "executors"])
def where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the check reads the files: whole on the driver (they are smaller than the start it
    reads of each), or, with that start made shorter than a file, on the executors."""
    import pamlib.spark as ps

    if request.param == "executors":
        monkeypatch.setattr(ps, "_HEAD_BYTES", 256)  # still the whole header line
    return str(request.param)


def _records(folder: Path) -> list[list[str]]:
    """The records of the generated export (every kind of fault), header first, as
    ``pamlib score``'s record reader splits them; none holds a line break."""
    source = make_export(folder, n=N, seed=31, name="source.csv", line_breaks=False)
    return list(csv.reader(io.StringIO(source.path.read_text(encoding="utf-8"), newline="")))


def _written(
    folder: Path,
    records: list[list[str]],
    *,
    end: str,
    name: str = "export.csv",
    ends: dict[int, str] | None = None,
    notes: dict[int, str] | None = None,
    last_end: bool = True,
    encoding: str = "utf-8",
    compress: bool = False,
) -> Export:
    """``records`` written with line end ``end`` (``ends``: another for some data records, by
    row number), a note (its last field) set on some rows (``notes``), and the physical line
    each record starts on, as ``pamlib score`` counts lines."""
    text = io.StringIO(newline="")
    lines: list[int] = []
    line = 1
    broken = []
    for row, record in enumerate(records):
        fields = list(record)
        if row and notes and row in notes:
            fields[-1] = notes[row]
            broken.append(row)
        piece = io.StringIO(newline="")
        # a field holding \r or \n is quoted whatever the line end (csv quotes only those)
        csv.writer(piece, lineterminator="\r\n").writerow(fields)
        written = piece.getvalue().removesuffix("\r\n") + (ends or {}).get(row, end)
        if row:
            lines.append(line)
        text.write(written)
        line += written.count("\n") + written.count("\r") - written.count("\r\n")
    data = text.getvalue()
    if not last_end:
        data = data.removesuffix(end)
    path = folder / name
    raw = data.encode(encoding)
    if encoding.startswith("utf-16"):
        raw = codecs.BOM_UTF16_LE + raw
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return Export(path, tuple(lines), tuple(broken), (7, N - 10))


def _refusal(spark: Any, export: Export, **options: Any) -> FormatError:
    import pamlib.spark as ps

    with pytest.raises(FormatError) as caught:
        ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=True, **options)
    return caught.value


def _scores_as_pamlib_score(spark: Any, export: Export, **options: Any) -> Any:
    import pamlib.spark as ps

    read = {k: options.pop(k) for k in ("multiline", "encoding") if k in options}
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, **read)
    run = ps.score(df, provider="demo", **options)
    scored = _assert_equal(run, _pamlib_score(export, provider="demo"), export)
    run.unpersist()
    return run, scored


# -- refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "other", "shown"),
    [
        pytest.param("\r\n", "\n", ("\\n", "\\r\\n"), id="a bare LF row in a CRLF file"),
        pytest.param("\n", "\r\n", ("\\r\\n", "\\n"), id="a CRLF row in an LF file"),
        pytest.param("\n", "\r", ("\\r", "\\n"), id="a CR row in an LF file"),
        pytest.param("\r\n", "\r", ("\\r", "\\r\\n"), id="a CR row in a CRLF file"),
    ],
)
def test_a_file_whose_line_ends_change_is_refused_saying_where(  # noqa: PLR0917 - fixtures
    spark: Any, tmp_path: Path, where: str, end: str, other: str, shown: tuple[str, str]
) -> None:
    """The row's note is set: Spark would join it to the next record (one reject where
    ``pamlib score`` reads two) or keep the line end in it. The error names the file and the
    first line whose line end changes, and says what to do."""
    records = _records(tmp_path)
    row = 150  # far past the first split
    export = _written(tmp_path, records, end=end, ends={row: other}, notes={row: "rang"})
    error = _refusal(spark, export)
    line = export.lines[row - 1]
    message = str(error)
    assert message.startswith(f"export.csv: line {line} ends in {shown[0]}, ")
    assert f"first line break is {shown[1]}" in message
    assert "make each file's line ends one kind" in message
    assert "multiline=False if no quoted field holds a line break" in message
    where = f"export.csv: line {line}"
    assert [(p.where, p.code) for p in error.problems] == [(where, "line-ends")]
    assert "P0" not in message  # no identifier of the record
    assert "rang" not in message  # nor any value


@pytest.mark.parametrize("end", ["\r\n", "\n"])
def test_with_multiline_off_the_same_file_is_read_as_before(
    spark: Any, tmp_path: Path, end: str
) -> None:
    """Spark's line reader ends lines at each of the three, as ``pamlib score`` does: no
    record holds a quoted line break, so it gives ``pamlib score``'s results."""
    other = "\n" if end == "\r\n" else "\r\n"
    records = _records(tmp_path)
    export = _written(tmp_path, records, end=end, ends={20: other, 150: "\r"}, notes={20: "rang"})
    _scores_as_pamlib_score(spark, export, multiline=False)


def test_quoted_line_breaks_spark_cannot_tell_apart_are_refused(
    spark: Any, tmp_path: Path, where: str
) -> None:
    """In a ``\\r\\n`` file Spark writes a quoted ``\\r\\n`` as ``\\n``: beside a quoted bare
    ``\\n`` in the same file, which was which is lost."""
    notes = {40: "line one\r\nline two", 160: "line one\nline two"}
    export = _written(tmp_path, _records(tmp_path), end="\r\n", notes=notes)
    error = _refusal(spark, export)
    assert str(error).startswith("export.csv: quoted fields hold line breaks of \\r\\n")
    assert error.problems[0].where == "export.csv: quoted fields"


def test_each_refused_file_is_listed_and_a_name_with_an_nhs_number_withheld(
    spark: Any, tmp_path: Path, where: str
) -> None:
    number = synthetic.test_nhs_number(42)
    assert number is not None
    records = _records(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    _written(folder, records, end="\r\n", name="a-good.csv")
    _written(folder, records, end="\r\n", name=f"b {number}.csv", ends={30: "\n"}, notes={30: "x"})
    _written(folder, records, end="\n", name="c-bad.csv", ends={99: "\r\n"}, notes={99: "x"})
    error = _refusal(spark, Export(folder, (), (), (0, 0)))
    message = str(error)
    assert number not in message
    assert message.startswith(
        "file 2 of 3 in name order (its name holds an NHS number): line 31 ends in \\n"
    )
    assert "(and 1 more file)" in message
    assert [p.where for p in error.problems] == [
        "file 2 of 3 in name order (its name holds an NHS number): line 31",
        "c-bad.csv: line 100",
    ]


def test_a_utf_16_file_is_checked_too(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its line breaks are not single bytes: a file larger than its start is read on the driver,
    piece by piece."""
    import pamlib.spark as ps

    records = _records(tmp_path)
    monkeypatch.setattr(ps, "_HEAD_BYTES", 512)
    export = _written(tmp_path, records, end="\r\n", ends={150: "\n"}, notes={150: "rang"},
                      encoding="utf-16-le")  # fmt: skip
    line = export.lines[149]
    assert str(_refusal(spark, export)).startswith(f"export.csv: line {line} ends in \\n")
    monkeypatch.setattr(ps, "_HEAD_BYTES", 1 << 20)
    assert str(_refusal(spark, export)).startswith(f"export.csv: line {line} ends in \\n")


def test_a_compressed_file_is_checked_too(spark: Any, tmp_path: Path, where: str) -> None:
    records = _records(tmp_path)
    export = _written(tmp_path, records, end="\n", ends={150: "\r\n"}, notes={150: "rang"},
                      name="export.csv.gz", compress=True)  # fmt: skip
    line = export.lines[149]
    assert str(_refusal(spark, export)).startswith(f"export.csv.gz: line {line} ends in \\r\\n")


# -- read as pamlib score reads them -------------------------------------------------------------


#: Notes holding quoted line breaks, by file line end: every kind ``pamlib score`` and Spark's
#: reader agree on (the ``\r\n`` ones Spark writes as ``\n`` are written back).
QUOTED: dict[str, dict[int, str]] = {
    "\n": {10: "one\r\ntwo", 11: "one\rtwo", 12: "one\ntwo", 140: NOTE + "\r\n\r\n" + NOTE,
           141: "\r", 142: "\r\n", 199: "end\r\n"},
    "\r\n": {10: "one\r\ntwo", 11: "one\rtwo", 12: "one\r\r\ntwo", 140: NOTE + "\r\n\r\n" + NOTE,
             141: "\r", 142: "\r\n", 199: "end\r\n"},
    "\r\n, quoted LF only": {10: "one\ntwo", 11: "one\rtwo", 140: NOTE + "\n\n" + NOTE,
                             141: "\n", 199: "end\n"},
}  # fmt: skip
# every note over three lines: splits start inside quoted fields
QUOTED["\r\n, every note broken by CRLF"] = dict.fromkeys(range(1, N + 1), 'a,\r\n"b"\r\nc')
QUOTED["\n, every note broken by CR"] = dict.fromkeys(range(1, N + 1), 'a,\r"b"\rc')
QUOTED["\r\n, every note broken by LF"] = dict.fromkeys(range(1, N + 1), 'a,\n"b"\nc')


@pytest.mark.parametrize("case", list(QUOTED))
def test_quoted_line_breaks_in_a_uniform_file_give_pamlib_score_s_values(
    spark: Any, tmp_path: Path, where: str, case: str
) -> None:
    end = case.split(",", maxsplit=1)[0]
    export = _written(tmp_path, _records(tmp_path), end=end, notes=QUOTED[case])
    _, scored = _scores_as_pamlib_score(spark, export)
    notes = {r["assessment_id"]: r["notes"] for r in scored}
    assert notes["A00141"] == QUOTED[case][141]  # as written, whatever Spark read


@pytest.mark.parametrize(
    ("end", "last_end"),
    [("\r\n", True), ("\r\n", False), ("\n", True), ("\n", False), ("\r", True)],
)
def test_a_file_of_one_line_end_is_read_as_before(
    spark: Any, tmp_path: Path, where: str, end: str, last_end: bool
) -> None:
    """(A ``\\n`` file with no quoted line break is still read as lines.)"""
    from tests.spark.test_spark_lines import read_as_lines

    export = _written(tmp_path, _records(tmp_path), end=end, last_end=last_end)
    run, _ = _scores_as_pamlib_score(spark, export)
    assert read_as_lines(run) is (end == "\n")


def test_a_bare_lf_ending_a_crlf_file_is_no_record_either_way(
    spark: Any, tmp_path: Path, where: str
) -> None:
    """An empty line at the very end of the file, whose \\n Spark's reader drops."""
    export = _written(tmp_path, _records(tmp_path), end="\r\n")
    export.path.write_bytes(export.path.read_bytes() + b"\n")
    _scores_as_pamlib_score(spark, export)


def test_line_breaks_are_written_back_with_split_keys_and_a_kept_export(
    spark: Any, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    notes = {11: "one\r\ntwo", 150: "three\r\nfour"}
    export = _written(tmp_path, _records(tmp_path), end="\r\n", notes=notes)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING)
    for options in ({"duplicates": "off", "row_key": "split"}, {"cache_export": True}):
        run = ps.score(df, provider="demo", **options)
        found = {r["assessment_id"]: r["notes"] for r in run.scored.collect()}
        assert (found["A00011"], found["A00150"]) == (notes[11], notes[150])
        run.unpersist()


def test_the_scan_matches_a_character_by_character_reading() -> None:
    """:class:`~pamlib._spark_line_ends.Scan` against a plain reading of the same text, one
    character at a time by :mod:`csv`'s rules, fed whole, in pieces, and split by split."""
    import random

    from pamlib._spark_line_ends import Scan, first_break

    pieces = ["a", ",", '"', '""', "\r\n", "\n", "\r", "x y", '"q"']
    rng = random.Random(5)  # noqa: S311 - test data
    for _ in range(3000):
        kind = rng.choice(["\r\n", "\n", "\r"])
        text = ("h,i" + kind + "".join(rng.choice([*pieces, kind, kind, kind])
                for _ in range(rng.randrange(30)))).encode()  # fmt: skip
        found = first_break(text)  # (kind, unless a \n follows a first \r)
        assert found is not None
        expected = _plainly(text, found)
        whole = Scan(found, b",")
        whole.feed(text, final=True)
        assert _seen(whole) == expected, text
        cuts = [0, *sorted({i + 1 for i, c in enumerate(text) if c == 10 and rng.random() < 0.4})]
        fed = Scan(found, b",")
        for start, end in zip(cuts, [*cuts[1:], len(text)], strict=True):
            fed.feed(text[start:end], final=end == len(text))
        assert _seen(fed) == expected, text


def _seen(scan: Any) -> tuple[Any, ...]:
    return (scan.bad,) if scan.bad else (None, scan.quoted_kind, scan.quoted_lf)


def _plainly(text: bytes, kind: bytes) -> tuple[Any, ...]:
    """The first line end of another kind outside quotes, and the quoted line breaks Spark's
    reader writes as ``\\n``, one character at a time."""
    state, i, line, quoted_kind, quoted_lf = "start", 0, 1, 0, 0
    while i < len(text):
        c = text[i : i + 1]
        pair = text[i : i + 2] == b"\r\n"
        if state == "quoted":
            if c == b'"':
                state = "quote"
            elif c in (b"\r", b"\n"):
                line += 1
                if kind == b"\r\n":
                    quoted_kind += pair
                    quoted_lf += c == b"\n"
                elif kind == b"\r":
                    quoted_kind += c == b"\r"
                    quoted_lf += c == b"\n" or pair
                i += 2 if pair else 1
                continue
            i += 1
            continue
        if c in (b"\r", b"\n"):
            found = b"\r\n" if pair else c
            last = i + len(found) == len(text)
            if found != kind and not (kind == b"\r\n" and found == b"\n" and last):
                return ((line, found),)
            line, i, state = line + 1, i + len(found), "start"
            continue
        if state in ("start", "quote"):
            state = "quoted" if c == b'"' else "start" if c == b"," else "in"
        elif c == b",":
            state = "start"
        i += 1
    return (None, quoted_kind, quoted_lf)
