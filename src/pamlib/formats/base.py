"""The contract of a format plugin, and the columnar records that pass through it.

Readers turn a file into :class:`ReadChunk` objects: valid records as columns
(:class:`RecordBatch`, one per instrument) plus every :class:`Reject` with where it came from.
Writers take each batch back with its :class:`~pamlib.scoring.provider.BatchScores`. Chunks keep
memory flat however large the file; counts reconcile: ``n_read == valid + rejected``.

A reader is handed the plugin host it reads for (``read(source, options, *, host=None)``), so
the instruments it recognises are that host's, not the process-wide host's. Readers written
before the host was passed take only ``(source, options)``; :func:`read_input` calls each kind
the way its signature allows.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.instruments import Instrument

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.plugins import PluginHost
    from pamlib.scoring.provider import BatchScores

__all__ = [
    "Format",
    "InputFormat",
    "OutputFormat",
    "PreparedWrite",
    "ReadChunk",
    "ReadOptions",
    "RecordBatch",
    "Reject",
    "ResultWriter",
    "Target",
    "TextColumn",
    "WriteOptions",
    "host_instruments",
    "read_input",
    "reader_host",
    "text_values",
]

#: A column of text, one ``str`` per record: a NumPy array (``str`` or ``object`` dtype) or an
#: Arrow string array. Arrow-backed readers keep text in Arrow memory because converting a million
#: strings to NumPy and back costs more than validating and scoring them.
TextColumn: TypeAlias = "npt.NDArray[np.str_] | npt.NDArray[np.object_] | Any"

#: Where a writer writes: a path, or an open binary stream (standard output).
Target: TypeAlias = "str | os.PathLike[str] | IO[bytes]"


def text_values(column: TextColumn) -> list[str]:
    """A :data:`TextColumn` as a list of ``str`` (for the one-record-at-a-time code paths)."""
    if isinstance(column, np.ndarray):
        return [str(v) for v in column.tolist()]
    return [str(v) for v in column.to_pylist()]


@attrs.frozen
class Reject:
    """One input record that could not be used, where it was, and why.

    ``location`` is what a person needs to find it: ``line 17`` (the physical line where the
    record starts, header = line 1) or a JSON path such as ``$.entry[3].resource.item[2]``;
    line-oriented readers also set ``line``. ``code`` is stable and machine-readable (see the
    format's documentation); ``message`` names every problem found, never an identifier.
    ``fields`` are the original values by source column and ``record`` the raw text where the
    record could not be split into fields — both for the rejects file only, never for logs.
    """

    source: str
    location: str
    code: str
    message: str
    fields: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    line: int | None = None
    record: str = attrs.field(default="", repr=False)


@attrs.frozen
class RecordBatch:
    """Valid assessments of one instrument, as columns of equal length.

    ``patient_id`` and ``nhs_number`` hold ``""`` where absent (never both); the NHS number is
    normalised (ten digits). ``codes`` has shape ``(n, instrument.n_items)`` with the column codes
    of :mod:`pamlib.responses`. ``extras`` are any other input columns, passed through to the
    output. Where each record came from is ``lines`` (physical start lines, for line-oriented
    sources; row keys for tables, where ``unit`` is ``row``) or ``locations`` (JSON paths and
    the like); see :meth:`location`.
    """

    instrument: Instrument
    assessment_id: TextColumn = attrs.field(eq=False)
    patient_id: TextColumn = attrs.field(eq=False, repr=False)
    nhs_number: TextColumn = attrs.field(eq=False, repr=False)
    assessed_on: npt.NDArray[np.datetime64] = attrs.field(eq=False)
    site: TextColumn = attrs.field(eq=False)
    codes: npt.NDArray[np.int8] = attrs.field(eq=False)
    locations: TextColumn | None = attrs.field(default=None, eq=False)
    extras: Mapping[str, TextColumn] = attrs.field(factory=dict, eq=False, repr=False)
    lines: npt.NDArray[np.int64] | None = attrs.field(default=None, eq=False)
    source: str = ""
    unit: str = "line"

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def location(self, i: int) -> str:
        """Where record ``i`` came from, in the form :attr:`Reject.location` uses."""
        if self.lines is not None:
            return f"{self.unit} {int(self.lines[i])}"
        if self.locations is not None:
            return text_values(self.locations[i : i + 1])[0]
        return f"record {i + 1}"

    def assessments(self) -> list[Assessment]:
        """The records as :class:`~pamlib.assessment.Assessment` objects, in batch order: the
        object view of the same columns (unanswered items left out, ``extras`` as attributes)."""
        from pamlib.assessment import Assessment
        from pamlib.identity import Patient
        from pamlib.responses import UNANSWERED_CODE, Response

        items = self.instrument.items
        ids = text_values(self.assessment_id)
        pids = text_values(self.patient_id)
        nhs = text_values(self.nhs_number)
        sites = text_values(self.site)
        extras = {name: text_values(column) for name, column in self.extras.items()}
        days = self.assessed_on.astype("datetime64[D]").tolist()
        return [
            Assessment(
                id=ids[i],
                patient=Patient(pids[i] or None, nhs_number=nhs[i] or None),
                instrument=self.instrument,
                assessed_on=days[i],
                responses={
                    item: Response(code)
                    for item, code in zip(items, row, strict=True)
                    if code != UNANSWERED_CODE
                },
                site=sites[i],
                attributes={name: values[i] for name, values in extras.items()},
            )
            for i, row in enumerate(self.codes.tolist())
        ]


@attrs.frozen
class ReadChunk:
    """What a reader produced from one slice of its input.

    ``extra_columns`` names the pass-through columns every batch of this source carries, in
    source order, and ``source_columns`` the source's own column names (for the rejects file);
    both are the same in every chunk of one source, so a writer can be opened from the first
    chunk even when it holds no valid record. ``progress`` is the share of the input consumed so
    far (0–1), where the reader can tell. Counts reconcile:
    ``n_read == n_valid + len(rejects) + n_blank``.
    """

    batches: tuple[RecordBatch, ...]
    rejects: tuple[Reject, ...]
    n_read: int
    extra_columns: tuple[str, ...] = ()
    source_columns: tuple[str, ...] = ()
    progress: float | None = None
    #: Records of ``n_read`` that hold nothing (only delimiters and whitespace): skipped, and
    #: counted apart in the reconciliation, never rejected.
    n_blank: int = 0

    @property
    def n_valid(self) -> int:
        return sum(len(b) for b in self.batches)


def _frozenset(values: Sequence[str] | frozenset[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class ReadOptions:
    """How to read: the column mapping, date order, chunk size, strictness.

    ``mapping`` renames a file's columns to canonical ones and maps foreign item ids (a FHIR
    ``linkId``, a spreadsheet header) to pamlib item ids; ``drop`` names source columns to leave
    out of the output; ``answer_labels`` adds answer spellings (label → ``1``–``4`` or ``NA``)
    and ``instrument_aliases`` instrument spellings (alias → instrument id). ``instrument`` is
    used where a record names none. ``engine`` picks an implementation where a format has more
    than one (the CSV format has one: ``auto`` and ``arrow`` name it, ``python`` is refused since
    its second reader was removed). ``threads`` is how many threads a reader may use (the CSV
    reader may split the next block while the last one is checked). Formats document what else
    they accept in ``settings``.
    """

    mapping: Mapping[str, str] = attrs.field(factory=dict)
    instrument: str | None = None
    day_first: bool = True
    chunk_rows: int = 65_536
    strict: bool = False
    settings: Mapping[str, object] = attrs.field(factory=dict)
    drop: frozenset[str] = attrs.field(factory=frozenset, converter=_frozenset)
    answer_labels: Mapping[str, str] = attrs.field(factory=dict)
    instrument_aliases: Mapping[str, str] = attrs.field(factory=dict)
    engine: str = "auto"
    threads: int = 1


@attrs.frozen
class WriteOptions:
    """How to write: extra columns after the standard ones, and format-specific settings.

    ``extra_columns`` are written in order after the standard columns; each is looked up first in
    the ``extra`` mapping given to :meth:`ResultWriter.write`, then as ``site``, then in the
    batch's :attr:`RecordBatch.extras`. ``score_decimals`` is how many decimals the 0–100 score
    is written with where the format writes text.
    """

    extra_columns: tuple[str, ...] = ()
    settings: Mapping[str, object] = attrs.field(factory=dict)
    score_decimals: int = 1


class ResultWriter(Protocol):
    """An open output; ``write`` is called once per scored batch, ``close`` once at the end.

    Batches arrive in input order. ``extra`` holds columns the caller computed (such as
    ``nhs_number`` when asked for), keyed by the names in :attr:`WriteOptions.extra_columns`.
    ``abort`` is called instead of ``close`` when the run fails, to remove partial output.

    A writer may also offer ``prepare(batch, scores, extra)``, with the arguments of ``write``,
    returning a callable of no arguments: ``prepare`` does the work of ``write`` that touches no
    output (turning values into text) and the callable the writing. A run on several threads
    then prepares a batch on the thread that scored it while the one before is written on
    another: the callables are called in the order ``prepare`` was, each batch's after its own
    ``prepare`` but perhaps after later batches' ``prepare`` too (see :class:`PreparedWrite`).
    """

    def write(
        self, batch: RecordBatch, scores: BatchScores, extra: Mapping[str, TextColumn]
    ) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class PreparedWrite(Protocol):
    """What a :class:`ResultWriter` that can prepare its batches also has.

    ``prepare(batch, scores, extra)`` followed by calling what it returned writes what
    ``write(batch, scores, extra)`` writes, byte for byte. ``prepare`` must not touch the output:
    several batches may be prepared before the first is written.
    """

    def prepare(
        self, batch: RecordBatch, scores: BatchScores, extra: Mapping[str, TextColumn]
    ) -> Callable[[], None]: ...


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
    def read(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        *,
        host: PluginHost | None = None,
    ) -> Iterator[ReadChunk]:
        """Yield chunks until the input is exhausted; never drop a record silently.

        ``source`` may be ``"-"`` for standard input where the format supports it. ``host`` is
        the plugin host the caller scores with: look instruments (and anything else
        registered) up in it, never in the process-wide host, which may not know them
        (:func:`host_instruments` does this). ``None`` means a direct call with no host: use
        the process-wide one. A reader that looks nothing up may leave ``host`` out of its
        signature; it is then called with ``(source, options)`` (see :func:`read_input`).
        """
        ...


def _takes_host(read: Callable[..., object]) -> bool:
    """Whether ``read`` accepts a ``host`` keyword (by name, or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(read).parameters
    except (TypeError, ValueError):  # no signature to read (some C callables): the old contract
        return False
    found = parameters.get("host")
    if found is not None:
        return found.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def read_input(
    fmt: InputFormat,
    source: str | os.PathLike[str],
    options: ReadOptions,
    *,
    host: PluginHost | None,
) -> Iterator[ReadChunk]:
    """``fmt.read(source, options, host=host)``, or ``fmt.read(source, options)`` for a reader
    whose signature takes no ``host`` (the contract before readers were given one).

    The signature is inspected rather than a ``TypeError`` caught: a ``TypeError`` raised by
    the reader itself must surface as the reader's failure, not as a retry without the host.

    A plugin's reader (a format not defined in pamlib) that raises anything but pamlib's own
    errors, ``OSError`` or an interrupt fails as a :class:`~pamlib.errors.FormatError` naming
    the format, the exception's type and where it was raised: never its text, nor chained to
    it, for a reader holds the input's cells and its message may quote them.
    """
    if type(fmt).__module__.partition(".")[0] == "pamlib":
        if _takes_host(fmt.read):
            return fmt.read(source, options, host=host)
        return fmt.read(source, options)
    return _contained(fmt, source, options, host)


def _contained(
    fmt: InputFormat,
    source: str | os.PathLike[str],
    options: ReadOptions,
    host: PluginHost | None,
) -> Iterator[ReadChunk]:
    from pamlib.errors import FormatError, PamlibError
    from pamlib.plugins import describe_failure

    chunks: Iterator[ReadChunk] | None = None
    try:
        if _takes_host(fmt.read):
            chunks = iter(fmt.read(source, options, host=host))
        else:
            chunks = iter(fmt.read(source, options))
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            yield chunk
    except (PamlibError, OSError, KeyboardInterrupt, MemoryError, GeneratorExit):
        raise
    except BaseException as exc:  # SystemExit too: a reader must not end the run
        raise FormatError(
            f"the {fmt.name!r} reader (a plugin's) failed: {describe_failure(exc, quote=False)}"
        ) from None
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def reader_host(host: PluginHost | None) -> PluginHost:
    """``host``, or the process-wide host for a reader called directly with none: a format's
    ``read`` is a public entry point, and this is its one default."""
    if host is None:
        from pamlib.plugins import get_host

        return get_host()
    return host


def host_instruments(host: PluginHost | None) -> list[Instrument]:
    """Every instrument ``host`` has registered (see :func:`reader_host` for ``None``)."""
    return [i for i in reader_host(host).instruments() if isinstance(i, Instrument)]


@runtime_checkable
class OutputFormat(Format, Protocol):
    def open_writer(self, target: Target, options: WriteOptions) -> ResultWriter:
        """Open ``target`` (a path, or a binary stream) for writing scored results."""
        ...
