"""Exports in the encodings sites save them in, blank rows, and runs that score nothing.

Excel's "CSV (Comma delimited)" on Windows is cp1252 with CRLF line ends and, below a table
that once had more rows, records of delimiters only; other tools write latin-1 or UTF-16 with a
byte-order mark. Both readers must read them as the UTF-8 file holding the same text, or stop
before scoring with one message naming ``--encoding``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats import encoding as encoding_module
from pamlib.formats._columnar import read_columnar
from pamlib.formats.base import ReadChunk, ReadOptions, text_values
from pamlib.formats.encoding import UNDEFINED_IN_CP1252, codec_name, open_utf8
from pamlib.instruments import BUILTIN_INSTRUMENTS
from tests.oracles.csv_reader import read_record_chunks

pytest.importorskip("pyarrow")

#: pamlib's reader; the same on two threads, which splits the start of a file while its
#: encoding is still being checked; and the tests' record-at-a-time oracle.
ENGINES = ("columnar", "columnar-threads", "oracle")
HEADER = ["patient_id", "assessment_id", "assessed_on", "instrument", "site", "notes"] + [
    f"q{i:02d}" for i in range(1, 14)
]
ANSWERS = ["3"] * 13


def excel_csv(rows: list[list[str]], *, blank_rows: int = 0) -> str:
    """Rows the way Excel writes "CSV (Comma delimited)": CRLF, quotes only where needed, and
    ``,,,,`` records for rows below the table that once held something."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    out.write(("," * (len(HEADER) - 1) + "\r\n") * blank_rows)
    return out.getvalue()


def record(i: int, site: str = "s", notes: str = "") -> list[str]:
    return [f"P{i}", f"A{i}", "02/01/2024", "PAM-13", site, notes, *ANSWERS]


CAFE_ROWS = [
    record(1, "Café", "“much better” – she said"),
    record(2, "Crèche ‘north’", "€5 parking… OK"),
    record(3, "Main", "plain"),
]


def read(path: Path, engine: str, **settings: object) -> list[ReadChunk]:
    threads = 2 if engine == "columnar-threads" else 1
    options = ReadOptions(settings=settings, chunk_rows=2, threads=threads)
    if engine.startswith("columnar"):
        return list(read_columnar(path, options, BUILTIN_INSTRUMENTS))
    return list(read_record_chunks(path, options, BUILTIN_INSTRUMENTS))


def sites_and_notes(chunks: list[ReadChunk]) -> list[tuple[int, str, str]]:
    found = []
    for chunk in chunks:
        for b in chunk.batches:
            assert b.lines is not None
            sites, notes = text_values(b.site), text_values(b.extras["notes"])
            found += [(int(b.lines[i]), sites[i], notes[i]) for i in range(len(b))]
    return sorted(found)


def counts(chunks: list[ReadChunk]) -> tuple[int, int, int, int]:
    """read, valid, rejected, blank"""
    return (
        sum(c.n_read for c in chunks),
        sum(c.n_valid for c in chunks),
        sum(len(c.rejects) for c in chunks),
        sum(c.n_blank for c in chunks),
    )


def score(tmp_path: Path, source: Path, *more: str) -> tuple[int, Path]:
    out = tmp_path / "scored.csv"
    argv = ["score", str(source), "--provider", "raw-sum", "-o", str(out), "--no-progress"]
    code = main([*argv, *more])
    return code, out


# -- cp1252 as Excel writes it, latin-1, UTF-16/32 -------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_an_excel_cp1252_file_is_read_as_cp1252(
    tmp_path: Path, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(excel_csv(CAFE_ROWS, blank_rows=3).encode("cp1252"))
    with caplog.at_level("WARNING", logger="pamlib.formats.encoding"):
        chunks = read(path, engine)
    assert sites_and_notes(chunks) == [
        (2, "Café", "“much better” – she said"),
        (3, "Crèche ‘north’", "€5 parking… OK"),
        (4, "Main", "plain"),
    ]
    assert counts(chunks) == (6, 3, 0, 3)
    assert caplog.messages == ["read excel.csv as cp1252 (not UTF-8); give --encoding to choose"]


def test_the_command_says_which_encoding_it_chose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(excel_csv(CAFE_ROWS, blank_rows=2).encode("cp1252"))
    code, out = score(tmp_path, path)
    err = capsys.readouterr().err
    assert code == 0
    assert "note: read excel.csv as cp1252 (not UTF-8); give --encoding to choose\n" in err
    assert err.strip().splitlines()[-1] == (
        "read 5 = scored 3 + not scored 0 + rejected 0 + blank 2"
    )
    assert "Café" in out.read_text(encoding="utf-8")
    # Given, the encoding is used without a note.
    code, _ = score(tmp_path, path, "--encoding", "cp1252")
    assert code == 0
    assert "note: read" not in capsys.readouterr().err


@pytest.mark.parametrize("engine", ENGINES)
def test_a_latin1_file_is_read_as_latin1(
    tmp_path: Path, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "latin.csv"
    rows = [record(1, "Café", "Ærø; naïve ¿qué?"), record(2, "Zoë", "")]
    path.write_bytes(excel_csv(rows).encode("latin-1"))
    with caplog.at_level("WARNING", logger="pamlib.formats.encoding"):
        chunks = read(path, engine)
    assert sites_and_notes(chunks) == [(2, "Café", "Ærø; naïve ¿qué?"), (3, "Zoë", "")]
    assert caplog.messages == ["read latin.csv as latin-1 (not UTF-8); give --encoding to choose"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
    ],
)
def test_a_byte_order_mark_decides(tmp_path: Path, engine: str, bom: bytes, codec: str) -> None:
    text = excel_csv([*CAFE_ROWS, record(4, "😀 emoji", "𝄞")], blank_rows=1)
    path = tmp_path / "marked.csv"
    path.write_bytes(bom + text.encode(codec))
    reference = tmp_path / "ref" / "marked.csv"
    reference.parent.mkdir()
    reference.write_bytes(text.encode("utf-8"))
    chunks = read(path, engine)
    assert sites_and_notes(chunks) == sites_and_notes(read(reference, engine))
    assert sites_and_notes(chunks)[-1] == (5, "😀 emoji", "𝄞")
    assert counts(chunks) == (5, 4, 0, 1)


def test_utf16_scores_as_the_utf8_file(tmp_path: Path) -> None:
    text = excel_csv(CAFE_ROWS, blank_rows=1)
    outputs = []
    for codec in ("utf-8", "utf-16"):
        folder = tmp_path / codec
        folder.mkdir()
        path = folder / "export.csv"
        path.write_bytes(text.encode(codec))
        code, out = score(folder, path)
        assert code == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


# -- files whose encoding cannot be told stop before scoring --------------------------------------

AMBIGUOUS = [
    # A byte that is no character in cp1252 (and a control character in latin-1).
    (excel_csv(CAFE_ROWS).encode("cp1252") + b"P9,A9,02/01/2024,PAM-13,\x81,x\r\n", "line 5",
     "neither UTF-8 nor cp1252: byte 0x81"),
    # UTF-8 lines and cp1252 lines: two exports pasted together.
    (excel_csv(CAFE_ROWS).encode("utf-8") + "P9,A9,02/01/2024,PAM-13,Café,\r\n".encode("cp1252"),
     "line 5", "although line 2 is"),
    # UTF-16 without its byte-order mark.
    (excel_csv(CAFE_ROWS).encode("utf-16-le"), "line 1", "NUL byte"),
]  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("data", "where", "why"), AMBIGUOUS, ids=["undefined", "mixed", "nul"])
def test_ambiguous_files_stop_naming_the_option(
    tmp_path: Path, engine: str, data: bytes, where: str, why: str
) -> None:
    path = tmp_path / "unsure.csv"
    path.write_bytes(data)
    with pytest.raises(FormatError) as caught:
        read(path, engine)
    assert caught.value.summary == (
        "cannot tell the encoding of unsure.csv; give it with --encoding NAME"
    )
    (problem,) = caught.value.problems
    assert (problem.where, problem.code) == (where, "encoding")
    assert why in problem.message


def test_the_command_stops_before_scoring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "unsure.csv"
    path.write_bytes(AMBIGUOUS[0][0])
    code, out = score(tmp_path, path)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("pamlib: error: cannot tell the encoding of unsure.csv; give it with ")
    assert "--encoding NAME" in err
    assert "read " not in err  # stopped before any record was read
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unsure.csv"]


def test_standard_input_is_checked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = excel_csv(CAFE_ROWS, blank_rows=1).encode("cp1252")

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr("sys.stdin", Stdin)
    out = tmp_path / "scored.csv"
    code = main(["score", "-", "--provider", "raw-sum", "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    assert "note: read <stdin> as cp1252 (not UTF-8)" in err
    assert "Café" in out.read_text(encoding="utf-8")


# -- an encoding given ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_bytes_the_given_encoding_cannot_decode_are_rejects_with_their_line(
    tmp_path: Path, engine: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(excel_csv(CAFE_ROWS, blank_rows=1).encode("cp1252"))
    chunks = read(path, engine, encoding="ascii")
    rejects = [r for c in chunks for r in c.rejects]
    assert [(r.line, r.code, r.message) for r in rejects] == [
        (2, "encoding", "the record is not valid ascii"),
        (3, "encoding", "the record is not valid ascii"),
    ]
    assert rejects[0].fields["site"] == "Caf\ufffd"  # shown, never read as another letter
    assert sites_and_notes(chunks) == [(4, "Main", "plain")]
    assert counts(chunks) == (4, 1, 2, 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_utf8_asked_for_rejects_what_is_not_utf8(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(excel_csv(CAFE_ROWS).encode("cp1252"))
    rejects = [r for c in read(path, engine, encoding="utf-8") for r in c.rejects]
    assert [(r.line, r.message) for r in rejects] == [
        (2, "the record is not valid UTF-8"),
        (3, "the record is not valid UTF-8"),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_lone_utf16_surrogate_is_a_reject(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "export.csv"
    head = ",".join(record(9, notes="x")[:6]).encode("utf-16-le")
    rest = ("," + ",".join(ANSWERS) + "\r\n").encode("utf-16-le")
    path.write_bytes(excel_csv(CAFE_ROWS).encode("utf-16") + head + b"\x00\xd8" + rest)
    chunks = read(path, engine)
    rejects = [r for c in chunks for r in c.rejects]
    assert [(r.line, r.code, r.message) for r in rejects] == [
        (5, "encoding", "the record is not valid utf-16")
    ]
    assert rejects[0].fields["notes"] == "x\ufffd\ufffd"
    assert counts(chunks) == (4, 3, 1, 0)


def test_unknown_and_non_text_encodings_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigurationError, match="unknown encoding 'klingon'"):
        codec_name("klingon")
    with pytest.raises(ConfigurationError, match="not a text encoding"):
        codec_name("base64")
    path = tmp_path / "export.csv"
    path.write_text(excel_csv(CAFE_ROWS), encoding="utf-8")
    code, _ = score(tmp_path, path, "--encoding", "klingon")
    assert code == 2
    assert "--encoding: unknown encoding 'klingon'" in capsys.readouterr().err


# -- properties ----------------------------------------------------------------------------------

CODECS = ("cp1252", "latin-1", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp850", "koi8-r")


@contextmanager
def small_blocks(size: int) -> Iterator[None]:
    """Transcode in blocks of ``size`` bytes, so characters are split between blocks."""
    saved = encoding_module._BLOCK
    encoding_module._BLOCK = size
    try:
        yield
    finally:
        encoding_module._BLOCK = saved


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60),
    codec=st.sampled_from(CODECS),
    block=st.integers(1, 9),
)
def test_transcoding_keeps_every_character(
    tmp_path_factory: pytest.TempPathFactory, text: str, codec: str, block: int
) -> None:
    """Text in any encoding that can hold it comes out as the same text in UTF-8."""
    data = text.encode(codec, "replace")
    path = tmp_path_factory.mktemp("enc") / "t.csv"
    path.write_bytes(data)
    with small_blocks(block), open_utf8(path, {"encoding": codec}).stream as stream:
        assert stream.read() == data.decode(codec).encode("utf-8")


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=80), block=st.integers(1, 9))
def test_detection_reads_bytes_unchanged_or_stops(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, block: int
) -> None:
    """Whatever the bytes: the read stops, or what comes out is the bytes decoded in the
    encoding chosen, with no character replaced (a guess never reads a control character
    0x80-0x9F, and never a file that holds UTF-8 characters as well)."""
    path = tmp_path_factory.mktemp("enc") / "t.csv"
    path.write_bytes(data)
    stopped = None
    try:
        with small_blocks(block):
            opened = open_utf8(path, {})
            with opened.stream as stream:
                out = stream.read()
    except FormatError as exc:
        stopped = exc
    if stopped is not None:
        assert stopped.problems[0].code == "encoding"
        return
    if opened.encoding == "utf-8":
        assert out == data
        return
    text = data.decode(opened.encoding)  # strict: every byte decodes
    assert out == text.encode("utf-8")
    if opened.guessed:
        assert text == data.decode("cp1252")
        assert not re.search("[\x80-\x9f]", text)
        assert re.search(b"[\x80-\xff]", data)
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.binary(max_size=6),
            st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.sampled_from([b"abc", b"\xc3", b"\xa9", b"\xe2\x82", b"\xac", b"\xf0\x9f\x98"]),
        ),
        max_size=12,
    ),
    block=st.integers(1, 9),
)
def test_the_utf8_check_skips_ascii_blocks_only_between_characters(
    parts: list[bytes], block: int
) -> None:
    """The check says what decoding the whole gives, however the bytes fall in blocks: an
    ASCII block right after an unfinished character fails it, as it fails the decoder."""
    data = b"".join(parts)
    blocks = iter([data[i : i + block] for i in range(0, len(data), block)])
    assert encoding_module._is_utf8(blocks, complete=True) is _utf8(data)
    assert not encoding_module._is_utf8(iter([b"ab\xc3", b"cd", b"\xa9ef"]), complete=True)
    assert encoding_module._is_utf8(iter([b"ab\xc3", b"\xa9cd", b"ef"]), complete=True)


# -- the check beside the read (two threads) ------------------------------------------------------


@pytest.mark.parametrize("where", ["first-block", "last-record"])
def test_a_file_found_not_utf8_while_its_start_was_split_is_read_again(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The start of the file is split while the check reads it whole; a byte that is not UTF-8
    (in the first block, or in the last record, long after the blocks split meanwhile) means
    nothing of that is given, and the file is read as cp1252 from its start, as on one thread."""
    rows = [record(i, "Main", "plain") for i in range(1, 200)]
    at = 0 if where == "first-block" else len(rows) - 1
    rows[at] = record(at + 1, "Café", "“much better”")
    path = tmp_path / "late.csv"
    path.write_bytes(excel_csv(rows).encode("cp1252"))
    found = {}
    for engine in ("columnar", "columnar-threads"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="pamlib.formats.encoding"):
            chunks = read(path, engine, block_bytes=512)
        found[engine] = (sites_and_notes(chunks), counts(chunks))
        assert caplog.messages == ["read late.csv as cp1252 (not UTF-8); give --encoding to choose"]
    assert found["columnar-threads"] == found["columnar"]
    assert (at + 2, "Café", "“much better”") in found["columnar"][0]


def test_a_header_that_fits_only_its_own_encoding_is_read_again(tmp_path: Path) -> None:
    """Read as UTF-8 while the check runs, a cp1252 header does not hold the column the mapping
    names, and the layout fails; the check then says cp1252, and that failure is no one's."""
    path = tmp_path / "mapped.csv"
    header = ",".join(["Réf patient", *HEADER[1:]])
    body = "\r\n".join(",".join(record(i)) for i in range(1, 4))
    path.write_bytes(f"{header}\r\n{body}\r\n".encode("cp1252"))
    for threads in (1, 2):
        options = ReadOptions(mapping={"Réf patient": "patient_id"}, threads=threads)
        chunks = list(read_columnar(path, options, BUILTIN_INSTRUMENTS))
        assert counts(chunks) == (3, 3, 0, 0)
        ids = [i for c in chunks for b in c.batches for i in text_values(b.patient_id)]
        assert ids == ["P1", "P2", "P3"]


def test_an_error_of_a_utf8_file_stands(tmp_path: Path) -> None:
    """Where the check says UTF-8, what failed while it ran is the read's error, unchanged."""
    path = tmp_path / "short.csv"
    path.write_text("patient_id,notes\r\nP1,x\r\n", encoding="utf-8")
    errors = []
    for threads in (1, 2):
        with pytest.raises(FormatError) as caught:
            list(read_columnar(path, ReadOptions(threads=threads), BUILTIN_INSTRUMENTS))
        errors.append((caught.value.summary, caught.value.problems))
    assert errors[0] == errors[1]


def test_the_check_beside_closes_its_file_when_the_read_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(excel_csv([record(i) for i in range(1, 2000)]).encode("utf-8"))
    opened = open_utf8(path, {}, check_beside=True)
    assert opened.check is not None
    assert opened.encoding == "utf-8"
    opened.check.cancel()
    opened.check.utf8()  # returns once the check's thread has stopped reading
    assert opened.check._stream.closed
    opened.stream.close()
    chunks = cast(
        Generator[ReadChunk, None, None],
        read_columnar(path, ReadOptions(threads=2, chunk_rows=10), BUILTIN_INSTRUMENTS),
    )
    next(chunks)
    chunks.close()  # a run that stops after its first chunk leaves no file open


def test_no_check_beside_when_the_name_leads_to_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaced between the two opens, the name no longer leads to the file being read: the
    check is then made on that file before reading, as on one thread."""
    path, other = tmp_path / "read.csv", tmp_path / "other.csv"
    path.write_bytes(excel_csv(CAFE_ROWS).encode("cp1252"))
    other.write_bytes(excel_csv(CAFE_ROWS).encode("utf-8"))

    opens: list[Path] = []

    class Swapped(type(path)):  # type: ignore[misc]
        def open(self, *args: Any, **kwargs: Any) -> Any:
            opens.append(self)  # the file read, then the check's handle: the other file
            return Path.open(path if len(opens) == 1 else other, *args, **kwargs)

    monkeypatch.setattr(encoding_module, "Path", Swapped)
    opened = open_utf8(path, {}, check_beside=True)
    opened.stream.close()
    assert len(opens) == 2
    assert opened.check is None
    assert opened.encoding == "cp1252"


CP1252_TEXT = st.text(st.sampled_from('abc ,;\r\n"0123éèüÜßÆ“”‘’–—…€™œŠ'), max_size=40)


@settings(max_examples=60, deadline=None)
@given(text=CP1252_TEXT)
def test_cp1252_text_is_read_as_written(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """cp1252 text that is not UTF-8 by accident is read as the text written."""
    data = text.encode("cp1252")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        assume(False)  # valid UTF-8 too: read as UTF-8, rightly
    path = tmp_path_factory.mktemp("enc") / "t.csv"
    path.write_bytes(data)
    stopped = None
    try:
        opened = open_utf8(path, {})
    except FormatError as exc:
        stopped = exc
    if stopped is not None:  # only where some bytes form a UTF-8 character by chance
        assert "although line" in stopped.problems[0].message
        return
    with opened.stream as stream:
        assert stream.read().decode("utf-8") == text
    assert opened.guessed
    c1 = any(0x80 <= b <= 0x9F and b not in UNDEFINED_IN_CP1252 for b in data)
    assert opened.encoding == ("cp1252" if c1 else "latin-1")


# -- blank records -------------------------------------------------------------------------------

BLANKS = [",,,,", ", ,  ,", " ", "\t", '"",""', '" ", ,', "," * 30, ",\u00a0,"]


@pytest.mark.parametrize("engine", ENGINES)
def test_blank_records_are_counted_never_rejected(tmp_path: Path, engine: str) -> None:
    lines = [",".join(HEADER)]
    for i, blank in enumerate(BLANKS):
        lines += [",".join(record(i)), blank, ""]
    path = tmp_path / "blanks.csv"
    path.write_text("\n".join(lines) + "\n,,,", encoding="utf-8")
    chunks = read(path, engine)
    assert [r for c in chunks for r in c.rejects] == []
    # Empty lines hold no record at all: they are neither read nor blank.
    assert counts(chunks) == (2 * len(BLANKS) + 1, len(BLANKS), 0, len(BLANKS) + 1)
    assert all(c.n_read == c.n_valid + len(c.rejects) + c.n_blank for c in chunks)
    assert [x[0] for x in sites_and_notes(chunks)] == [2 + 3 * i for i in range(len(BLANKS))]


@pytest.mark.parametrize("engine", ENGINES)
def test_blank_records_of_a_semicolon_file(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "semi.csv"
    rows = [";".join(HEADER), ";".join(record(1)), ";; ;", ";".join(record(2)), ";;;;"]
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    assert counts(read(path, engine)) == (4, 2, 0, 2)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_unclosed_quote_of_blanks_is_still_a_reject(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "open.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(record(1)) + '\n,"  \n', encoding="utf-8")
    chunks = read(path, engine)
    assert [(r.line, r.code) for r in chunks[-1].rejects] == [(3, "unclosed-quote")]
    assert counts(chunks) == (2, 1, 1, 0)


# -- no silent zero ------------------------------------------------------------------------------


def write(tmp_path: Path, rows: list[list[str]], *, blank_rows: int = 0) -> Path:
    path = tmp_path / "export.csv"
    path.write_text(excel_csv(rows, blank_rows=blank_rows), encoding="utf-8")
    return path


def test_nothing_scored_for_encoding_exits_1_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.csv"
    rows = [record(i, "Café") for i in range(1, 4)]
    path.write_bytes(excel_csv(rows, blank_rows=2).encode("cp1252"))
    code, _ = score(tmp_path, path, "--encoding", "utf-8")
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "pamlib: error: none of the 3 records read was scored; most were rejected as encoding "
        "(3): give the file's encoding with --encoding NAME" in err
    )
    assert err.strip().splitlines()[-1] == "read 5 = scored 0 + not scored 0 + rejected 3 + blank 2"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: [*r[:3], "PAM-99", *r[4:]], ("unknown-instrument (2): name the instrument "
         "of rows that name none with --instrument ID")),
        (lambda r: ["", *r[1:]], ("no-identity (2): check which column is which: name the "
         "file's columns in a --mapping file")),
        (lambda r: [*r[:6], "Neutral", *r[7:]], ("unknown-label (2): add the file's answer "
         "wording to a --mapping file's [answers]")),
    ],
    ids=["instrument", "mapping", "labels"],
)  # fmt: skip
def test_nothing_scored_names_the_commonest_reason_and_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, expected: str
) -> None:
    rows = [change(record(i)) for i in (1, 2)]  # type: ignore[operator]
    code, _ = score(tmp_path, write(tmp_path, rows))
    err = capsys.readouterr().err
    assert code == 1
    assert f"none of the 2 records read was scored; most were rejected as {expected}" in err


def test_nothing_scored_because_the_provider_scored_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [record(1)[:6] + [""] * 13]
    code, _ = score(tmp_path, write(tmp_path, rows))
    err = capsys.readouterr().err
    assert code == 1
    assert "none of the 1 records read was scored; 1 not scored: nothing-answered" in err


@pytest.mark.parametrize("blank_rows", [0, 3])
def test_a_file_with_nothing_to_score_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], blank_rows: int
) -> None:
    code, _ = score(tmp_path, write(tmp_path, [], blank_rows=blank_rows))
    err = capsys.readouterr().err
    assert code == 0
    assert "error" not in err


def test_strict_still_fails_on_any_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [record(1), [*record(2)[:3], "PAM-99", *record(2)[4:]]]
    path = write(tmp_path, rows, blank_rows=1)
    assert score(tmp_path, path)[0] == 0
    capsys.readouterr()
    assert score(tmp_path, path, "--strict")[0] == 1
    err = capsys.readouterr().err
    assert "1 records rejected (--strict)" in err
    assert "none of" not in err


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs a device file")
def test_no_check_beside_for_a_device() -> None:
    """A device may never end (``/dev/zero``): no second handle, no thread reading it."""
    with Path("/dev/zero").open("rb") as device:
        assert encoding_module._check_beside("/dev/zero", device, 0) is None
