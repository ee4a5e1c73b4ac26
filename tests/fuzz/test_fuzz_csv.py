"""Hostile CSV bytes through both readers: only pamlib's own errors, every record accounted for.

Properties, over generated files and over every file of ``corpus/csv`` (inputs that once broke a
reader, minimised):

* reading raises nothing but a :class:`~pamlib.errors.PamlibError`, and both readers refuse the
  same files with the same message;
* ``read`` equals an independent count of records made with Python's :mod:`csv` module, and
  every record's start line is in the output or in the rejects, exactly once;
* pamlib's reader and the record-at-a-time oracle (:mod:`tests.oracles.csv_reader`) give the
  same records and rejects, and ``pamlib score`` the same output and rejects bytes, with
  ``read = scored + not scored + rejected``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.errors import PamlibError
from pamlib.formats._columnar import read_columnar
from pamlib.formats._records import detect_delimiter
from pamlib.formats.base import ReadChunk, ReadOptions, text_values
from pamlib.formats.encoding import open_utf8
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.pipeline import score_file
from pamlib.scoring.raw_sum import RawSumProvider
from tests.csv_strategies import COLUMNS, ITEMS, MessyFile, messy_files
from tests.fuzz.harnesses import record_lines_of
from tests.oracles.csv_reader import ORACLE_FORMAT, oracle_host, read_record_chunks

pytest.importorskip("pyarrow")

CORPUS = Path(__file__).parent / "corpus" / "csv"
RAW = RawSumProvider()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- an independent count ------------------------------------------------------------------------


def csv_start_lines(path: Path, delimiter: str | None) -> tuple[list[int], list[int]]:
    """The physical start line of every record after the header, by the csv module alone; and
    of those that are blank (every field empty or whitespace). The text is decoded as pamlib
    decodes it (its encoding rule is tested apart)."""
    opened = open_utf8(path, {})
    with opened.stream as stream:
        text = stream.read().decode("utf-8", "surrogateescape").lstrip("\ufeff")
    if delimiter is None:
        first = next((x for x in io.StringIO(text, newline="") if x.strip("\r\n")), "")
        delimiter = detect_delimiter(first)
    return record_lines_of(text, delimiter)


# -- reading with both readers -------------------------------------------------------------------


def _records(chunks: list[ReadChunk]) -> list[tuple[object, ...]]:
    out = []
    for chunk in chunks:
        for b in chunk.batches:
            assert b.lines is not None
            extras = {k: text_values(v) for k, v in b.extras.items()}
            ids, pids, sites = (text_values(c) for c in (b.assessment_id, b.patient_id, b.site))
            for i in range(len(b)):
                out.append(
                    (
                        int(b.lines[i]),
                        ids[i],
                        pids[i],
                        str(b.assessed_on[i]),
                        b.instrument.id,
                        sites[i],
                        tuple(int(c) for c in b.codes[i]),
                        tuple(sorted((k, v[i]) for k, v in extras.items())),
                    )
                )
    return sorted(out, key=lambda r: int(str(r[0])))


def _rejects(chunks: list[ReadChunk]) -> list[tuple[object, ...]]:
    return [
        (r.line, r.code, r.message, dict(r.fields), r.record) for c in chunks for r in c.rejects
    ]


def check_file(
    path: Path, *, delimiter: str | None, chunk_rows: int = 4, block_bytes: int = 64
) -> None:
    """Every property of the module docstring, for one file."""
    given_settings: dict[str, object] = {} if delimiter is None else {"delimiter": delimiter}
    oracle_options = ReadOptions(chunk_rows=chunk_rows, settings=given_settings)
    arrow_options = ReadOptions(
        chunk_rows=chunk_rows, settings={**given_settings, "block_bytes": block_bytes}
    )
    try:
        oracle = list(read_record_chunks(path, oracle_options, BUILTIN_INSTRUMENTS))
    except PamlibError as exc:
        refused = str(exc)
        with pytest.raises(PamlibError) as other:
            list(read_columnar(path, arrow_options, BUILTIN_INSTRUMENTS))
        assert str(other.value) == refused
        return
    arrow = list(read_columnar(path, arrow_options, BUILTIN_INSTRUMENTS))
    n_read = sum(c.n_read for c in oracle)
    assert sum(c.n_read for c in arrow) == n_read
    assert _records(arrow) == _records(oracle)
    assert _rejects(arrow) == _rejects(oracle)
    assert sum(c.n_blank for c in arrow) == sum(c.n_blank for c in oracle)
    assert all(c.n_read == c.n_valid + len(c.rejects) + c.n_blank for c in [*arrow, *oracle])
    starts, blank = csv_start_lines(path, delimiter)
    assert n_read == len(starts)
    assert sum(c.n_blank for c in oracle) == len(blank)
    seen = sorted(
        [int(str(r[0])) for r in _records(oracle)]
        + [r.line or 0 for c in oracle for r in c.rejects]
        + blank
    )
    assert seen == starts  # each record once, in the output, the rejects or the blank ones


def check_scoring(path: Path, *, delimiter: str | None, chunk_rows: int = 4) -> None:
    """Both readers through the scoring pipeline: same bytes out, counts reconcile."""
    host = oracle_host()
    outputs = []
    for reader in ("csv", ORACLE_FORMAT):
        out, rejects = io.BytesIO(), io.BytesIO()
        options = ReadOptions(
            chunk_rows=chunk_rows,
            instrument="PAM-13",
            settings={} if delimiter is None else {"delimiter": delimiter},
        )
        try:
            summary = score_file(
                path,
                select_provider=lambda _: RAW,
                output=out,
                rejects=rejects,
                options=options,
                host=host,
                input_format=reader,
            )
        except PamlibError as exc:
            outputs.append((str(exc), b"", b""))
            continue
        assert summary.reconciles
        outputs.append((summary.reconciliation, out.getvalue(), rejects.getvalue()))
    assert outputs[0] == outputs[1]


# -- generated files -----------------------------------------------------------------------------

#: Byte tokens for records built without the csv module: quotes in every position, line ends,
#: delimiters, byte-order marks, bad and partial UTF-8, NULs, formula text.
TOKENS = (
    b'"', b'""', b",", b";", b"\t", b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf", b"\xff", b"\xc3",
    b"\x00", b"P1", b"A1", b"2024-01-02", b"PAM-13", b"3", b"Agree", b"=1+1", b" ", b"5\" tall",
)  # fmt: skip
CELLS = st.sampled_from([b"P1", b"A1", b"", b"2024-01-02", b"PAM-13", b"3", b"NA"]) | st.lists(
    st.sampled_from(TOKENS), max_size=4
).map(b"".join)


@st.composite
def token_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """A canonical header (sometimes with a hostile extra column), then records of cells made
    of hostile tokens: shapes no csv writer produces."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    d = delimiter.encode()
    names = [*COLUMNS, *ITEMS]
    extra = draw(st.sampled_from([b"", d + b'Height (5")', d + b'"two\nlines"', d + b'x"y"z']))
    header = d.join(n.encode() for n in names) + extra
    width = len(names) + (1 if extra else 0)
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            cells = [b"P1", b"", b"A1", b"2024-01-02", b"PAM-13", b"s", *[b"3"] * 13]
            cells = cells[:width] + [b"x"] * (width - len(cells))
            cells[draw(st.integers(0, width - 1))] = draw(CELLS)
        else:
            cells = draw(st.lists(CELLS, min_size=1, max_size=width + 1))
        lines.append(d.join(cells))
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    boms = b"\xef\xbb\xbf" * draw(st.integers(0, 2))
    return boms + header + ending + ending.join(lines) + draw(st.sampled_from([b"", ending])), (
        delimiter
    )


@FUZZ
@given(
    messy=messy_files(huge=True),
    chunk_rows=st.integers(1, 5),
    block_bytes=st.integers(16, 300),
    give_delimiter=st.booleans(),
)
def test_messy_files_are_read_the_same_and_every_record_is_accounted_for(
    tmp_path_factory: pytest.TempPathFactory,
    messy: MessyFile,
    chunk_rows: int,
    block_bytes: int,
    give_delimiter: bool,
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "export.csv"
    path.write_bytes(messy.data)
    delimiter = messy.delimiter if give_delimiter else None
    check_file(path, delimiter=delimiter, chunk_rows=chunk_rows, block_bytes=block_bytes)


@FUZZ
@given(file=token_files(), chunk_rows=st.integers(1, 5), block_bytes=st.integers(16, 300))
def test_token_files_are_read_the_same_and_every_record_is_accounted_for(
    tmp_path_factory: pytest.TempPathFactory,
    file: tuple[bytes, str],
    chunk_rows: int,
    block_bytes: int,
) -> None:
    data, delimiter = file
    path = tmp_path_factory.mktemp("fuzz") / "tokens.csv"
    path.write_bytes(data)
    check_file(path, delimiter=delimiter, chunk_rows=chunk_rows, block_bytes=block_bytes)
    check_file(path, delimiter=None, chunk_rows=chunk_rows, block_bytes=block_bytes)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=token_files() | messy_files().map(lambda m: (m.data, m.delimiter)))
def test_scoring_hostile_files_reconciles_and_both_readers_write_the_same_bytes(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[bytes, str]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "score.csv"
    path.write_bytes(file[0])
    check_scoring(path, delimiter=None)


# -- the corpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
@pytest.mark.parametrize("block_bytes", [16, 1 << 20])
def test_corpus_file(path: Path, block_bytes: int) -> None:
    check_file(path, delimiter=None, chunk_rows=2, block_bytes=block_bytes)
    check_file(path, delimiter=None, chunk_rows=65_536, block_bytes=block_bytes)
    check_scoring(path, delimiter=None)
