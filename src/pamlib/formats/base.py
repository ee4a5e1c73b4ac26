"""The contract of a format plugin, and the columnar records that pass through it.

Readers turn a file into :class:`ReadChunk` objects: valid records as columns
(:class:`RecordBatch`, one per instrument) plus every :class:`Reject` with where it came from.
Writers take each batch back with its :class:`~pamlib.scoring.provider.BatchScores`. Chunks keep
memory flat however large the file; counts reconcile: ``n_read == valid + rejected``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.instruments import Instrument

__all__ = [
    "Format",
    "InputFormat",
    "OutputFormat",
    "ReadChunk",
    "ReadOptions",
    "RecordBatch",
    "Reject",
    "ResultWriter",
    "WriteOptions",
]


@attrs.frozen
class Reject:
    """One input record that could not be used, where it was, and why.

    ``location`` is what a person needs to find it: ``line 17`` (the physical line where the
    record starts, header = line 1) or a JSON path such as ``$.entry[3].resource.item[2]``.
    ``fields`` are the original values, for the rejects file only — never for logs or messages.
    """

    source: str
    location: str
    code: str
    message: str
    fields: Mapping[str, str] = attrs.field(factory=dict, repr=False)


@attrs.frozen
class RecordBatch:
    """Valid assessments of one instrument, as columns of equal length.

    ``patient_id`` and ``nhs_number`` hold ``""`` where absent (never both). ``codes`` has shape
    ``(n, instrument.n_items)`` with the column codes of :mod:`pamlib.responses`. ``extras`` are
    any other input columns, passed through to the output. ``locations`` say where each record
    came from, as for :class:`Reject`.
    """

    instrument: Instrument
    assessment_id: npt.NDArray[np.str_] = attrs.field(eq=False)
    patient_id: npt.NDArray[np.str_] = attrs.field(eq=False)
    nhs_number: npt.NDArray[np.str_] = attrs.field(eq=False, repr=False)
    assessed_on: npt.NDArray[np.datetime64] = attrs.field(eq=False)
    site: npt.NDArray[np.str_] = attrs.field(eq=False)
    codes: npt.NDArray[np.int8] = attrs.field(eq=False)
    locations: npt.NDArray[np.str_] = attrs.field(eq=False)
    extras: Mapping[str, npt.NDArray[np.str_]] = attrs.field(factory=dict, eq=False)

    def __len__(self) -> int:
        return int(self.codes.shape[0])


@attrs.frozen
class ReadChunk:
    """What a reader produced from one slice of its input."""

    batches: tuple[RecordBatch, ...]
    rejects: tuple[Reject, ...]
    n_read: int

    @property
    def n_valid(self) -> int:
        return sum(len(b) for b in self.batches)


@attrs.frozen
class ReadOptions:
    """How to read: the column mapping, date order, chunk size, strictness.

    ``mapping`` renames a file's columns to canonical ones and maps foreign item ids (a FHIR
    ``linkId``, a spreadsheet header) to pamlib item ids; formats document what they accept.
    """

    mapping: Mapping[str, str] = attrs.field(factory=dict)
    instrument: str | None = None
    day_first: bool = True
    chunk_rows: int = 65_536
    strict: bool = False
    settings: Mapping[str, object] = attrs.field(factory=dict)


@attrs.frozen
class WriteOptions:
    """How to write: extra columns after the standard ones, and format-specific settings."""

    extra_columns: tuple[str, ...] = ()
    settings: Mapping[str, object] = attrs.field(factory=dict)


class ResultWriter(Protocol):
    """An open output; ``write`` is called once per scored batch, ``close`` once at the end."""

    def write(
        self, batch: RecordBatch, scores: object, extra: Mapping[str, npt.NDArray[np.str_]]
    ) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Format(Protocol):
    """A named file format. Implement :class:`InputFormat`, :class:`OutputFormat`, or both."""

    @property
    def name(self) -> str:
        """Short name used on the command line (``--format NAME``)."""
        ...

    @property
    def extensions(self) -> tuple[str, ...]:
        """File-name endings this format claims, with the dot (``.csv``)."""
        ...

    @property
    def description(self) -> str: ...


@runtime_checkable
class InputFormat(Format, Protocol):
    def read(self, source: str | os.PathLike[str], options: ReadOptions) -> Iterator[ReadChunk]:
        """Yield chunks until the input is exhausted; never drop a record silently."""
        ...


@runtime_checkable
class OutputFormat(Format, Protocol):
    def open_writer(self, target: str | os.PathLike[str], options: WriteOptions) -> ResultWriter:
        """Open ``target`` for writing scored results."""
        ...
