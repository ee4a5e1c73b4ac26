"""Conformance tests for a format plugin (a reader, a writer, or both).

Subclass :class:`FormatConformance` and provide a ``file_format`` fixture returning your format
object, and — for a reader — a ``sample_input`` fixture returning the path of a small file in
your format, ideally with a bad record among good ones::

    import pytest
    from pamlib.testing import FormatConformance
    from my_format_plugin import MyFormat

    class TestMyFormat(FormatConformance):
        @pytest.fixture
        def file_format(self):
            return MyFormat()

        @pytest.fixture
        def sample_input(self, tmp_path):
            path = tmp_path / "sample.myf"
            path.write_text(...)
            return path

What is checked: the format declares a name, extensions and a description, and reads and/or
writes; every record read is accounted for (``n_read`` = valid + rejected, in every chunk);
chunking loses nothing and reading is deterministic; batches hold well-formed columns of a
registered instrument and say where each record came from; every reject says where and why; the
writer writes scored batches to a file or a stream, and ``abort`` leaves no partial output.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pamlib import scoring
from pamlib.formats.base import (
    Format,
    InputFormat,
    OutputFormat,
    ReadChunk,
    ReadOptions,
    RecordBatch,
    WriteOptions,
    read_input,
    text_values,
)
from pamlib.plugins import PluginHost
from pamlib.scoring.provider import BatchScores

__all__ = ["FormatConformance"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _read(fmt: InputFormat, source: Path, host: PluginHost, **options: Any) -> list[ReadChunk]:
    """Everything ``fmt`` reads from ``source``, handed ``host`` as the pipeline hands it."""
    return list(read_input(fmt, source, ReadOptions(**options), host=host))


def _synthetic_batch(host: PluginHost) -> RecordBatch:
    """Three made-up PAM-13 records: complete, complete, nothing answered."""
    pam13 = host.instruments().get("PAM-13")
    n = 3
    codes = np.zeros((n, pam13.n_items), dtype=np.int8)
    codes[0, :] = 3
    codes[1, :] = 4
    return RecordBatch(
        instrument=pam13,
        assessment_id=np.array(["a1", "a2", "a3"]),
        patient_id=np.array(["p1", "p2", "p3"]),
        nhs_number=np.array([""] * n),
        assessed_on=np.array(["2025-03-01"] * n, dtype="datetime64[D]"),
        site=np.array([""] * n),
        codes=codes,
        locations=np.array([f"record {i + 1}" for i in range(n)]),
        source="conformance",
    )


class FormatConformance:
    """The contract of a format, as tests. Override ``file_format`` (required) and, for a
    reader, ``sample_input``."""

    @pytest.fixture
    def file_format(self) -> Format:
        raise NotImplementedError("define a 'file_format' fixture returning your format")

    @pytest.fixture
    def sample_input(self) -> Path | None:
        """A small file your reader reads (``None`` skips the reading tests)."""
        return None

    @pytest.fixture
    def format_host(self, pamlib_host: PluginHost) -> PluginHost:
        return pamlib_host

    def _reader(self, fmt: Format, sample: Path | None) -> tuple[InputFormat, Path]:
        if not isinstance(fmt, InputFormat):
            pytest.skip("not an input format")
        if sample is None:
            pytest.skip("no 'sample_input' fixture: reading not exercised")
        return fmt, sample

    # -- declarations ----------------------------------------------------------------------

    def test_declares_itself(self, file_format: Format) -> None:
        assert _NAME.fullmatch(file_format.name), "a short lower-case name for --format"
        assert isinstance(file_format.extensions, tuple)
        for ext in file_format.extensions:
            assert ext.startswith("."), f"extensions start with a dot: {ext!r}"
        assert isinstance(file_format.description, str)
        assert file_format.description.strip()
        assert isinstance(file_format, InputFormat | OutputFormat), "read, write, or both"

    # -- reading ---------------------------------------------------------------------------

    def test_every_record_is_accounted_for(
        self, file_format: Format, sample_input: Path | None, format_host: PluginHost
    ) -> None:
        reader, sample = self._reader(file_format, sample_input)
        chunks = _read(reader, sample, format_host)
        assert sum(c.n_read for c in chunks) > 0, "the sample holds at least one record"
        registered = format_host.instruments()
        for chunk in chunks:
            assert chunk.n_read == chunk.n_valid + len(chunk.rejects), "counts reconcile"
            for batch in chunk.batches:
                self._check_batch(batch, registered)

    def _check_batch(self, batch: RecordBatch, registered: Any) -> None:
        n = len(batch)
        inst = batch.instrument
        assert inst.id in registered, f"{inst.id} is not a registered instrument"
        assert batch.codes.dtype == np.int8
        assert batch.codes.shape == (n, inst.n_items)
        assert np.all((batch.codes >= -1) & (batch.codes <= inst.n_categories))
        assert batch.assessed_on.dtype == np.dtype("datetime64[D]")
        assert len(batch.assessed_on) == n
        columns: Sequence[str] = ("assessment_id", "patient_id", "nhs_number", "site")
        for name in columns:
            assert len(getattr(batch, name)) == n, f"{name} has one value per record"
        ids = text_values(batch.assessment_id)
        assert all(i.strip() for i in ids), "every record has an assessment id"
        patients = zip(text_values(batch.patient_id), text_values(batch.nhs_number), strict=True)
        assert all(p or nhs for p, nhs in patients), "every record names its patient"
        for where in (batch.lines, batch.locations):
            if where is not None:
                assert len(where) == n, "one location per record"
        assert batch.lines is not None or batch.locations is not None, (
            "say where each record came from: lines (line-oriented input) or locations"
        )

    def test_chunking_loses_nothing(
        self, file_format: Format, sample_input: Path | None, format_host: PluginHost
    ) -> None:
        reader, sample = self._reader(file_format, sample_input)

        def summary(chunks: list[ReadChunk]) -> tuple[int, list[tuple[str, str, str]], int]:
            # Records in any order: a reader may group a chunk's records by instrument.
            records = sorted(
                (b.instrument.id, i, str(row.tolist()))
                for c in chunks
                for b in c.batches
                for i, row in zip(text_values(b.assessment_id), b.codes, strict=True)
            )
            return sum(c.n_read for c in chunks), records, sum(len(c.rejects) for c in chunks)

        whole = summary(_read(reader, sample, format_host))
        assert summary(_read(reader, sample, format_host)) == whole, "reading is deterministic"
        chunked = summary(_read(reader, sample, format_host, chunk_rows=1))
        assert chunked == whole, "chunks lose nothing"

    def test_rejects_say_where_and_why(
        self, file_format: Format, sample_input: Path | None, format_host: PluginHost
    ) -> None:
        reader, sample = self._reader(file_format, sample_input)
        rejects = [r for c in _read(reader, sample, format_host) for r in c.rejects]
        if not rejects:
            pytest.skip("the sample has no bad record: add one to exercise rejects")
        for reject in rejects:
            assert reject.source, "a reject names its source"
            assert reject.location, "a reject says where the record is (line, JSON path)"
            assert reject.code, "a reject has a machine-readable code"
            assert reject.message, "a reject says why, in words"
            assert reject.line is None or reject.line >= 1

    # -- writing ---------------------------------------------------------------------------

    def _scored(
        self, fmt: Format, sample: Path | None, host: PluginHost
    ) -> list[tuple[RecordBatch, BatchScores]]:
        """Batches to write — read from the sample when the format reads too — with scores."""
        batches: list[RecordBatch] = []
        if isinstance(fmt, InputFormat) and sample is not None:
            batches = [b for c in _read(fmt, sample, host) for b in c.batches]
        return [
            (b, scoring.score_many(b.instrument, b.codes, provider="raw-sum", host=host))
            for b in batches or [_synthetic_batch(host)]
        ]

    def _writer(self, fmt: Format) -> OutputFormat:
        if not isinstance(fmt, OutputFormat):
            pytest.skip("not an output format")
        return fmt

    def _target(self, fmt: OutputFormat, folder: Path) -> Path:
        ext = fmt.extensions[0] if fmt.extensions else ".out"
        return folder / f"conformance-output{ext}"

    def test_writes_scored_batches(
        self,
        file_format: Format,
        sample_input: Path | None,
        format_host: PluginHost,
        tmp_path: Path,
    ) -> None:
        fmt = self._writer(file_format)
        target = self._target(fmt, tmp_path)
        writer = fmt.open_writer(target, WriteOptions())
        for batch, scores in self._scored(fmt, sample_input, format_host):
            writer.write(batch, scores, {})
        writer.close()
        assert target.is_file(), "the writer wrote its target"
        assert target.stat().st_size > 0

    def test_writes_to_a_stream(
        self, file_format: Format, sample_input: Path | None, format_host: PluginHost
    ) -> None:
        """``pamlib score`` without ``-o`` writes to standard output: a binary stream."""
        fmt = self._writer(file_format)
        stream = io.BytesIO()
        writer = fmt.open_writer(stream, WriteOptions())
        for batch, scores in self._scored(fmt, sample_input, format_host):
            writer.write(batch, scores, {})
        writer.close()
        assert stream.getvalue(), "the writer wrote to the stream"

    def test_abort_leaves_no_partial_output(
        self,
        file_format: Format,
        sample_input: Path | None,
        format_host: PluginHost,
        tmp_path: Path,
    ) -> None:
        """A run that fails calls ``abort`` instead of ``close``: no half-written file stays."""
        fmt = self._writer(file_format)
        target = self._target(fmt, tmp_path)
        writer = fmt.open_writer(target, WriteOptions())
        batch, scores = self._scored(fmt, sample_input, format_host)[0]
        writer.write(batch, scores, {})
        writer.abort()
        assert not target.exists(), "abort removes partial output"
