"""Scoring a file end to end: read, check, score, write, and account for every record.

:func:`score_file` is what ``pamlib score`` and ``pamlib demo`` run. It streams the input chunk
by chunk (memory stays flat as files grow), scores each batch through the provider's columnar
API, writes scored rows in input order, writes every rejected record to the rejects file, and
returns counts that reconcile: ``read = scored + not scored + rejected``.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.errors import ConfigurationError
from pamlib.formats.base import (
    InputFormat,
    OutputFormat,
    ReadChunk,
    ReadOptions,
    RecordBatch,
    ResultWriter,
    Target,
    TextColumn,
    WriteOptions,
)
from pamlib.formats.guard import AtomicTarget, OutputGuard
from pamlib.formats.output import RejectsWriter
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost, get_host
from pamlib.scoring.provider import BATCH_ARRAYS, BatchScores, ScoringProvider

__all__ = [
    "ProviderSelector",
    "ScoreSummary",
    "default_rejects_path",
    "find_input_format",
    "find_output_format",
    "score_file",
]

#: Picks the provider for an instrument (raising :class:`~pamlib.errors.ScoringError` if none).
ProviderSelector = Callable[[Instrument], ScoringProvider]
#: Called after each chunk with the share of the input read (if known) and records read so far.
ProgressCallback = Callable[[float | None, int], None]


@attrs.frozen
class ScoreSummary:
    """The counts of one run, by outcome, code and reason; and where the files went."""

    source: str
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

    @property
    def reconciles(self) -> bool:
        return self.n_read == self.n_scored + self.n_not_scored + self.n_rejected

    @property
    def reconciliation(self) -> str:
        """``read N = scored S + not scored U + rejected R``."""
        return (
            f"read {self.n_read} = scored {self.n_scored} + not scored {self.n_not_scored} "
            f"+ rejected {self.n_rejected}"
        )


def default_rejects_path(source: str | os.PathLike[str], output: Target | None) -> Path:
    """Where rejects go when not told: beside the output (``scored.rejects.csv``), or for
    output to a stream, ``<input name>.rejects.csv`` in the current directory."""
    if isinstance(output, (str, os.PathLike)):
        out = Path(output)
        return out.with_name(f"{out.stem}.rejects.csv")
    name = "stdin" if str(source) == "-" else Path(source).stem
    return Path(f"{name}.rejects.csv")


def _by_extension(
    host: PluginHost, path: str, kind: type[InputFormat] | type[OutputFormat]
) -> str | None:
    """The format of ``kind`` claiming the longest matching extension (``.fhir.json`` beats
    ``.json``); at equal length the one registered first."""
    lowered = path.lower()
    best: tuple[int, str] | None = None
    for name, fmt in host.formats().items():
        if not isinstance(fmt, kind):
            continue
        length = max((len(e) for e in fmt.extensions if lowered.endswith(e)), default=0)
        if length and (best is None or length > best[0]):
            best = (length, name)
    return None if best is None else best[1]


def find_input_format(host: PluginHost, source: str, name: str | None) -> InputFormat:
    """The input format called ``name``, else the one claiming ``source``'s extension, else
    ``csv``."""
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


class _Run:
    """The state of one scoring run: providers per instrument, writers, counts."""

    def __init__(
        self,
        *,
        host: PluginHost,
        select_provider: ProviderSelector,
        output_format: OutputFormat,
        output: AtomicTarget,
        rejects: AtomicTarget,
        keep_nhs_number: bool,
    ) -> None:
        self.host = host
        self.select_provider = select_provider
        self.output_format = output_format
        self.output = output
        self.rejects_target = rejects
        self.keep_nhs_number = keep_nhs_number
        self.providers: dict[str, ScoringProvider] = {}
        self.writer: ResultWriter | None = None
        self.rejects: RejectsWriter | None = None
        self.extra_columns: tuple[str, ...] = ()
        self.source_columns: tuple[str, ...] = ()
        self.n_read = self.n_scored = self.n_not_scored = self.n_rejected = 0
        self.rejected_by_code: Counter[str] = Counter()
        self.not_scored_by_reason: Counter[str] = Counter()
        self.reasons: dict[str, str] = {}
        self.demo = False

    def provider(self, instrument: Instrument) -> ScoringProvider:
        provider = self.providers.get(instrument.id)
        if provider is None:
            provider = self.providers[instrument.id] = self.select_provider(instrument)
        return provider

    def score(self, batch: RecordBatch) -> BatchScores:
        """Score one batch through the checked provider: its licence checked, anything it
        raises turned into a :class:`~pamlib.errors.ScoringError` naming it, and its results
        validated (one per row, finite, on the scale, levels consistent) before observers see
        them and anything is written. An observer's failure is a warning, not the run's end."""
        from pamlib.scoring.selection import CheckedProvider, ProviderResultError

        provider = self.provider(batch.instrument)
        if not isinstance(provider, CheckedProvider):
            provider = self.providers[batch.instrument.id] = CheckedProvider(provider, self.host)
        try:
            scores = provider.score_batch(batch.instrument, batch.codes)
        except ProviderResultError as exc:
            if exc.row is None:
                raise
            raise exc.at(batch.location(exc.row)) from None
        self.host.batch_scored(batch.instrument, scores)
        return scores

    def open_writer(self, scores: BatchScores | None) -> ResultWriter:
        if self.writer is None:
            decimals = 1
            if scores is not None and scores.score_decimals is not None:
                decimals = scores.score_decimals  # as the provider rounded them
            elif scores is not None and scores.cutpoint_set:
                cutpoints = self.host.cutpoint_sets()
                if scores.cutpoint_set in cutpoints:
                    decimals = cutpoints.get(scores.cutpoint_set).decimals
            extra = (("nhs_number",) if self.keep_nhs_number else ()) + self.extra_columns
            self.writer = self.output_format.open_writer(
                self.output.stream, WriteOptions(extra_columns=extra, score_decimals=decimals)
            )
        return self.writer

    def chunk(self, chunk: ReadChunk) -> None:
        if self.rejects is None:
            self.extra_columns = chunk.extra_columns
            self.source_columns = chunk.source_columns
            self.rejects = RejectsWriter(self.rejects_target.stream, chunk.source_columns)
        parts = []
        for batch in chunk.batches:
            if len(batch):
                parts.append((batch, self.score(batch)))
        for run, scores in _in_input_order(parts):
            extra: dict[str, TextColumn] = {}
            batch = run
            if self.keep_nhs_number:
                extra["nhs_number"] = batch.nhs_number
            else:  # no writer sees a number the user did not ask to keep (FHIR Patients too)
                batch = attrs.evolve(run, nhs_number=np.full(len(run), "", dtype=object))
            self.open_writer(scores).write(batch, scores, extra)
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
        self.rejects.write(chunk.rejects)
        self.n_rejected += len(chunk.rejects)
        self.rejected_by_code.update(r.code for r in chunk.rejects)
        self.n_read += chunk.n_read

    def finish(self) -> None:
        """Complete both files, then publish them: the rejects first, the scored output last."""
        rejects = self.rejects or RejectsWriter(self.rejects_target.stream, ())
        self.rejects = rejects
        self.open_writer(None).close()
        rejects.close()
        self.rejects_target.commit()
        self.output.commit()

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
    host: PluginHost | None = None,
    progress: ProgressCallback | None = None,
    guard: OutputGuard | None = None,
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
    scored output. On any error, partial output is removed and the error raised.
    """
    host = host or get_host()
    options = options or ReadOptions()
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
        run = _Run(
            host=host,
            select_provider=select_provider,
            output_format=writer_format,
            output=files.open(output),
            rejects=files.open(rejects_target),
            keep_nhs_number=keep_nhs_number,
        )
        chunks: Iterator[ReadChunk] | None = None
        try:
            chunks = reader.read(source, options)
            for chunk in chunks:
                run.chunk(chunk)
                if progress is not None:
                    progress(chunk.progress, run.n_read)
            run.finish()
        except BaseException:
            run.abort()
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the reader's files, even when this run stopped early
    return ScoreSummary(
        source="<stdin>" if str(source) == "-" else str(source),
        n_read=run.n_read,
        n_scored=run.n_scored,
        n_not_scored=run.n_not_scored,
        n_rejected=run.n_rejected,
        rejected_by_code=dict(sorted(run.rejected_by_code.items())),
        not_scored_by_reason=dict(sorted(run.not_scored_by_reason.items())),
        reasons=dict(sorted(run.reasons.items())),
        output=_name(output, "<stdout>"),
        rejects=_name(rejects_target, "<stream>"),
        providers=tuple(sorted({p.id for p in run.providers.values()})),
        demo=run.demo,
        licensed=bool(run.providers) and all(p.licence for p in run.providers.values()),
    )
