"""Hostile CSV exports and mapping files: every record accounted for, the same by pamlib's
reader and by the tests' record-at-a-time oracle (:mod:`tests.oracles.csv_reader`).

Each test is named after the case of the reliability issue it guards (``test_case_NN_...``);
where a reader is involved it runs both through the command line (the oracle as the input
format of a host holding it, installed as the process default for the run).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator
from pathlib import Path

import pytest

from pamlib.cli import main
from pamlib.errors import FormatError
from pamlib.formats._columnar import read_columnar
from pamlib.formats._records import MAX_FIELD_CHARS
from pamlib.formats.base import ReadChunk, ReadOptions
from pamlib.formats.layout import Layout, load_mapping
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.plugins import PluginHost, get_host, reset_host
from tests.oracles.csv_reader import ORACLE_FORMAT, oracle_host, read_record_chunks

pytest.importorskip("pyarrow")

ENGINES = ("arrow", "oracle")
HEADER = "patient_id,nhs_number,assessment_id,assessed_on,instrument,site," + ",".join(
    f"q{i:02d}" for i in range(1, 14)
)
ANSWERS = ",".join(["3"] * 13)


def row(i: int, *, extra: str = "1", aid: str | None = None, site: str = "s") -> str:
    return f"P{i},,{f'A{i}' if aid is None else aid},2024-01-02,PAM-13,{site},{ANSWERS},{extra}"


class Run:
    """One ``pamlib score`` run: exit code, last line of standard error, output and rejects."""

    def __init__(self, tmp_path: Path, source: Path, engine: str, *more: str) -> None:
        self.out = tmp_path / f"scored-{engine}.csv"
        self.rejects_path = tmp_path / f"scored-{engine}.rejects.csv"
        argv = ["score", str(source), "--provider", "demo", "-o", str(self.out), "--no-progress"]
        if engine != "oracle":
            self.code = main([*argv, "--engine", engine, *more])
            return
        previous = get_host()
        reset_host(oracle_host())
        try:
            self.code = main([*argv, "--input-format", ORACLE_FORMAT, *more])
        finally:
            reset_host(previous)

    def read(self, capsys: pytest.CaptureFixture[str]) -> Run:
        self.err = capsys.readouterr().err
        self.last = self.err.strip().splitlines()[-1]
        return self

    @property
    def rows(self) -> list[dict[str, str]]:
        return read_csv(self.out)

    @property
    def rejects(self) -> list[dict[str, str]]:
        return read_csv(self.rejects_path)


def read_csv(path: Path) -> list[dict[str, str]]:
    """A whole CSV file as dicts, with cells longer than the csv module's default limit."""
    limit = csv.field_size_limit(1 << 24)
    try:
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    finally:
        csv.field_size_limit(limit)


def score(
    tmp_path: Path, source: Path, engine: str, capsys: pytest.CaptureFixture[str], *more: str
) -> Run:
    return Run(tmp_path, source, engine, *more).read(capsys)


def both_readers(path: Path, **settings: object) -> tuple[list[ReadChunk], list[ReadChunk]]:
    arrow = list(read_columnar(path, ReadOptions(settings=settings), BUILTIN_INSTRUMENTS))
    oracle = list(read_record_chunks(path, ReadOptions(), BUILTIN_INSTRUMENTS))
    return arrow, oracle


def summary(chunks: list[ReadChunk]) -> tuple[int, list[int], list[tuple[object, ...]]]:
    lines = sorted(
        int(x) for c in chunks for b in c.batches if b.lines is not None for x in b.lines
    )
    rejects: list[tuple[object, ...]] = [
        (r.line, r.code, r.message, dict(r.fields), r.record) for c in chunks for r in c.rejects
    ]
    return sum(c.n_read for c in chunks), lines, rejects


# -- case 1: a quote inside a header cell ------------------------------------------------------


@pytest.mark.parametrize("engine", [*ENGINES, "auto"])
def test_case_01_quote_in_header_cell_reads_every_record(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("\n".join([HEADER + ',Height (5")', row(1), row(2)]) + "\n", encoding="utf-8")
    run = score(tmp_path, path, engine, capsys)
    assert run.code == 0
    assert run.last == "read 2 = scored 2 + not scored 0 + rejected 0"
    assert [r["assessment_id"] for r in run.rows] == ["A1", "A2"]
    assert [r['Height (5")'] for r in run.rows] == ["1", "1"]


@pytest.mark.parametrize("engine", ENGINES)
def test_case_01_quote_in_header_with_multiline_cell_keeps_lines_and_codes(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    path = tmp_path / "odd2.csv"
    rows = [HEADER + ',Height (5")', row(1, site='"multi\nline"'), row(2), row(3, aid="")]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    run = score(tmp_path, path, engine, capsys)
    assert run.code == 0
    assert run.last == "read 3 = scored 2 + not scored 0 + rejected 1"
    assert [r["site"] for r in run.rows] == ["multi\nline", "s"]
    assert [(r["line"], r["code"]) for r in run.rejects] == [("5", "no-assessment-id")]


@pytest.mark.parametrize(
    "header",
    [
        HEADER + ',Height (5")',
        HEADER + ',"Height ""5"""',
        HEADER + ',x"y"z',
        HEADER + ',"multi\nline header"',
        HEADER.replace("site", 'si"te'),
        HEADER + ',a"b\r\n\r\n',
        HEADER + ',"' + "n" * 200_000 + '\r\n5"" tall"',
    ],
    ids=[
        "odd-quote",
        "quoted-quotes",
        "two-quotes",
        "quoted-line-break",
        "quote-in-site",
        "crlf",
        "long-name",
    ],
)
@pytest.mark.parametrize("block_bytes", [16, 97, 1 << 20])
def test_case_01_readers_agree_on_quotes_in_the_header(
    tmp_path: Path, header: str, block_bytes: int
) -> None:
    """Both readers take the header as the csv module does, however the blocks fall."""
    path = tmp_path / "h.csv"
    rows = [header, row(1), row(2, site='"a\nb"'), row(3, aid=""), row(4, extra='5" tall')]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    arrow, oracle = both_readers(path, block_bytes=block_bytes)
    assert summary(arrow) == summary(oracle)
    n_read, lines, rejects = summary(oracle)
    assert n_read == 4
    assert len(lines) + len(rejects) == 4
    assert arrow[0].source_columns == oracle[0].source_columns


# -- case 9: long cells, bad header bytes -------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("size", [131_073, 1_000_000, MAX_FIELD_CHARS])
def test_case_09_long_cell_is_read(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    engine: str,
    size: int,
) -> None:
    path = tmp_path / "long.csv"
    rows = [HEADER + ",notes", row(1, extra="x" * size), row(2, extra='"a\n' + "é" * 9 + '"')]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    run = score(tmp_path, path, engine, capsys)
    assert run.code == 0
    assert run.last == "read 2 = scored 2 + not scored 0 + rejected 0"
    assert [len(r["notes"]) for r in run.rows] == [size, 11]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("quoted", [False, True])
def test_case_09_cell_over_the_limit_is_rejected_with_its_line(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    engine: str,
    quoted: bool,
) -> None:
    path = tmp_path / "huge.csv"
    huge = "y" * (MAX_FIELD_CHARS + 1)
    cell = f'"line\n{huge}"' if quoted else huge
    path.write_text("\n".join([HEADER + ",notes", row(1), row(2, extra=cell), row(3)]) + "\n")
    limit = csv.field_size_limit()
    run = score(tmp_path, path, engine, capsys)
    assert csv.field_size_limit() == limit  # the csv module's global limit is left as it was
    assert run.code == 0
    assert run.last == "read 3 = scored 2 + not scored 0 + rejected 1"
    assert "Traceback" not in run.err
    (reject,) = run.rejects
    assert (reject["line"], reject["code"]) == ("3", "field-too-long")
    assert "1,048,576 characters" in reject["message"]
    assert [r["assessment_id"] for r in run.rows] == ["A1", "A3"]


def test_case_09_both_readers_reject_the_same_long_cells(tmp_path: Path) -> None:
    """Multi-byte text: the limit counts characters in both readers, not bytes."""
    path = tmp_path / "wide.csv"
    at_limit = "é" * MAX_FIELD_CHARS  # 2 MiB of UTF-8, but at the limit in characters
    over = "é" * (MAX_FIELD_CHARS + 1)
    rows = [HEADER + ",notes", row(1, extra=at_limit), row(2, extra=over), row(3)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    arrow, oracle = both_readers(path, block_bytes=1 << 16)
    assert summary(arrow)[:2] == summary(oracle)[:2] == (3, [2, 4])
    assert [r.code for c in arrow for r in c.rejects] == ["field-too-long"]


def test_case_09_csv_field_limit_is_put_back_after_interleaved_readers(tmp_path: Path) -> None:
    """The csv module's limit is global: raised while any reader is open, restored after."""
    path = tmp_path / "long.csv"
    rows = [HEADER + ",notes", *(row(i, extra='a"b' + "x" * 140_000) for i in range(3))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    limit = csv.field_size_limit()
    options = ReadOptions(chunk_rows=1, settings={"block_bytes": 1 << 16})
    first = read_record_chunks(path, options, BUILTIN_INSTRUMENTS)
    second = read_columnar(path, options, BUILTIN_INSTRUMENTS)  # falls back to the csv module
    third = read_record_chunks(path, options, BUILTIN_INSTRUMENTS)
    assert isinstance(first, Generator)
    counts = [next(first).n_read, next(second).n_read, next(second).n_read, next(third).n_read]
    assert counts == [1, 0, 1, 1]
    first.close()
    assert sum(c.n_read for c in third) == 2
    assert sum(c.n_read for c in second) == 2
    assert csv.field_size_limit() == limit


@pytest.mark.parametrize("engine", ENGINES)
def test_case_09_invalid_utf8_in_the_header_is_a_located_error(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    path = tmp_path / "bad-header.csv"
    text = "\n".join([HEADER + ",caf\udcff", row(1), row(2)]) + "\n"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    # Read as UTF-8, as asked: without --encoding this file would be read as latin-1.
    run = score(tmp_path, path, engine, capsys, "--encoding", "utf-8")
    assert run.code == 1
    assert "Traceback" not in run.err
    err = run.err.replace(str(tmp_path) + "/", "")
    assert "the header is not valid UTF-8" in err
    assert "name is not UTF-8 @ bad-header.csv: column 20" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad-header.csv"]


@pytest.mark.parametrize(
    "text",
    [
        b'[columns]\n"Q\xff" = "q01"\n',
        b"[columns]\na = " + b"[" * 200 + b"]" * 200 + b"\n",
        b"[input]\ninstrument = " + b"9" * 5000 + b"\n",
        b"[input]\ndelimiter = '\"'\n",
        b"[input]\ndelimiter = '\xc3\xa9'\n",
    ],
    ids=["not-utf8", "too-deep", "huge-integer", "quote-delimiter", "non-ascii-delimiter"],
)
def test_case_09_hostile_mapping_file_is_a_located_error(
    tmp_path: Path, host: PluginHost, capsys: pytest.CaptureFixture[str], text: bytes
) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_bytes(text)
    with pytest.raises(FormatError) as info:
        load_mapping(mapping)
    assert all(p.where.startswith("m.toml") for p in info.value.problems)
    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER, row(1)]) + "\n", encoding="utf-8")
    run = score(tmp_path, path, "auto", capsys, "--mapping", str(mapping))
    assert run.code == 1
    assert "Traceback" not in run.err
    assert "m.toml" in run.err
    assert not run.out.exists()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("delimiter", ['"', "é", "\n"])
def test_case_09_unusable_delimiter_is_a_clean_error(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    engine: str,
    delimiter: str,
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER, row(1)]) + "\n", encoding="utf-8")
    run = score(tmp_path, path, engine, capsys, "--delimiter", delimiter)
    assert run.code == 1
    assert "must be one ASCII character other than a quote or a line break" in run.err
    assert not run.out.exists()


# -- case 12: byte-order marks ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("boms", [1, 2, 3])
def test_case_12_every_leading_bom_is_dropped(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    engine: str,
    boms: int,
) -> None:
    path = tmp_path / "bom.csv"
    text = "\n".join([HEADER + ",n", row(1), row(2)])
    path.write_bytes(b"\xef\xbb\xbf" * boms + text.encode("utf-8") + b"\n")
    run = score(tmp_path, path, engine, capsys)
    assert run.code == 0
    assert run.last == "read 2 = scored 2 + not scored 0 + rejected 0"
    assert [r["patient_id"] for r in run.rows] == ["P1", "P2"]
    assert not any("\ufeff" in name for name in run.rows[0])


@pytest.mark.parametrize("engine", ENGINES)
def test_case_12_bom_starting_a_record_is_kept_in_rejects(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    """A U+FEFF that starts a record (two files pasted together) is a character of that record:
    both readers keep it, including where a block of the arrow reader starts with it."""
    path = tmp_path / "pasted.csv"
    rows = [HEADER + ",n", "\ufeff" + row(1, aid=""), "\ufeff" + row(2), row(3)]
    path.write_bytes(("\n".join(rows) + "\n").encode("utf-8"))
    run = score(tmp_path, path, engine, capsys)
    assert run.last == "read 3 = scored 2 + not scored 0 + rejected 1"
    assert [(r["line"], r["code"], r["patient_id"]) for r in run.rejects] == [
        ("2", "no-assessment-id", "\ufeffP1")
    ]
    assert [r["patient_id"] for r in run.rows] == ["\ufeffP2", "P3"]


@pytest.mark.parametrize("block_bytes", [16, 64, 200])
def test_case_12_readers_agree_on_boms_at_block_starts(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "boms.csv"
    rows = [HEADER + ",n"] + ["\ufeff" + row(i, aid="" if i % 3 == 0 else None) for i in range(9)]
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf" + ("\n".join(rows) + "\n").encode("utf-8"))
    arrow, oracle = both_readers(path, block_bytes=block_bytes)
    assert summary(arrow) == summary(oracle)
    assert summary(oracle)[0] == 9


# -- case 15: mapping files that change scores silently -----------------------------------------


def mapping_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(FormatError) as info:
        load_mapping(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ('[answers]\n"Sometimes" = 1\n"SOMETIMES" = 4\n', "'Sometimes' = '1'", "'SOMETIMES' = '4'"),
        ('[answers]\n"most of  the time" = 3\n" Most of the time" = "2"\n',
         "'most of  the time' = '3'", "' Most of the time' = '2'"),
    ],
    ids=["case", "spacing"],
)  # fmt: skip
def test_case_15_labels_differing_in_case_or_spacing_are_refused(
    tmp_path: Path, text: str, first: str, second: str
) -> None:
    message = refused(mapping_file(tmp_path, text))
    assert f"answers.{first}" in message
    assert f"answers.{second}" in message


def test_case_15_labels_differing_in_case_with_one_answer_are_accepted(tmp_path: Path) -> None:
    path = mapping_file(tmp_path, '[answers]\n"Sometimes" = 2\n"SOMETIMES" = "2"\n')
    assert dict(load_mapping(path).answers) == {"Sometimes": "2", "SOMETIMES": "2"}


@pytest.mark.parametrize(
    ("label", "value"),
    [("Agree", "1"), ("STRONGLY  agree", "2"), ("N/A", "1"), ("3", "4"), ("", "1"),
     ("agree_strongly", "NA"), ("not applicable", "4")],
)  # fmt: skip
def test_case_15_redefining_a_builtin_label_is_refused(
    tmp_path: Path, label: str, value: str
) -> None:
    message = refused(mapping_file(tmp_path, f'[answers]\n"{label}" = "{value}"\n'))
    assert f"answers.{label!r} = {value!r} redefines pamlib's own answer {label!r}" in message


def test_case_15_restating_a_builtin_label_is_harmless(tmp_path: Path) -> None:
    path = mapping_file(tmp_path, '[answers]\n"Agree" = 3\n"n/a" = "NA"\n"Often" = 4\n')
    assert dict(load_mapping(path).answers) == {"Agree": "3", "n/a": "NA", "Often": "4"}


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ('[input]\ndrop = ["Q1"]\n', ["input.drop[0] = 'Q1'", "read as q01"]),
        ('[input]\ndrop = ["Patient_ID"]\n', ["input.drop[0] = 'Patient_ID'", "patient_id"]),
        ('[input]\ndrop = ["Notes"]\n[columns]\n"Notes" = "q02"\n',
         ["input.drop[0] = 'Notes'", "columns.'Notes' = 'q02'"]),
    ],
    ids=["item", "identity", "mapped"],
)  # fmt: skip
def test_case_15_dropping_a_scored_column_is_refused(
    tmp_path: Path, text: str, entries: list[str]
) -> None:
    message = refused(mapping_file(tmp_path, text))
    for entry in entries:
        assert entry in message


def test_case_15_drop_in_read_options_cannot_remove_an_item(tmp_path: Path) -> None:
    header = [*HEADER.split(","), "Notes"]
    with pytest.raises(FormatError, match="'q01' is read as q01"):
        Layout.resolve(header, ReadOptions(drop=frozenset({"q01"})), source="x.csv")
    layout = Layout.resolve(header, ReadOptions(drop=frozenset({"Notes", "site"})))
    assert layout.extra_names == ()
    assert len(layout.items) == 13


def test_case_15_instrument_spellings_for_two_instruments_are_refused(tmp_path: Path) -> None:
    message = refused(
        mapping_file(tmp_path, '[instruments]\n"pam13" = "PAM-13"\n"PAM13" = "PAM-10"\n')
    )
    assert "instruments.'pam13' = 'PAM-13'" in message
    assert "instruments.'PAM13' = 'PAM-10'" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_case_15_alias_that_repoints_an_instrument_is_refused(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    mapping = mapping_file(tmp_path, '[instruments]\n"pam-10" = "PAM-13"\n')
    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER, row(1)]) + "\n", encoding="utf-8")
    run = score(tmp_path, path, engine, capsys, "--mapping", str(mapping))
    assert run.code == 1
    assert "'pam-10' = 'PAM-13'" in run.err
    assert "already names PAM-10" in run.err
    assert not run.out.exists()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "text",
    ['[answers]\n"Sometimes" = 1\n"SOMETIMES" = 4\n', '[answers]\n"Agree" = 1\n',
     '[input]\ndrop = ["Q1"]\n'],
    ids=["case", "builtin", "drop"],
)  # fmt: skip
def test_case_15_refused_mapping_stops_the_run(
    tmp_path: Path,
    host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    engine: str,
    text: str,
) -> None:
    mapping = mapping_file(tmp_path, text)
    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER.replace("q01", "Q1"), row(1)]) + "\n", encoding="utf-8")
    run = score(tmp_path, path, engine, capsys, "--mapping", str(mapping))
    assert run.code == 1
    assert "mapping file map.toml is invalid" in run.err
    assert "Traceback" not in run.err
    assert not run.out.exists()
