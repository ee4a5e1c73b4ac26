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
registered instrument; every reject says where and why; the writer writes scored batches.
"""

from __future__ import annotations

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
)
from pamlib.plugins import PluginHost

__all__ = ["FormatConformance"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _texts(column: Any) -> list[str]:
    """A text column (NumPy, or Arrow where a reader keeps one) as a list of ``str``."""
    values = column.to_pylist() if hasattr(column, "to_pylist") else column.tolist()
    return [str(v) for v in values]


def _read(fmt: InputFormat, source: Path, **options: Any) -> list[ReadChunk]:
    return list(fmt.read(source, ReadOptions(**options)))


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
        chunks = _read(reader, sample)
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
        ids = _texts(batch.assessment_id)
        assert all(i.strip() for i in ids), "every record has an assessment id"
        patients = zip(_texts(batch.patient_id), _texts(batch.nhs_number), strict=True)
        assert all(p or nhs for p, nhs in patients), "every record names its patient"
        locations = getattr(batch, "locations", None)
        if locations is not None:
            assert len(locations) == n

    def test_chunking_loses_nothing(self, file_format: Format, sample_input: Path | None) -> None:
        reader, sample = self._reader(file_format, sample_input)

        def summary(chunks: list[ReadChunk]) -> tuple[int, list[tuple[str, str, str]], int]:
            # Records in any order: a reader may group a chunk's records by instrument.
            records = sorted(
                (b.instrument.id, i, str(row.tolist()))
                for c in chunks
                for b in c.batches
                for i, row in zip(_texts(b.assessment_id), b.codes, strict=True)
            )
            return sum(c.n_read for c in chunks), records, sum(len(c.rejects) for c in chunks)

        whole = summary(_read(reader, sample))
        assert summary(_read(reader, sample)) == whole, "reading is deterministic"
        assert summary(_read(reader, sample, chunk_rows=1)) == whole, "chunks lose nothing"

    def test_rejects_say_where_and_why(
        self, file_format: Format, sample_input: Path | None
    ) -> None:
        reader, sample = self._reader(file_format, sample_input)
        rejects = [r for c in _read(reader, sample) for r in c.rejects]
        if not rejects:
            pytest.skip("the sample has no bad record: add one to exercise rejects")
        for reject in rejects:
            assert reject.source, "a reject names its source"
            assert reject.location, "a reject says where the record is (line, JSON path)"
            assert reject.code, "a reject has a machine-readable code"
            assert reject.message, "a reject says why, in words"

    # -- writing ---------------------------------------------------------------------------

    def test_writes_scored_batches(
        self,
        file_format: Format,
        sample_input: Path | None,
        format_host: PluginHost,
        tmp_path: Path,
    ) -> None:
        if not isinstance(file_format, OutputFormat):
            pytest.skip("not an output format")
        batches: list[RecordBatch] = []
        if isinstance(file_format, InputFormat) and sample_input is not None:
            batches = [b for c in _read(file_format, sample_input) for b in c.batches]
        batches = batches or [_synthetic_batch(format_host)]
        ext = file_format.extensions[0] if file_format.extensions else ".out"
        target = tmp_path / f"conformance-output{ext}"
        writer = file_format.open_writer(target, WriteOptions())
        for batch in batches:
            scores = scoring.score_many(
                batch.instrument, batch.codes, provider="raw-sum", host=format_host
            )
            writer.write(batch, scores, {})
        writer.close()
        assert target.is_file(), "the writer wrote its target"
        assert target.stat().st_size > 0
