"""The columnar reader and the record-at-a-time oracle (:mod:`tests.oracles.csv_reader`) read
every file the same way, on one thread or several.

Same records (values, line numbers), same rejects (codes, messages, fields), same blank
records, same scores, same output bytes — over generated messy files and tiny chunks, so
records cross block boundaries and repeated ids cross chunks; and the same records in another
encoding (cp1252, latin-1, UTF-16, UTF-32) give what the UTF-8 file gives.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.errors import FormatError
from pamlib.formats import delimited
from pamlib.formats._columnar import read_columnar
from pamlib.formats.base import ReadChunk, ReadOptions, Reject, text_values
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.pipeline import score_file
from pamlib.plugins import PluginHost
from pamlib.scoring.raw_sum import RawSumProvider
from tests.csv_strategies import ITEMS, MessyFile, messy_files
from tests.oracles.csv_reader import (
    ORACLE_FORMAT,
    LocatedAssessment,
    iter_assessments,
    oracle_host,
    read_record_chunks,
)

pytest.importorskip("pyarrow")

RAW = RawSumProvider()


def _records(
    chunks: list[ReadChunk],
) -> tuple[list[tuple[Any, ...]], list[Reject], int, int]:
    records = []
    for chunk in chunks:
        for b in chunk.batches:
            extras = {k: text_values(v) for k, v in b.extras.items()}
            assert b.lines is not None
            for i in range(len(b)):
                records.append(
                    (
                        int(b.lines[i]),
                        text_values(b.assessment_id)[i],
                        text_values(b.patient_id)[i],
                        text_values(b.nhs_number)[i],
                        str(b.assessed_on[i]),
                        b.instrument.id,
                        text_values(b.site)[i],
                        tuple(int(c) for c in b.codes[i]),
                        tuple(sorted((k, v[i]) for k, v in extras.items())),
                    )
                )
    rejects = [r for c in chunks for r in c.rejects]
    return sorted(records), rejects, sum(c.n_read for c in chunks), sum(c.n_blank for c in chunks)


def _read_both(
    path: Path, options: ReadOptions, block_bytes: int
) -> tuple[list[ReadChunk], list[ReadChunk]]:
    arrow_options = ReadOptions(
        chunk_rows=options.chunk_rows,
        instrument=options.instrument,
        settings={"block_bytes": block_bytes},
    )
    arrow = list(read_columnar(path, arrow_options, BUILTIN_INSTRUMENTS))
    oracle = list(read_record_chunks(path, options, BUILTIN_INSTRUMENTS))
    return arrow, oracle


@settings(max_examples=150)
@given(
    messy=messy_files(),
    chunk_rows=st.integers(1, 6),
    block_bytes=st.integers(16, 400),
    default=st.sampled_from([None, "PAM-13"]),
)
def test_the_columnar_reader_and_the_oracle_agree(
    tmp_path_factory: pytest.TempPathFactory,
    messy: MessyFile,
    chunk_rows: int,
    block_bytes: int,
    default: str | None,
) -> None:
    path = tmp_path_factory.mktemp("messy") / "export.csv"
    path.write_bytes(messy.data)
    options = ReadOptions(chunk_rows=chunk_rows, instrument=default)
    try:
        arrow, oracle = _read_both(path, options, block_bytes)
    except FormatError as exc:  # a header pamlib cannot use: both paths must refuse it
        refused = str(exc)
        with pytest.raises(FormatError) as other:
            list(read_record_chunks(path, options, BUILTIN_INSTRUMENTS))
        assert str(other.value) == refused
        return
    a_records, a_rejects, a_read, a_blank = _records(arrow)
    p_records, p_rejects, p_read, p_blank = _records(oracle)
    assert (a_read, a_blank) == (p_read, p_blank)
    assert a_records == p_records
    assert [(r.line, r.code, r.message, dict(r.fields), r.record) for r in a_rejects] == [
        (r.line, r.code, r.message, dict(r.fields), r.record) for r in p_rejects
    ]
    assert a_read == len(a_records) + len(a_rejects) + a_blank
    assert all(c.n_read == c.n_valid + len(c.rejects) + c.n_blank for c in [*arrow, *oracle])
    # Line numbers are the physical start lines: strictly increasing over the file.
    lines = sorted([r[0] for r in a_records] + [r.line or 0 for r in a_rejects])
    assert lines == sorted(set(lines))
    assert all(line >= 2 for line in lines)


_ALIKE_COLUMNS = ["patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument", *ITEMS]
_FAULTS = [
    ("assessed_on", "2024-13-01"),
    ("assessed_on", "2024-13-02"),
    ("assessed_on", ""),
    ("assessed_on", "  "),
    ("assessed_on", "31/02/2024"),
    ("assessed_on", "soon"),
    ("instrument", "PAM-99"),
    ("instrument", ""),
    ("instrument", "pam 13"),
    ("q03", "5"),
    ("q13", "x"),
    ("nhs_number", "1234567890"),
    ("patient_id", ""),
    ("assessment_id", ""),
    ("assessment_id", "A0"),
]


@st.composite
def _alike_rejects(draw: st.DrawFn) -> bytes:
    """Valid rows, and rows with one or two faults drawn from a few spellings each, so that
    many rows of a block share a fault: the rows whose one fault is a date or an instrument
    take the message the record checks gave the first of them."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_ALIKE_COLUMNS)
    for i in range(draw(st.integers(1, 60))):
        row = dict.fromkeys(ITEMS, "3")
        row.update(patient_id=f"P{i}", nhs_number="", assessment_id=f"A{i}")
        row.update(assessed_on="2024-03-01", instrument="PAM-13")
        row.update(draw(st.lists(st.sampled_from(_FAULTS), max_size=2)))
        writer.writerow([row[c] for c in _ALIKE_COLUMNS])
    return out.getvalue().encode("utf-8")


@settings(max_examples=60)
@given(data=_alike_rejects(), chunk_rows=st.integers(1, 40))
def test_rejects_that_share_a_fault_get_the_record_checks_message(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, chunk_rows: int
) -> None:
    path = tmp_path_factory.mktemp("alike") / "export.csv"
    path.write_bytes(data)
    arrow, oracle = _read_both(path, ReadOptions(chunk_rows=chunk_rows), 1 << 16)
    a_records, a_rejects, _, _ = _records(arrow)
    p_records, p_rejects, _, _ = _records(oracle)
    assert a_records == p_records
    assert [(r.line, r.code, r.message, dict(r.fields)) for r in a_rejects] == [
        (r.line, r.code, r.message, dict(r.fields)) for r in p_rejects
    ]


@settings(max_examples=40)
@given(messy=messy_files(), chunk_rows=st.integers(1, 6))
def test_scores_and_output_bytes_agree(
    tmp_path_factory: pytest.TempPathFactory, messy: MessyFile, chunk_rows: int
) -> None:
    path = tmp_path_factory.mktemp("messy") / "export.csv"
    path.write_bytes(messy.data)
    host = oracle_host()
    outputs = []
    for reader, threads in (("csv", 1), ("csv", 4), (ORACLE_FORMAT, 1)):
        out, rej = io.BytesIO(), io.BytesIO()
        options = ReadOptions(chunk_rows=chunk_rows, instrument="PAM-13")
        try:
            summary = score_file(
                path,
                select_provider=lambda _: RAW,
                output=out,
                rejects=rej,
                options=options,
                host=host,
                input_format=reader,
                keep_nhs_number=True,
                threads=threads,
            )
        except FormatError as exc:
            outputs.append((str(exc), b"", b""))
            continue
        assert summary.reconciles
        outputs.append((summary.reconciliation, out.getvalue(), rej.getvalue()))
    assert outputs[0] == outputs[1] == outputs[2]  # on one thread, on four, and the oracle


def _score(path: Path, reader: str, chunk_rows: int, **settings: object) -> tuple[Any, ...]:
    host = oracle_host()
    out, rej = io.BytesIO(), io.BytesIO()
    options = ReadOptions(chunk_rows=chunk_rows, instrument="PAM-13", settings=settings)
    try:
        summary = score_file(
            path,
            select_provider=lambda _: RAW,
            output=out,
            rejects=rej,
            options=options,
            host=host,
            input_format=reader,
            keep_nhs_number=True,
        )
    except FormatError as exc:
        return (str(exc).replace(str(path.parent), ""),)
    assert summary.reconciles
    folder = str(path.parent).encode()
    return (
        summary.reconciliation,
        summary.n_blank,
        out.getvalue(),
        rej.getvalue().replace(folder, b""),
    )


#: Encodings, and whether a file in it is read without being told (by its byte-order mark).
ENCODINGS = {"cp1252": False, "latin-1": False, "utf-16": True, "utf-16-le": False,
             "utf-16-be": False, "utf-32": True, "utf-8-sig": True}  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(
    messy=messy_files(),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    reader=st.sampled_from(["csv", ORACLE_FORMAT]),
    chunk_rows=st.integers(1, 6),
)
def test_the_same_records_in_another_encoding_score_the_same(
    tmp_path_factory: pytest.TempPathFactory,
    messy: MessyFile,
    encoding: str,
    reader: str,
    chunk_rows: int,
) -> None:
    """A file in another encoding gives the scores, rejects (lines, codes, messages, fields),
    blank records and counts of the UTF-8 file holding the same text."""
    text = messy.data.decode("utf-8", "surrogateescape")
    text = re.sub("[\udc80-\udcff]", "?", text)  # a byte that is not UTF-8 is no character
    data = text.encode(encoding, "replace")  # "?" for characters the encoding has not
    same_text = data.decode(encoding)
    folder = tmp_path_factory.mktemp("enc")
    (folder / "utf8").mkdir()
    (folder / "utf8" / "export.csv").write_bytes(same_text.encode("utf-8"))
    (folder / "other").mkdir()
    (folder / "other" / "export.csv").write_bytes(data)
    expected = _score(folder / "utf8" / "export.csv", reader, chunk_rows)
    given = _score(folder / "other" / "export.csv", reader, chunk_rows, encoding=encoding)
    assert given == expected
    if ENCODINGS[encoding]:
        assert _score(folder / "other" / "export.csv", reader, chunk_rows) == expected


@settings(max_examples=60)
@given(messy=messy_files())
def test_object_scores_match_batch_scores(
    tmp_path_factory: pytest.TempPathFactory, messy: MessyFile
) -> None:
    """Scoring each Assessment object gives the result the columnar batch gives that row."""
    path = tmp_path_factory.mktemp("messy") / "export.csv"
    path.write_bytes(messy.data)
    options = ReadOptions(instrument="PAM-13")
    try:
        objects = [
            x
            for x in iter_assessments(path, options, instruments=BUILTIN_INSTRUMENTS)
            if isinstance(x, LocatedAssessment)
        ]
    except FormatError:
        return
    by_line = {}
    for chunk in read_columnar(path, options, BUILTIN_INSTRUMENTS):
        for b in chunk.batches:
            scores = RAW.score_batch(b.instrument, b.codes)
            ids = text_values(b.assessment_id)
            assert b.lines is not None
            for i in range(len(b)):
                by_line[int(b.lines[i])] = scores.result(i, ids[i])
    assert sorted(by_line) == [o.line for o in objects]
    for located in objects:
        assert RAW.score(located.assessment) == by_line[located.line]


@settings(max_examples=60)
@given(messy=messy_files())
def test_objects_read_are_the_oracles_objects(
    tmp_path_factory: pytest.TempPathFactory, messy: MessyFile
) -> None:
    """pamlib's object view of a file (its columns as Assessment objects, rejects between them
    in file order) is what the record-at-a-time oracle builds, object for object."""
    path = tmp_path_factory.mktemp("messy") / "export.csv"
    path.write_bytes(messy.data)
    options = ReadOptions(instrument="PAM-13", chunk_rows=3)

    def items(read: Any) -> list[tuple[Any, ...]] | str:
        try:
            return [
                (x.line, x.source, x.assessment)
                if isinstance(x, (LocatedAssessment, delimited.LocatedAssessment))
                else (x.line, x.code, x.message)
                for x in read(path, options, instruments=BUILTIN_INSTRUMENTS)
            ]
        except FormatError as exc:
            return str(exc)

    assert items(delimited.iter_assessments) == items(iter_assessments)


def test_the_old_place_of_iter_assessments_warns() -> None:
    from pamlib.formats import _records as records

    with pytest.warns(DeprecationWarning, match="moved to pamlib.formats.delimited"):
        moved = records.iter_assessments
    assert moved is delimited.iter_assessments


def test_instruments_of_a_mixed_file_come_out_in_input_order(tmp_path: Path) -> None:
    rows = [
        "patient_id,assessment_id,assessed_on,instrument,"
        + ",".join(f"q{i:02d}" for i in range(1, 14))
    ]
    kinds = ["PAM-13", "PAM-10", "PAM-10", "PAM-13", "PAM-10", "PAM-13"]
    for i, kind in enumerate(kinds):
        answers = ["3"] * (13 if kind == "PAM-13" else 10) + [""] * (0 if kind == "PAM-13" else 3)
        rows.append(f"P{i},A{i},2024-03-0{i + 1},{kind}," + ",".join(answers))
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = io.BytesIO()
    host = PluginHost(load_entry_points=False, disabled=())
    score_file(path, select_provider=lambda _: RAW, output=out, rejects=io.BytesIO(), host=host)
    lines = out.getvalue().decode().splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == [f"A{i}" for i in range(6)]
    assert [line.split(",")[3] for line in lines] == kinds


def _instrument(name: str) -> Instrument:
    return next(i for i in BUILTIN_INSTRUMENTS if i.id == name)


def test_codes_have_instrument_width(tmp_path: Path) -> None:
    path = tmp_path / "pam10.csv"
    path.write_text(
        "patient_id,assessment_id,assessed_on,instrument,q01,q02,q03,q04,q05,q06,q07,q08,q09,q10\n"
        "P1,A1,2024-01-01,PAM-10,1,2,3,4,NA,,1,2,3,4\n",
        encoding="utf-8",
    )
    (chunk,) = [c for c in read_columnar(path, ReadOptions(), BUILTIN_INSTRUMENTS) if c.n_read]
    (batch,) = chunk.batches
    assert batch.instrument == _instrument("PAM-10")
    assert batch.codes.tolist() == [[1, 2, 3, 4, -1, 0, 1, 2, 3, 4]]
    assert batch.codes.dtype == np.int8
