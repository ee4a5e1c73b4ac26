"""Scoring a file end to end: read, check, score, write, and account for every record.

:func:`score_file` is what ``pamlib score`` and ``pamlib demo`` run. It streams the input chunk
by chunk (memory stays flat as files grow), scores each batch through the provider's columnar
API, writes scored rows in input order, writes every rejected record to the rejects file, and
returns counts that reconcile: ``read = scored + not scored + rejected``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs
import numpy as np
import numpy.typing as npt

from pamlib import plugins
from pamlib.errors import ConfigurationError, LicenceError
from pamlib.formats._arrow import pyarrow_module
from pamlib.formats.base import (
    InputFormat,
    OutputFormat,
    ReadChunk,
    ReadOptions,
    RecordBatch,
    Reject,
    ResultWriter,
    Target,
    TextColumn,
    WriteOptions,
    read_input,
)
from pamlib.formats.guard import AtomicTarget, OutputGuard, commit_together, writes_through
from pamlib.formats.output import RejectsWriter, check_input_columns
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost, get_host
from pamlib.scoring.provider import BATCH_ARRAYS, BatchScores, ScoringProvider

if TYPE_CHECKING:
    from pamlib.tables.keys import Pseudonymiser
    from pamlib.tables.scored import ScoredTable

__all__ = [
    "Duplicates",
    "ProviderSelector",
    "ReconciliationError",
    "ScoreRun",
    "ScoreSummary",
    "TableScorer",
    "default_rejects_path",
    "find_input_format",
    "find_output_format",
    "rejects_schema",
    "rejects_table",
    "score_file",
    "score_table",
    "write_rejects",
    "write_scored",
]

#: Picks the provider for an instrument (raising :class:`~pamlib.errors.ScoringError` if none).
ProviderSelector = Callable[[Instrument], ScoringProvider]
#: Called after each chunk with the share of the input read (if known) and records read so far.
ProgressCallback = Callable[[float | None, int], None]


def _shown_source(source: str) -> str:
    from pamlib.formats.encoding import shown_name

    return repr(shown_name(source))


@attrs.frozen
class ScoreSummary:
    """The counts of one run, by outcome, code and reason; and where the files went.

    The repr names the source by its base name, withheld where it holds an NHS number (a
    summary is what gets logged); :attr:`source` is the path as given."""

    source: str = attrs.field(repr=_shown_source)
    n_read: int
    n_scored: int
    n_not_scored: int
    n_rejected: int
    rejected_by_code: Mapping[str, int] = attrs.field(factory=dict)
    not_scored_by_reason: Mapping[str, int] = attrs.field(factory=dict)
    reasons: Mapping[str, str] = attrs.field(factory=dict)
    output: str = ""
    rejects: str = ""
    providers: tuple[str, ...] = ()
    demo: bool = False
    licensed: bool = False
    #: Records that held nothing (only delimiters and whitespace): skipped, never rejected.
    n_blank: int = 0

    @property
    def reconciles(self) -> bool:
        return self.n_read == self.n_scored + self.n_not_scored + self.n_rejected + self.n_blank

    @property
    def reconciliation(self) -> str:
        """``read N = scored S + not scored U + rejected R`` (``+ blank B`` when there were
        blank records)."""
        text = (
            f"read {self.n_read} = scored {self.n_scored} + not scored {self.n_not_scored} "
            f"+ rejected {self.n_rejected}"
        )
        return text + (f" + blank {self.n_blank}" if self.n_blank else "")


def default_rejects_path(source: str | os.PathLike[str], output: Target | None) -> Path:
    """Where rejects go when not told: beside the output (``scored.rejects.csv``), or for
    output to a stream, a device or a pipe (``/dev/stdout``, ``/dev/null``: never a new file
    in ``/dev``), ``<input name>.rejects.csv`` in the current directory."""
    if isinstance(output, (str, os.PathLike)) and not writes_through(output):
        out = Path(output)
        return out.with_name(f"{out.stem}.rejects.csv")
    name = "stdin" if str(source) == "-" else Path(source).stem
    return Path(f"{name}.rejects.csv")


def _by_extension(
    host: PluginHost,
    path: str,
    kind: type[InputFormat] | type[OutputFormat],
) -> str | None:
    """The format of ``kind`` claiming the longest matching extension (``.fhir.json`` beats
    ``.json``). At equal length, for input, the first whose ``accepts(path)`` (an optional
    method: a look at the content) says yes; else the one registered first."""
    lowered = path.lower()
    best: list[tuple[int, str]] = []
    for name, fmt in host.formats().items():
        if not isinstance(fmt, kind):
            continue
        length = max((len(e) for e in fmt.extensions if lowered.endswith(e)), default=0)
        if length:
            best.append((length, name))
    if not best:
        return None
    longest = max(length for length, _ in best)
    names = [name for length, name in best if length == longest]
    if kind is InputFormat and len(names) > 1 and Path(path).is_file():
        formats = host.formats()
        for name in names:
            accepts = getattr(formats[name], "accepts", None)
            if accepts is None or accepts(path):
                return name
    return names[0]


def find_input_format(host: PluginHost, source: str, name: str | None) -> InputFormat:
    """The input format called ``name``, else the one claiming ``source``'s extension (and, where
    several do, accepting its content), else ``csv``."""
    name = name or _by_extension(host, source, InputFormat) or "csv"
    fmt = host.formats().get(name)
    if not isinstance(fmt, InputFormat):
        known = sorted(n for n, f in host.formats().items() if isinstance(f, InputFormat))
        raise ConfigurationError(f"no input format {name!r}; known: {', '.join(known)}")
    return fmt


def find_output_format(host: PluginHost, target: Target | None, name: str | None) -> OutputFormat:
    """The output format called ``name``, else the one claiming the target's extension, else
    ``csv``."""
    if name is None and isinstance(target, (str, os.PathLike)):
        name = _by_extension(host, str(target), OutputFormat)
    name = name or "csv"
    fmt = host.formats().get(name)
    if not isinstance(fmt, OutputFormat):
        known = sorted(n for n, f in host.formats().items() if isinstance(f, OutputFormat))
        raise ConfigurationError(f"no output format {name!r}; known: {', '.join(known)}")
    return fmt


def _take_text(column: TextColumn, rows: npt.NDArray[np.intp]) -> TextColumn:
    if isinstance(column, np.ndarray):
        return column[rows]
    from pamlib.formats._arrow import compute

    return compute().take(column, rows)


def _take_batch(batch: RecordBatch, rows: npt.NDArray[np.intp]) -> RecordBatch:
    return attrs.evolve(
        batch,
        assessment_id=_take_text(batch.assessment_id, rows),
        patient_id=_take_text(batch.patient_id, rows),
        nhs_number=_take_text(batch.nhs_number, rows),
        assessed_on=batch.assessed_on[rows],
        site=_take_text(batch.site, rows),
        codes=batch.codes[rows],
        locations=None if batch.locations is None else _take_text(batch.locations, rows),
        extras={k: _take_text(v, rows) for k, v in batch.extras.items()},
        lines=None if batch.lines is None else batch.lines[rows],
    )


def _take_scores(scores: BatchScores, rows: npt.NDArray[np.intp]) -> BatchScores:
    return attrs.evolve(scores, **{k: getattr(scores, k)[rows] for k in BATCH_ARRAYS})


def _in_input_order(
    parts: list[tuple[RecordBatch, BatchScores]],
) -> Iterator[tuple[RecordBatch, BatchScores]]:
    """Batches of several instruments from one chunk, re-cut into runs in input order."""
    if len(parts) < 2 or any(b.lines is None for b, _ in parts):
        yield from parts
        return
    lines = np.concatenate([b.lines for b, _ in parts if b.lines is not None])
    owner = np.concatenate([np.full(len(b), i) for i, (b, _) in enumerate(parts)])
    local = np.concatenate([np.arange(len(b)) for b, _ in parts])
    order = np.argsort(lines, kind="stable")
    owner, local = owner[order], local[order]
    cuts = np.flatnonzero(np.diff(owner)) + 1
    for run_owner, run_rows in zip(np.split(owner, cuts), np.split(local, cuts), strict=True):
        batch, scores = parts[int(run_owner[0])]
        if run_rows.shape[0] == len(batch):
            yield batch, scores
        else:
            yield _take_batch(batch, run_rows), _take_scores(scores, run_rows)


class ReconciliationError(RuntimeError):
    """A run's counts do not add up: a record was lost or counted twice (a bug in pamlib)."""


class _Scorer:
    """What every run shares, whatever it reads and wherever it writes: one checked provider per
    instrument, scoring in input order, and the counts the summary reconciles."""

    def __init__(self, *, host: PluginHost, select_provider: ProviderSelector) -> None:
        self.host = host
        self.select_provider = select_provider
        self.providers: dict[str, ScoringProvider] = {}
        self.n_read = self.n_scored = self.n_not_scored = self.n_rejected = self.n_blank = 0
        self.rejected_by_code: Counter[str] = Counter()
        self.not_scored_by_reason: Counter[str] = Counter()
        self.reasons: dict[str, str] = {}
        self.demo = False

    def provider(self, instrument: Instrument) -> ScoringProvider:
        """The checked provider for ``instrument``: its licence checked, anything it raises
        turned into a :class:`~pamlib.errors.ScoringError` naming it, its results validated (one
        per row, finite, on the scale, levels consistent)."""
        from pamlib.scoring._selection import CheckedProvider

        provider = self.providers.get(instrument.id)
        if provider is None:
            provider = self.select_provider(instrument)
            if not isinstance(provider, CheckedProvider):
                provider = CheckedProvider(provider, self.host)
            self.providers[instrument.id] = provider
        return provider

    def score(self, batch: RecordBatch) -> BatchScores:
        """Score one batch; results are checked before observers see them and anything is
        written. An observer's failure is a warning, not the run's end."""
        from pamlib.errors import ProviderResultError

        try:
            scores = self.provider(batch.instrument).score_batch(batch.instrument, batch.codes)
        except ProviderResultError as exc:
            if exc.row is None:
                raise
            raise exc.at(batch.location(exc.row)) from None
        self.host.batch_scored(batch.instrument, scores)
        return scores

    def chunk(self, chunk: ReadChunk) -> list[tuple[RecordBatch, BatchScores]]:
        """Score a chunk's batches and count them; the scored runs in input order."""
        parts = [(batch, self.score(batch)) for batch in chunk.batches if len(batch)]
        for _, scores in parts:
            scored = np.asarray(scores.scored, dtype=np.bool_)
            n_scored = int(scored.sum())
            self.n_scored += n_scored
            self.n_not_scored += len(scores) - n_scored
            self.demo = self.demo or scores.demo
            if n_scored < len(scores):
                codes, counts = np.unique(
                    np.asarray(scores.reason_code)[~scored].astype(str), return_counts=True
                )
                for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
                    self.not_scored_by_reason[code] += count
                    self.reasons.setdefault(code, scores.reasons.get(code, code))
        self.n_rejected += len(chunk.rejects)
        self.rejected_by_code.update(r.code for r in chunk.rejects)
        self.n_read += chunk.n_read
        self.n_blank += chunk.n_blank
        return list(_in_input_order(parts))

    def decimals(self, scores: BatchScores | None) -> int:
        """How many decimals scores are written with: as the provider rounded them, else as
        their cut-point set says, else one."""
        if scores is not None and scores.score_decimals is not None:
            return scores.score_decimals
        if scores is not None and scores.cutpoint_set:
            cutpoints = self.host.cutpoint_sets()
            if scores.cutpoint_set in cutpoints:
                return cutpoints.get(scores.cutpoint_set).decimals
        return 1

    def summary(self, source: str, *, output: str = "", rejects: str = "") -> ScoreSummary:
        """The run's counts; raises :class:`ReconciliationError` if they do not add up."""
        summary = ScoreSummary(
            source=source,
            n_read=self.n_read,
            n_scored=self.n_scored,
            n_not_scored=self.n_not_scored,
            n_rejected=self.n_rejected,
            rejected_by_code=dict(sorted(self.rejected_by_code.items())),
            not_scored_by_reason=dict(sorted(self.not_scored_by_reason.items())),
            reasons=dict(sorted(self.reasons.items())),
            output=output,
            rejects=rejects,
            providers=tuple(sorted({p.id for p in self.providers.values()})),
            demo=self.demo,
            licensed=bool(self.providers) and all(p.licence for p in self.providers.values()),
            n_blank=self.n_blank,
        )
        if not summary.reconciles:
            raise ReconciliationError(f"the counts do not reconcile: {summary.reconciliation}")
        return summary


class _Sink(Protocol):
    """Where a run's scored runs and rejects go (files, or tables in memory)."""

    def prepare(
        self, chunk: ReadChunk, parts: list[tuple[RecordBatch, BatchScores]]
    ) -> Callable[[], None]:
        """Do what writing ``chunk`` takes that touches no output, on the thread that scored
        it; return the rest, which is called in input order on the writing thread."""
        ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


def _drive(
    chunks: Iterator[ReadChunk],
    scorer: _Scorer,
    sink: _Sink,
    progress: ProgressCallback | None = None,
    threads: int = 1,
) -> None:
    """The one loop every run goes through: read, check, score, write; finish or abort.

    With more than one thread, chunks are read (and checked) on one thread and written on
    another while this one scores them and makes their output's text: the stages overlap, each
    in input order (see :mod:`pamlib._workers`). Making the text here rather than where it is
    written balances the two: on two cores, writing (text, Arrow's CSV writer and the file)
    was the longest stage and the scoring waited on it."""
    if threads > 1:
        _drive_overlapped(chunks, scorer, sink, progress)
        return
    try:
        for chunk in chunks:
            sink.prepare(chunk, scorer.chunk(chunk))()
            if progress is not None:
                progress(chunk.progress, scorer.n_read)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the reader's files, even when this run stopped early


def _drive_overlapped(
    chunks: Iterator[ReadChunk],
    scorer: _Scorer,
    sink: _Sink,
    progress: ProgressCallback | None,
) -> None:
    from pamlib._workers import Ahead, Behind

    ahead = Ahead(chunks)
    behind: Behind[Callable[[], None]] | None = None
    try:
        behind = Behind(_call)
        for chunk in ahead:
            behind.put(sink.prepare(chunk, scorer.chunk(chunk)))
            if progress is not None:
                progress(chunk.progress, scorer.n_read)
        behind.finish()
        sink.finish()
    except BaseException:
        if behind is not None:
            behind.stop()  # nothing is written once the output is discarded
        sink.abort()
        raise
    finally:
        ahead.close()  # the reader's files, closed on its thread


def _call(write: Callable[[], None]) -> None:
    write()


def _prepared(
    writer: ResultWriter, batch: RecordBatch, scores: BatchScores, extra: dict[str, TextColumn]
) -> Callable[[], None]:
    """What writes ``batch``: its text made now where the writer can do that
    (:class:`~pamlib.formats.base.PreparedWrite`), else all of it when called."""
    prepare = getattr(writer, "prepare", None)
    if callable(prepare):
        write: Callable[[], None] = prepare(batch, scores, extra)
        return write
    return functools.partial(writer.write, batch, scores, extra)


def _identity_columns(keep: bool, pseudonymiser: Pseudonymiser | None) -> tuple[str, ...]:
    """The identity columns written after the standard ones: the NHS number where kept, its
    pseudonym where a key was given."""
    return (("nhs_number",) if keep else ()) + (("nhs_pseudonym",) if pseudonymiser else ())


def _identity_values(
    batch: RecordBatch, keep: bool, pseudonymiser: Pseudonymiser | None
) -> dict[str, TextColumn]:
    values: dict[str, TextColumn] = {}
    if keep:
        values["nhs_number"] = batch.nhs_number
    if pseudonymiser is not None:
        values["nhs_pseudonym"] = pseudonymiser(batch.nhs_number)
    return values


class _FileSink:
    """The scored output through an output format's writer, the rejects through the rejects
    writer; both published only when complete: the rejects first, the scored output last."""

    def __init__(
        self,
        scorer: _Scorer,
        *,
        output_format: OutputFormat,
        output: AtomicTarget,
        rejects: AtomicTarget,
        keep_nhs_number: bool,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        self.scorer = scorer
        self.pseudonymiser = pseudonymiser
        self.output_format = output_format
        self.output = output
        self.rejects_target = rejects
        self.keep_nhs_number = keep_nhs_number
        self.writer: ResultWriter | None = None
        self.rejects: RejectsWriter | None = None
        self.extra_columns: tuple[str, ...] = ()

    def open_writer(self, scores: BatchScores | None) -> ResultWriter:
        if self.writer is None:
            extra = _identity_columns(self.keep_nhs_number, self.pseudonymiser)
            extra += self.extra_columns
            check_input_columns(extra)
            options = WriteOptions(extra_columns=extra, score_decimals=self.scorer.decimals(scores))
            self.writer = self.output_format.open_writer(self.output.stream, options)
        return self.writer

    def prepare(
        self, chunk: ReadChunk, parts: list[tuple[RecordBatch, BatchScores]]
    ) -> Callable[[], None]:
        """Open the outputs at the first chunk and make each run's text; return what writes
        them: the scored rows, then the chunk's rejects."""
        if self.rejects is None:
            self.extra_columns = chunk.extra_columns
            self.rejects = RejectsWriter(self.rejects_target.stream, chunk.source_columns)
        rejects = self.rejects
        writes = []
        for run, scores in parts:
            extra = _identity_values(run, self.keep_nhs_number, self.pseudonymiser)
            batch = run
            if not self.keep_nhs_number:
                # no writer sees a number the user did not ask to keep (FHIR Patients too)
                batch = attrs.evolve(run, nhs_number=np.full(len(run), "", dtype=object))
            writes.append(_prepared(self.open_writer(scores), batch, scores, extra))

        def write() -> None:
            for each in writes:
                each()
            rejects.write(chunk.rejects)

        return write

    def finish(self) -> None:
        rejects = self.rejects or RejectsWriter(self.rejects_target.stream, ())
        self.rejects = rejects
        self.open_writer(None).close()
        rejects.close()
        commit_together([self.rejects_target, self.output])

    def abort(self) -> None:
        """Drop both files; whatever was under their names before stays as it was."""
        try:
            if self.writer is not None:
                abort = getattr(self.writer, "abort", None)
                if abort is not None:
                    with contextlib.suppress(Exception):
                        abort()
            if self.rejects is not None:
                with contextlib.suppress(Exception):
                    self.rejects.abort()
        finally:
            self.output.discard()
            self.rejects_target.discard()


def _name(target: Target, stream: str) -> str:
    return str(target) if isinstance(target, (str, os.PathLike)) else stream


def score_file(
    source: str | os.PathLike[str],
    *,
    select_provider: ProviderSelector,
    output: Target,
    rejects: Target | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    options: ReadOptions | None = None,
    keep_nhs_number: bool = False,
    pseudonymiser: Pseudonymiser | None = None,
    host: PluginHost | None = None,
    progress: ProgressCallback | None = None,
    guard: OutputGuard | None = None,
    threads: int | None = None,
) -> ScoreSummary:
    """Score every record of ``source`` and write the results and the rejects.

    ``output`` and ``rejects`` are paths (written atomically: they appear complete or not at
    all) or binary streams; ``rejects`` defaults to :func:`default_rejects_path`. Before
    anything is read, both go through an :class:`~pamlib.formats.guard.OutputGuard` (``guard``,
    when the caller has more files to register, else a new one): an output that is the same
    file as the input or as the other output, or a directory, raises
    :class:`~pamlib.formats.guard.OutputRefusedError`, and each output is locked for the run.
    The output format's writer is handed an open binary stream. Formats are
    found by name or by file extension among the registered ones. ``keep_nhs_number`` adds the
    normalised NHS number as an ``nhs_number`` column; without it no NHS number reaches the
    scored output. ``pseudonymiser`` adds its keyed pseudonym as ``nhs_pseudonym`` (see
    :mod:`pamlib.tables.keys`), which links a person's rows without the number. On any error,
    partial output is removed and the error raised.

    ``threads`` (default: the cores available) lets reading, scoring and writing overlap on
    that many threads; the output is the same bytes with any number.
    """
    from pamlib._workers import resolve_threads

    host = host or get_host()
    n_threads = resolve_threads(threads)
    options = attrs.evolve(options or ReadOptions(), threads=n_threads)
    reader = find_input_format(host, str(source), input_format)
    writer_format = find_output_format(host, output, output_format)
    rejects_target = rejects if rejects is not None else default_rejects_path(source, output)
    with contextlib.ExitStack() as stack:
        files = guard if guard is not None else stack.enter_context(OutputGuard())
        files.input(source, "the input")
        files.output(output, "the scored output")
        files.output(
            rejects_target,
            "the rejects file"
            if rejects is not None
            else "the default rejects file (named after the output; set one with --rejects)",
        )
        scorer = _Scorer(host=host, select_provider=select_provider)
        sink = _FileSink(
            scorer,
            output_format=writer_format,
            output=files.open(output),
            rejects=files.open(rejects_target),
            keep_nhs_number=keep_nhs_number,
            pseudonymiser=pseudonymiser,
        )
        chunks = read_input(reader, source, options, host=host)
        _drive(chunks, scorer, sink, progress, n_threads)
    return scorer.summary(
        "<stdin>" if str(source) == "-" else str(source),
        output=_name(output, "<stdout>"),
        rejects=_name(rejects_target, "<stream>"),
    )


# -- tables in memory ----------------------------------------------------------------------------


def rejects_schema() -> Any:
    """The Arrow schema of :attr:`ScoreRun.rejects`: one row per rejected record.

    ``source`` is the input's name; ``row`` the record's line (files) or row key (tables),
    null where it has neither; ``location`` as a person reads it (``line 17``, ``row 3``, a
    JSON path); ``code`` and ``message`` as in the rejects file; ``fields`` the original values
    by source column and ``record`` the raw text where the record could not be split.
    """
    pa = pyarrow_module()
    return pa.schema(
        [
            ("source", pa.string()),
            ("row", pa.int64()),
            ("location", pa.string()),
            ("code", pa.string()),
            ("message", pa.string()),
            ("fields", pa.map_(pa.string(), pa.string())),
            ("record", pa.string()),
        ]
    )


def rejects_table(rejects: Sequence[Reject]) -> Any:
    """Rejects as an Arrow table in :func:`rejects_schema`."""
    from pamlib.formats._arrow import LARGE_CONVERSION, from_numpy, text_array

    pa = pyarrow_module()
    if len(rejects) >= LARGE_CONVERSION:  # pyarrow's conversion: faster, and less memory
        return pa.table(
            {
                "source": [r.source for r in rejects],
                "row": [r.line for r in rejects],
                "location": [r.location for r in rejects],
                "code": [r.code for r in rejects],
                "message": [r.message for r in rejects],
                "fields": [list(r.fields.items()) for r in rejects],
                "record": [r.record for r in rejects],
            },
            schema=rejects_schema(),
        )
    # A few: built from buffers, as pyarrow's conversion imports pandas (a third of a second).
    rows = np.array([0 if r.line is None else r.line for r in rejects], dtype=np.int64)
    no_row = np.array([r.line is None for r in rejects], dtype=np.bool_)
    sizes = np.fromiter((len(r.fields) for r in rejects), np.int32, len(rejects))
    offsets = np.zeros(len(rejects) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    fields = pa.MapArray.from_arrays(
        from_numpy(offsets),
        text_array([k for r in rejects for k in r.fields]),
        text_array([v for r in rejects for v in r.fields.values()]),
    )
    columns = [
        text_array([r.source for r in rejects]),
        from_numpy(rows, mask=no_row),
        text_array([r.location for r in rejects]),
        text_array([r.code for r in rejects]),
        text_array([r.message for r in rejects]),
        fields,
        text_array([r.record for r in rejects]),
    ]
    return pa.Table.from_arrays(columns, schema=rejects_schema())


class _MemorySink:
    """Scored runs as typed Arrow tables and rejects as Arrow tables, kept in memory.

    Each chunk's rejects become a table as they arrive: a file of nothing but rejects is held
    as columns, not as one object (and one dictionary of fields) per record. The normalised
    NHS number is kept beside the table, for linking a person's assessments, and becomes a
    column only when the caller asks to keep it.
    """

    def __init__(
        self,
        scorer: _Scorer,
        *,
        keep_nhs_number: bool,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        self.scorer = scorer
        self.keep_nhs_number = keep_nhs_number
        self.pseudonymiser = pseudonymiser
        self.source_columns: tuple[str, ...] = ()
        self.tables: list[Any] = []
        self.nhs_numbers: list[Any] = []
        self.rejects: list[Any] = []
        self.options: WriteOptions | None = None
        self.extra_columns: tuple[str, ...] = ()

    def prepare(
        self, chunk: ReadChunk, parts: list[tuple[RecordBatch, BatchScores]]
    ) -> Callable[[], None]:
        """All of the work on the writing thread: the typed tables are made there, beside the
        scoring of the next chunk."""
        return functools.partial(self.write, chunk, parts)

    def write(self, chunk: ReadChunk, parts: list[tuple[RecordBatch, BatchScores]]) -> None:
        from pamlib.formats._arrow import to_arrow_text
        from pamlib.formats.output import typed_table

        self.extra_columns = chunk.extra_columns
        self.source_columns = chunk.source_columns
        for batch, scores in parts:
            extra = _identity_values(batch, self.keep_nhs_number, self.pseudonymiser)
            self.tables.append(typed_table(batch, scores, extra, self.write_options(scores)))
            self.nhs_numbers.append(to_arrow_text(batch.nhs_number))
        if chunk.rejects:
            self.rejects.append(rejects_table(chunk.rejects))

    def write_options(self, scores: BatchScores | None) -> WriteOptions:
        if self.options is None:
            extra = _identity_columns(self.keep_nhs_number, self.pseudonymiser)
            extra += self.extra_columns
            check_input_columns(extra)  # a located problem, as from a file, not pyarrow's error
            self.options = WriteOptions(
                extra_columns=extra, score_decimals=self.scorer.decimals(scores)
            )
        return self.options

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        self.tables.clear()
        self.nhs_numbers.clear()
        self.rejects.clear()

    def table(self) -> Any:
        """Every scored row, in input order, in one table."""
        from pamlib.formats.output import typed_schema

        pa = pyarrow_module()
        schema = typed_schema(self.write_options(None).extra_columns)
        if not self.tables:
            return schema.empty_table()
        return pa.concat_tables(self.tables).cast(schema)

    def all_rejects(self) -> Any:
        """Every rejected record, in input order, in one table (:func:`rejects_schema`)."""
        pa = pyarrow_module()
        return pa.concat_tables(self.rejects) if self.rejects else rejects_table(())

    def nhs_number(self) -> Any:
        pa = pyarrow_module()
        return pa.concat_arrays(self.nhs_numbers) if self.nhs_numbers else pa.array([], pa.string())


@attrs.frozen(eq=False)
class ScoreRun:
    """What scoring a table gave: the scored rows, the rejected records, and the counts.

    ``scored`` holds one row per record that passed the checks, scored or not, in input order
    (a :class:`~pamlib.tables.scored.ScoredTable`: its NHS numbers link a person's rows but are
    a column only when asked for); ``rejects`` one row per record that did not
    (:func:`rejects_schema`); ``summary`` the counts, which always reconcile:
    ``read = scored + not scored + rejected``.
    """

    scored: ScoredTable = attrs.field(repr=False)
    rejects: Any = attrs.field(repr=False)
    summary: ScoreSummary
    #: The source's own column names, in order (for a rejects file).
    source_columns: tuple[str, ...] = ()
    #: How many decimals the scores were rounded to (for writing them as text).
    score_decimals: int = 1
    #: The files the run read (:meth:`TableScorer.score_source`): no writer of the run's
    #: results may write over one of them.
    inputs: tuple[str, ...] = attrs.field(default=(), repr=False)

    def __repr__(self) -> str:
        return f"ScoreRun({self.summary.reconciliation})"


def _scored_table(table: Any, nhs_number: Any) -> ScoredTable:
    """The scored rows as the run's result, the NHS number held beside them for linking, as
    the Arrow text it is (a Python string a row would take some sixty bytes)."""
    from pamlib.tables.scored import ScoredTable

    return ScoredTable(table, nhs_number=nhs_number)


#: How repeated assessment ids are found: across every batch the scorer sees, from a mask the
#: caller gives with each batch, or not at all.
Duplicates = Literal["track", "external", "off"]


def _check_arguments(
    *,
    instrument: object,
    day_first: object,
    keep_nhs_number: object,
    pseudonymiser: object,
    options: object,
    host: object,
    mapping: object,
) -> None:
    """A scorer's arguments of the wrong kind, said plainly before any is used: a truthy
    ``"no"`` for ``keep_nhs_number`` would add the NHS numbers to the output."""
    wrong = []
    if pseudonymiser is not None:
        from pamlib.tables.keys import Pseudonymiser

        if not isinstance(pseudonymiser, Pseudonymiser):
            kind = type(pseudonymiser).__name__
            wrong.append(f"pseudonymiser must be a Pseudonymiser, not a {kind}")
    for name, value, kinds, what in (
        ("instrument", instrument, (str, type(None)), "an instrument's id"),
        ("day_first", day_first, (bool, type(None)), "True or False"),
        ("keep_nhs_number", keep_nhs_number, (bool,), "True or False"),
        ("options", options, (ReadOptions, type(None)), "ReadOptions"),
        ("host", host, (PluginHost, type(None)), "a PluginHost"),
    ):
        if not isinstance(value, kinds):
            wrong.append(f"{name} must be {what}, not a {type(value).__name__}")
    if mapping is not None and not isinstance(mapping, str | os.PathLike):
        pairs = mapping.items() if isinstance(mapping, Mapping) else None
        if pairs is None or not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
            wrong.append("mapping must be a mapping file's path or a mapping of column names")
    if wrong:
        raise ConfigurationError("; ".join(wrong))


class TableScorer:
    """Scores tables batch after batch with one configuration: what a service or a distributed
    job builds once and reuses.

    ``provider`` and ``calibration`` choose the provider as :func:`pamlib.select_provider` does
    (by name, or ``rasch`` bound to the calibration, or the single licensed one);
    ``mapping`` is a mapping file (path) or ``{source column: pamlib column}``; ``instrument``
    is used where a row names none; ``day_first`` says how ``03/04/2024`` is read.
    ``duplicates`` says how repeated assessment ids are found (:data:`Duplicates`); ``row_key``
    names an integer column that locates rows (else their position). ``keep_nhs_number`` adds
    the normalised NHS number as a column; without it the number is used only to link a
    person's assessments and is in no column. ``pseudonymiser`` adds its keyed pseudonym
    (``nhs_pseudonym``, see :mod:`pamlib.tables.keys`). ``threads`` (default: the cores
    available) lets reading, scoring and collecting the rows of a table or file of several
    batches overlap; the result is the same with any number.

    Each call to :meth:`score` continues the same run: row positions and the ids seen carry
    over, so a table scored in parts gives what it gives whole; every batch must have the same
    columns. That state makes a scorer one stream's: calls from several threads take turns
    (each holds the scorer until its run is done, so no repeated id slips between two), and
    :func:`score_table` (or a new scorer) is for unrelated tables.
    """

    def __init__(
        self,
        *,
        provider: str | None = None,
        calibration: Any = None,
        mapping: str | os.PathLike[str] | Mapping[str, str] | None = None,
        instrument: str | None = None,
        day_first: bool | None = None,
        duplicates: Duplicates = "track",
        row_key: str | None = None,
        keep_nhs_number: bool = False,
        pseudonymiser: Pseudonymiser | None = None,
        source: str = "table",
        options: ReadOptions | None = None,
        host: PluginHost | None = None,
        threads: int | None = None,
    ) -> None:
        from pamlib._workers import resolve_threads

        _check_arguments(
            instrument=instrument,
            day_first=day_first,
            keep_nhs_number=keep_nhs_number,
            pseudonymiser=pseudonymiser,
            options=options,
            host=host,
            mapping=mapping,
        )
        self.host = host or get_host()
        self.threads = resolve_threads(threads)
        self._threads_asked = threads  # a copy sent elsewhere counts that machine's cores
        from pamlib.formats.layout import with_mapping

        options = with_mapping(options or ReadOptions(), mapping)
        if instrument is not None:
            options = attrs.evolve(options, instrument=instrument)
        if day_first is not None:
            options = attrs.evolve(options, day_first=day_first)
        if isinstance(calibration, (str, os.PathLike)):
            from pamlib.scoring.calibration import load_calibration

            # read once, with this host's instruments; pickles by reference and hash
            calibration = load_calibration(calibration, host=self.host)
        self.options = options
        self.provider_name = provider
        self.calibration = calibration
        self.keep_nhs_number = keep_nhs_number
        self.pseudonymiser = pseudonymiser
        self.source = source
        self.row_key = row_key
        self.duplicates: Duplicates = duplicates
        # the process-wide host (if built) pickles as itself, never built here to compare
        self._default_host = host is None or host is plugins._default_host
        self._scorer = _Scorer(host=self.host, select_provider=self._select)
        self._reader = self._new_reader()
        self._turn = threading.RLock()  # one run at a time: the ids seen are the stream's
        registry = self.host.instruments()
        if options.instrument is not None and options.instrument in registry:
            self._scorer.provider(registry.get(options.instrument))  # fail now if none fits

    def _new_reader(self) -> Any:
        from pamlib.formats.tables import TableReader

        return TableReader(
            self.options,
            tuple(self.host.instruments()),
            source=self.source,
            row_key=self.row_key,
            duplicates=self.duplicates,
        )

    def new_run(self, *, source: str | None = None) -> TableScorer:
        """A scorer with this one's configuration and the providers it chose (not chosen
        again: that costs milliseconds), starting a new run — no ids seen, rows counted from
        1: what a service scoring independent requests uses for each. ``source`` renames the
        input its rejects name (one scorer per file of a distributed job)."""
        clone = object.__new__(TableScorer)
        clone.__dict__.update(self.__dict__)
        if source is not None:
            clone.source = source
        clone._scorer = _Scorer(host=self.host, select_provider=clone._select)
        clone._scorer.providers = self._scorer.providers
        clone._reader = self._new_reader()
        return clone

    def prepare(self, instruments: Iterable[str] | None = None) -> dict[str, ScoringProvider]:
        """Choose now the provider of each of ``instruments`` (default: every registered one)
        that some provider can score, and check its licence for today: what a distributed job
        does on its driver, so that a missing or expired licence stops it before any task
        runs, and so that the pickled scorer names every provider its workers must find again
        (see :meth:`__reduce__`). An instrument no provider fits is skipped (a row naming it
        stops the run where it is scored, as in ``pamlib score``); a licence that does not
        allow scoring raises :class:`~pamlib.errors.LicenceError`."""
        from pamlib.errors import ScoringError
        from pamlib.scoring._selection import CheckedProvider

        registry = self.host.instruments()
        wanted = [i.id for i in registry] if instruments is None else list(instruments)
        chosen: dict[str, ScoringProvider] = {}
        for instrument_id in wanted:
            instrument = registry.get(instrument_id)
            try:
                provider = self._scorer.provider(instrument)
            except LicenceError:
                raise
            except ScoringError:
                continue
            if isinstance(provider, CheckedProvider):
                provider.check(instrument)
            chosen[instrument_id] = provider
        return chosen

    def providers(self) -> dict[str, tuple[str, str]]:
        """The provider chosen for each instrument so far: ``{instrument: (id, version)}``."""
        return {k: (p.id, p.version) for k, p in self._scorer.providers.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        """A scorer pickles to what rebuilds it — names, the calibration (one read from a file
        as the file's path and hash, never its numbers; a demonstration one as its content),
        options, and the providers it chose (by id and version) — never to a provider object.
        The copy chooses its providers again where it is unpickled and refuses to run if any
        differs (another plugin, version or calibration). It starts a new run: no ids seen,
        rows counted from 1."""
        if not self._default_host:
            host: PluginHost | None = self.host  # pickles by re-discovering its plugins
        else:
            host = None
        state = {
            "provider": self.provider_name,
            "calibration": self.calibration,
            "calibration_sha256": getattr(self.calibration, "sha256", None),
            "options": self.options,
            "duplicates": self.duplicates,
            "row_key": self.row_key,
            "keep_nhs_number": self.keep_nhs_number,
            "pseudonymiser": self.pseudonymiser,
            "source": self.source,
            "threads": self._threads_asked,
            "host": host,
            "providers": self.providers(),
        }
        return (_rebuild_scorer, (state,))

    def _select(self, instrument: Instrument) -> ScoringProvider:
        from pamlib.scoring import select_provider

        return select_provider(
            self.provider_name, instrument, calibration=self.calibration, host=self.host
        )

    def __repr__(self) -> str:
        return f"TableScorer(provider={self.provider_name!r}, source={_shown_source(self.source)})"

    def output_schema(self) -> Any:
        """The Arrow schema of the scored rows (extra columns known once a batch was seen)."""
        from pamlib.formats.output import typed_schema

        extra = _identity_columns(self.keep_nhs_number, self.pseudonymiser)
        return typed_schema(extra + self._reader.extra_columns)

    @staticmethod
    def rejects_schema() -> Any:
        """The Arrow schema of the rejects (:func:`rejects_schema`)."""
        return rejects_schema()

    def score(self, data: Any, *, first_occurrence: Any = None) -> ScoreRun:
        """Score ``data`` (a table, batches, or an Arrow-speaking DataFrame); with
        ``duplicates="external"``, ``first_occurrence`` marks the rows whose assessment id is
        seen there first (one batch at a time)."""
        from pamlib.formats.tables import record_batches

        with self._turn:
            if first_occurrence is not None:
                batches = list(record_batches(data))
                if len(batches) != 1:
                    raise ConfigurationError(
                        "a first-occurrence mask goes with one batch at a time"
                    )
                chunks: Iterator[ReadChunk] = iter(
                    [self._reader.chunk(batches[0], first=first_occurrence)]
                )
                return self._run(chunks, self.source, threads=1)
            rows = getattr(data, "num_rows", None)
            one_batch = isinstance(rows, int) and rows <= self.options.chunk_rows
            threads = 1 if one_batch else None
            return self._run(self._reader.read(data), self.source, threads=threads)

    def score_source(
        self,
        source: str | os.PathLike[str],
        *,
        input_format: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ScoreRun:
        """Score a file (any registered input format: CSV, FHIR, …) into memory, with this
        scorer's options: what ``pamlib score --recommend`` and ``pamlib report`` do before
        tailoring or reporting, so nothing is written and read back. The ids seen and row
        positions of tables are not shared with files."""
        reader = find_input_format(self.host, str(source), input_format)
        name = "<stdin>" if str(source) == "-" else str(source)
        options = attrs.evolve(self.options, threads=self.threads)
        with self._turn:
            chunks = read_input(reader, source, options, host=self.host)
            run = self._run(chunks, name, progress)
        if name == "<stdin>":
            return run
        read_from = (os.fspath(source),)
        scored = attrs.evolve(run.scored, read_from=read_from)
        return attrs.evolve(run, scored=scored, inputs=read_from)

    def _run(
        self,
        chunks: Iterator[ReadChunk],
        source: str,
        progress: ProgressCallback | None = None,
        *,
        threads: int | None = None,
    ) -> ScoreRun:
        scorer = _Scorer(host=self.host, select_provider=self._select)
        scorer.providers = self._scorer.providers  # chosen once, kept for the scorer's life
        sink = _MemorySink(
            scorer, keep_nhs_number=self.keep_nhs_number, pseudonymiser=self.pseudonymiser
        )
        _drive(chunks, scorer, sink, progress, self.threads if threads is None else threads)
        return ScoreRun(
            scored=_scored_table(sink.table(), sink.nhs_number()),
            rejects=sink.all_rejects(),
            summary=scorer.summary(source),
            source_columns=sink.source_columns,
            score_decimals=sink.write_options(None).score_decimals,
        )


def _rebuild_scorer(state: Mapping[str, Any]) -> TableScorer:
    """A :class:`TableScorer` from its pickled state, checked against what it was built with."""
    calibration = state["calibration"]
    if getattr(calibration, "sha256", None) != state["calibration_sha256"]:
        raise ConfigurationError(
            "the calibration changed on its way to this process (its hash differs)"
        )
    scorer = TableScorer(
        provider=state["provider"],
        calibration=calibration,
        options=state["options"],
        duplicates=state["duplicates"],
        row_key=state["row_key"],
        keep_nhs_number=state["keep_nhs_number"],
        pseudonymiser=state["pseudonymiser"],
        source=state["source"],
        host=state["host"],
        threads=state.get("threads"),
    )
    instruments = scorer.host.instruments()
    for instrument_id, (provider_id, version) in state["providers"].items():
        if instrument_id not in instruments:
            raise ConfigurationError(
                f"instrument {instrument_id} is not registered in this process"
            )
        chosen = scorer._scorer.provider(instruments.get(instrument_id))
        if (chosen.id, chosen.version) != (provider_id, version):
            raise ConfigurationError(
                f"the scorer was built with provider {provider_id} {version} for "
                f"{instrument_id}, but this process has {chosen.id} {chosen.version}"
            )
    return scorer


def score_table(
    data: Any,
    *,
    provider: str | None = None,
    calibration: Any = None,
    mapping: str | os.PathLike[str] | Mapping[str, str] | None = None,
    instrument: str | None = None,
    day_first: bool | None = None,
    duplicates: Duplicates = "track",
    row_key: str | None = None,
    keep_nhs_number: bool = False,
    pseudonymiser: Pseudonymiser | None = None,
    source: str = "table",
    host: PluginHost | None = None,
    threads: int | None = None,
) -> ScoreRun:
    """Score a table held in memory: a pyarrow Table or batches, any object with
    ``__arrow_c_stream__`` (pandas ≥ 2.2 and polars DataFrames) or rows as dictionaries, in
    pamlib's columns or mapped ones, text or typed (see :mod:`pamlib.formats.tables`).

    Rows are checked exactly as ``pamlib score`` checks a file's records — same reject codes
    and messages — and located as ``row N``. The arguments are :class:`TableScorer`'s.

    >>> import pyarrow as pa
    >>> table = pa.table({
    ...     "assessment_id": ["a1", "a2"], "patient_id": ["p1", "p2"],
    ...     "assessed_on": ["2024-03-01", "2024-13-01"],
    ...     **{f"q{k:02d}": [3, 4] for k in range(1, 14)},
    ... })
    >>> run = score_table(table, provider="demo", instrument="PAM-13")
    >>> run.summary.reconciliation
    'read 2 = scored 1 + not scored 0 + rejected 1'
    >>> run.rejects.column("location").to_pylist(), run.rejects.column("code").to_pylist()
    (['row 2'], ['date'])
    """
    scorer = TableScorer(
        provider=provider,
        calibration=calibration,
        mapping=mapping,
        instrument=instrument,
        day_first=day_first,
        duplicates=duplicates,
        row_key=row_key,
        keep_nhs_number=keep_nhs_number,
        pseudonymiser=pseudonymiser,
        source=source,
        host=host,
        threads=threads,
    )
    return scorer.score(data)


def write_scored(
    scored: ScoredTable,
    output: Target | AtomicTarget,
    *,
    output_format: str | None = None,
    score_decimals: int | None = None,
    host: PluginHost | None = None,
    commit: bool = True,
) -> None:
    """Write a scored table — tailored or not — with an output format (CSV, Parquet, JSON
    Lines, or a plugin's format whose writer has ``write_table``), atomically.

    ``output`` is a path, a binary stream, or an :class:`~pamlib.formats.guard.AtomicTarget`
    the caller opened through its :class:`~pamlib.formats.guard.OutputGuard`; a path is
    guarded here (never a file the table was read from, locked, complete or absent). Columns
    after the standard ones are written in the table's order. ``score_decimals`` defaults to the
    decimals of the table's cut-point set (else one). A private NHS number is never written.
    With ``commit=False`` an :class:`~pamlib.formats.guard.AtomicTarget` is left complete but
    unpublished, for the caller to commit with other files (or discard).
    """
    host = host or get_host()
    if isinstance(output, AtomicTarget):
        _write_scored(scored, output, output_format, score_decimals, host)
        if commit:
            output.commit()
        return
    with OutputGuard() as guard:
        for source in scored.read_from:  # the file the table was read from is never replaced
            guard.input(source, "the input")
        guard.output(output, "the scored output")
        target = guard.open(output)
        _write_scored(scored, target, output_format, score_decimals, host)
        target.commit()


def _write_scored(
    scored: ScoredTable,
    target: AtomicTarget,
    output_format: str | None,
    score_decimals: int | None,
    host: PluginHost,
) -> None:
    table = scored.to_arrow()
    write_pieces(
        table.schema,
        [table],
        target,
        output_format=output_format,
        score_decimals=score_decimals,
        decimals_of=table,
        host=host,
    )


#: Rows of a scored table handed to an output format's writer at a time.
WRITE_ROWS = 65_536


def write_pieces(
    schema: Any,
    pieces: Iterable[Any],
    target: AtomicTarget,
    *,
    output_format: str | None = None,
    score_decimals: int | None = None,
    decimals_of: Any = None,
    host: PluginHost | None = None,
) -> None:
    """Write a scored table given as consecutive pieces (Arrow tables in ``schema``, made as
    they are asked for) to an open target, as :func:`write_scored` writes a whole table:
    each piece in batches of at most :data:`WRITE_ROWS` rows, the target left complete but
    unpublished. ``score_decimals`` defaults to the decimals of the cut-point sets named in
    ``decimals_of`` (the whole table, or its ``cutpoint_set`` column's table). A piece that
    fails to be made discards the target, as a failed write does."""
    from pamlib.tables.scored import STANDARD_TYPES

    host = host or get_host()
    pa = pyarrow_module()
    name = target.name if target.name not in ("", "<stream>") else None
    fmt = find_output_format(host, name, output_format)
    extra = tuple(schema.names[len(STANDARD_TYPES) :])
    if score_decimals is None:
        score_decimals = 1 if decimals_of is None else _table_decimals(decimals_of, host)
    writer: ResultWriter | None = None
    try:
        writer = fmt.open_writer(
            target.stream, WriteOptions(extra_columns=extra, score_decimals=score_decimals)
        )
        write_table = getattr(writer, "write_table", None)
        if write_table is None:
            raise ConfigurationError(
                f"the {fmt.name} output format cannot write a scored table (tailored output); "
                "use csv, parquet or json"
            )
        for piece in pieces:
            for batch in piece.to_batches(max_chunksize=WRITE_ROWS):
                write_table(pa.Table.from_batches([batch], schema=schema))
        writer.close()
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.abort()
        target.discard()
        raise


def _table_decimals(table: Any, host: PluginHost) -> int:
    """The decimals of the first cut-point set named in ``table`` (one if none is known)."""
    names = {n for n in table.column("cutpoint_set").unique().to_pylist() if n}
    cutpoints = host.cutpoint_sets()
    for name in sorted(names):
        if name in cutpoints:
            return cutpoints.get(name).decimals
    return 1


def write_rejects(run: ScoreRun, target: Target | AtomicTarget, *, commit: bool = True) -> None:
    """Write a run's rejects as ``pamlib score`` does (the rejects file: see
    :class:`~pamlib.formats.output.RejectsWriter`), atomically (``commit=False``: complete but
    unpublished, as :func:`write_scored`). A path is guarded as :func:`write_scored` guards
    it: never one of the files the run read."""
    if isinstance(target, AtomicTarget) or not isinstance(target, (str, os.PathLike)):
        _write_rejects(run, target, commit=commit)
        return
    with OutputGuard() as guard:
        for source in run.inputs:
            guard.input(source, "the input")
        guard.output(target, "the rejects file")
        opened = guard.open(target)
        _write_rejects(run, opened, commit=True)


def _write_rejects(run: ScoreRun, target: Target | AtomicTarget, *, commit: bool) -> None:
    stream = target.stream if isinstance(target, AtomicTarget) else target
    writer = RejectsWriter(stream, run.source_columns)
    try:
        writer.write(
            Reject(
                source=r["source"],
                location=r["location"],
                code=r["code"],
                message=r["message"],
                fields=dict(r["fields"]),
                line=r["row"],
                record=r["record"],
            )
            for r in run.rejects.to_pylist()
        )
        writer.close()
        if commit and isinstance(target, AtomicTarget):
            target.commit()
    except BaseException:
        writer.abort()
        if isinstance(target, AtomicTarget):
            target.discard()
        raise
