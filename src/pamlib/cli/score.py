"""``pamlib score``: score a file of assessments and account for every record."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

# What only running the command needs is imported inside the functions that run it: building
# the parser (every command's, for ``--help``) then costs a few milliseconds.
if TYPE_CHECKING:
    from pamlib.cli._progress import Progress
    from pamlib.formats.base import ReadOptions, Target
    from pamlib.formats.guard import OutputGuard
    from pamlib.instruments import Instrument
    from pamlib.pipeline import ScoreSummary
    from pamlib.scoring.provider import ScoringProvider
    from pamlib.tables.keys import Pseudonymiser


def add_parser(subparsers: Any) -> None:
    from pamlib.cli import file_name

    p = subparsers.add_parser(
        "score",
        help="score a file of assessments (CSV export in; CSV, Parquet or JSON Lines out)",
        description=(
            "Score every assessment in INPUT. Rows that cannot be read go to the rejects file "
            "with their line number and a reason; the last line on standard error reconciles "
            "the counts: read = scored + not scored + rejected (+ blank). Records were read "
            "and none was scored: exit status 1."
        ),
    )
    p.add_argument(
        "input", type=file_name, metavar="INPUT", help="the file to score ('-' for standard input)"
    )
    p.add_argument(
        "--provider",
        metavar="NAME",
        help="scoring provider id (raw-sum, demo, rasch, or a vendor's); default: rasch when "
        "--calibration is given, else the one licensed provider installed for the instrument",
    )
    p.add_argument(
        "--calibration", type=file_name, metavar="FILE", help="calibration file for the provider"
    )
    p.add_argument(
        "--mapping",
        type=file_name,
        metavar="FILE",
        help="mapping file (TOML): a table's renamed columns, or a FHIR questionnaire's linkIds "
        "and answer codes; the file's tables say which",
    )
    p.add_argument(
        "-o",
        "--output",
        type=file_name,
        metavar="OUTPUT",
        help="scored file (default: standard output)",
    )
    p.add_argument(
        "--rejects",
        type=file_name,
        metavar="FILE",
        help="rejects file (default: beside OUTPUT as NAME.rejects.csv, or INPUT-NAME.rejects.csv)",
    )
    p.add_argument(
        "--format",
        dest="output_format",
        metavar="NAME",
        help="output format: csv, parquet or json (JSON Lines); default from OUTPUT's extension",
    )
    p.add_argument("--input-format", metavar="NAME", help="input format (default from INPUT)")
    p.add_argument(
        "--strict", action="store_true", help="exit with status 1 if any record is rejected"
    )
    p.add_argument("--instrument", metavar="ID", help="instrument for rows that name none")
    p.add_argument(
        "--dates",
        choices=("day-first", "month-first"),
        help="how to read dates like 03/04/2024 (default day-first; ISO dates always work)",
    )
    p.add_argument("--delimiter", metavar="CHAR", help="field delimiter (default: detected)")
    p.add_argument(
        "--sheet", metavar="NAME", help="the workbook sheet to read (default: the first)"
    )
    p.add_argument(
        "--encoding",
        metavar="NAME",
        help="the input's text encoding, any Python codec (utf-8, cp1252, latin-1, utf-16); "
        "default: UTF-8, or UTF-16/32 by byte-order mark, or cp1252/latin-1 where the bytes "
        "leave no doubt",
    )
    p.add_argument(
        "--keep-nhs-number",
        action="store_true",
        help="add the normalised NHS number to the output as an nhs_number column",
    )
    p.add_argument(
        "--pseudonym-key",
        type=file_name,
        metavar="FILE",
        help="a secret key file (32 bytes or more): add a keyed pseudonym of the NHS number "
        "(nhs_pseudonym column) that links a person's rows without the number",
    )
    p.add_argument(
        "--engine",
        default="auto",
        metavar="auto|arrow",
        help="CSV reader: both name the columnar reader ('python' was removed)",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=65_536,
        metavar="N",
        help="records per chunk (memory use grows with it; default 65536)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="threads to read, score and write on at once (default: the cores available; "
        "1: one after the other); the output is the same with any number",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.add_argument(
        "--recommend",
        action="store_true",
        help="tailor: add recommended_pathways, recommendation_rules, reassess_by and "
        "no_pathway_reason columns from pamlib's default rules (CSV, Parquet or JSON output)",
    )
    p.add_argument(
        "--rules",
        action="append",
        type=file_name,
        default=[],
        metavar="FILE",
        help="a site's tailoring rules file (repeatable; implies --recommend)",
    )
    p.set_defaults(func=run, settles=True)  # _settle() once the pipeline and plugins are loaded


def _options(args: argparse.Namespace) -> ReadOptions:
    from pamlib.cli import UsageError
    from pamlib.formats.base import ReadOptions

    if args.chunk_rows < 1:
        raise UsageError("--chunk-rows must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1")
    if args.engine == "python":
        raise UsageError(
            "--engine python was removed: pamlib reads CSV with its columnar reader only "
            "(leave --engine out)"
        )
    if args.engine not in ("auto", "arrow"):
        raise UsageError(f"--engine must be auto or arrow, not {args.engine!r}")
    options = ReadOptions(chunk_rows=args.chunk_rows, engine=args.engine)
    if args.mapping:
        options = _apply_mapping(args, options)
    settings = dict(options.settings)
    if args.delimiter:
        delimiter = {"\\t": "\t", "tab": "\t"}.get(args.delimiter, args.delimiter)
        if len(delimiter) != 1:
            raise UsageError("--delimiter must be one character (or 'tab')")
        settings["delimiter"] = delimiter
    if args.sheet:
        settings["sheet"] = args.sheet
    if args.encoding:
        from pamlib.errors import ConfigurationError
        from pamlib.formats.encoding import codec_name

        try:
            settings["encoding"] = codec_name(args.encoding)
        except ConfigurationError as exc:
            raise UsageError(f"--encoding: {exc}") from None
    import attrs

    return attrs.evolve(
        options,
        instrument=args.instrument or options.instrument,
        day_first=options.day_first if args.dates is None else args.dates == "day-first",
        settings=settings,
    )


def _apply_mapping(args: argparse.Namespace, options: ReadOptions) -> ReadOptions:
    """``options`` with the ``--mapping`` file applied, whichever kind it is, once the input's
    reader is known to take that kind (a format's ``mapping_kind``; column mappings when it
    names none): a mapping for another kind of input would be silently ignored or misread."""
    import attrs

    from pamlib.cli import UsageError
    from pamlib.formats.layout import InputMapping, load_any_mapping
    from pamlib.pipeline import find_input_format
    from pamlib.plugins import get_host

    mapping = load_any_mapping(args.mapping)
    given = "csv" if isinstance(mapping, InputMapping) else "fhir"
    reader = find_input_format(get_host(), args.input, args.input_format)
    takes = getattr(reader, "mapping_kind", "csv")
    if given != takes:
        what = {"csv": "a table's columns", "fhir": "a FHIR questionnaire"}
        raise UsageError(
            f"--mapping {Path(args.mapping).name} maps {what[given]}, but the input is read as "
            f"{reader.name}, which takes a mapping of {what.get(takes, takes)}"
        )
    if isinstance(mapping, InputMapping):
        return mapping.apply(options)
    return attrs.evolve(options, settings={**options.settings, "mapping": mapping})


def print_summary(summary: ScoreSummary, stream: TextIO) -> None:
    """What happened, then the reconciliation as the last line."""
    if summary.n_rejected:
        codes = ", ".join(f"{c} {n}" for c, n in summary.rejected_by_code.items())
        stream.write(f"rejected {summary.n_rejected} ({codes}) -> {summary.rejects}\n")
    if summary.n_not_scored:
        for code, n in summary.not_scored_by_reason.items():
            stream.write(f"not scored {n}: {code} ({summary.reasons.get(code, code)})\n")
    stream.write(summary.reconciliation + "\n")


#: What to try when every record read was rejected for this reason.
_FIXES = {
    "encoding": "give the file's encoding with --encoding NAME (Excel on Windows writes cp1252)",
    "unknown-instrument": "name the instrument of rows that name none with --instrument ID "
    "(such as --instrument PAM-13), or add the file's spelling to a --mapping file's "
    "[instruments]",
    "field-count": "check the delimiter (--delimiter) and that the rows have the header's columns",
    "date": "check the date order (--dates month-first) or map the date column with --mapping",
    "unknown-label": "add the file's answer wording to a --mapping file's [answers]",
    "unclosed-quote": "a quote opens a field that never closes: check the file's quoting",
    "formula": "open the workbook in Excel and save it, so that its formulas are calculated",
    "merged-cells": "unmerge the workbook's merged cells and fill in each cell",
    "missing-item-column": "map the file's column for each item the rejects name as missing "
    'in a --mapping file\'s [columns] (such as "Q13 response" = "q13")',
}
#: Reject codes that mean a column was not found where pamlib looked: a mapping problem.
_MAPPING_CODES = ("no-identity", "no-assessment-id", "nhs-number", "impossible-answer",
                  "unknown-item", "duplicate-assessment-id")  # fmt: skip


def nothing_scored(summary: ScoreSummary) -> str | None:
    """The error of a run that read records holding something and scored none — the most
    common reason, with its count, and what to try — else ``None``. A file with a header only,
    or with blank records only, holds nothing to score: that is no error.
    """
    held = summary.n_read - summary.n_blank
    if held == 0 or summary.n_scored > 0:
        return None
    head = f"none of the {held} records read was scored"
    if summary.rejected_by_code:
        code, n = max(summary.rejected_by_code.items(), key=lambda item: (item[1], item[0]))
        fix = _FIXES.get(code)
        if fix is None and code in _MAPPING_CODES:
            fix = "check which column is which: name the file's columns in a --mapping file"
        fix = fix or f"see the rejects file {Path(summary.rejects).name}"
        return f"{head}; most were rejected as {code} ({n}): {fix}"
    if not summary.not_scored_by_reason:  # pragma: no cover - counts that reconcile
        return head
    code, n = max(summary.not_scored_by_reason.items(), key=lambda item: (item[1], item[0]))
    return f"{head}; {n} not scored: {code} ({summary.reasons.get(code, code)})"


@contextlib.contextmanager
def _notes(stream: TextIO) -> Iterator[None]:
    """What readers log while the run reads (an encoding pamlib chose) as ``note:`` lines."""
    import logging

    logger = logging.getLogger("pamlib.formats.encoding")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("note: %(message)s"))
    handler.setLevel(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def run(args: argparse.Namespace) -> int:
    from pamlib.formats.guard import OutputGuard

    with OutputGuard() as guard, _notes(sys.stderr):
        return _run(args, guard)


def _run(args: argparse.Namespace, guard: OutputGuard) -> int:
    from pamlib.cli import UsageError
    from pamlib.cli._progress import Progress

    if args.input != "-" and not Path(args.input).exists():  # a name mistyped, as for report
        raise UsageError(f"no such input file: {Path(args.input).name}")
    if args.calibration:
        _given_file(args.calibration, "calibration file")
    if args.output_format is not None:  # an option's value no format has: a usage error
        from pamlib.formats.base import OutputFormat
        from pamlib.plugins import get_host

        known = sorted(n for n, f in get_host().formats().items() if isinstance(f, OutputFormat))
        if args.output_format not in known:
            raise UsageError(f"no output format {args.output_format!r}; known: {', '.join(known)}")
    guard.input(args.calibration, "the calibration file")
    guard.input(args.mapping, "the mapping file")
    guard.input(args.pseudonym_key, "the pseudonym key file")
    options = _options(args)
    if args.output in (None, "-") and sys.__stdout__ is None:
        import errno

        raise OSError(errno.EBADF, "standard output is closed: name an output with -o FILE")
    output: Target = args.output if args.output not in (None, "-") else sys.stdout.buffer
    pseudonymiser = _pseudonymiser(args.pseudonym_key)
    recommend = args.recommend or bool(args.rules)
    for rules_file in args.rules:
        _given_file(rules_file, "rules file")
        guard.input(rules_file, "a rules file")
    progress = Progress(sys.stderr, enabled=False if args.no_progress else None)
    try:
        job = _score_and_tailor if recommend else _score
        summary = job(
            args,
            guard,
            options=options,
            output=output,
            pseudonymiser=pseudonymiser,
            progress=progress,
        )
    finally:
        progress.finish()
    if summary.demo:
        sys.stderr.write("note: scored with a demonstration calibration: NOT PAM scores\n")
    elif summary.providers and not summary.licensed:
        names = ", ".join(summary.providers)
        sys.stderr.write(f"note: {names} is not a licensed PAM provider: NOT PAM scores\n")
    if args.output not in (None, "-"):
        sys.stderr.write(f"scored -> {args.output}\n")
    strict_failure = args.strict and summary.n_rejected > 0
    if strict_failure:
        sys.stderr.write(f"pamlib: error: {summary.n_rejected} records rejected (--strict)\n")
    zero = nothing_scored(summary)
    if zero is not None:
        sys.stderr.write(f"pamlib: error: {zero}\n")
    print_summary(summary, sys.stderr)
    return 1 if strict_failure or zero is not None else 0


def _given_file(path: str, what: str) -> None:
    """Refuse a file option's value that names nothing, or a folder; anything else (a file, a
    pipe such as ``<(…)``) is for its reader to read."""
    from pamlib.cli import UsageError

    given = Path(path)
    if given.is_dir():
        raise UsageError(f"the {what} {given.name} is a folder, not a file")
    if not given.exists():
        raise UsageError(f"no {what} {given.name}")


def _pseudonymiser(path: str | None) -> Pseudonymiser | None:
    if path is None:
        return None
    import warnings

    from pamlib.tables.keys import Pseudonymiser

    with warnings.catch_warnings(record=True) as caught:  # said as a line, not a source location
        warnings.simplefilter("always")
        pseudonymiser = Pseudonymiser.from_file(path)
    for warning in caught:
        sys.stderr.write(f"warning: {warning.message}\n")
    return pseudonymiser


def _score(
    args: argparse.Namespace,
    guard: OutputGuard,
    *,
    options: ReadOptions,
    output: Target,
    pseudonymiser: Pseudonymiser | None,
    progress: Progress,
) -> ScoreSummary:
    """Score file to file, streaming: memory stays flat however large the input."""
    from pamlib.cli import _settle
    from pamlib.pipeline import score_file
    from pamlib.plugins import get_host

    host = get_host()
    _settle(keep_freed_memory=True)  # the plugins and the modules of the run are loaded

    def select(instrument: Instrument) -> ScoringProvider:
        from pamlib.scoring import select_provider

        return select_provider(args.provider, instrument, calibration=args.calibration, host=host)

    return score_file(
        args.input,
        select_provider=select,
        output=output,
        rejects=args.rejects,
        input_format=args.input_format,
        output_format=args.output_format,
        options=options,
        keep_nhs_number=args.keep_nhs_number,
        pseudonymiser=pseudonymiser,
        host=host,
        progress=progress.update,
        guard=guard,
        threads=args.threads,
    )


def _score_and_tailor(
    args: argparse.Namespace,
    guard: OutputGuard,
    *,
    options: ReadOptions,
    output: Target,
    pseudonymiser: Pseudonymiser | None,
    progress: Progress,
) -> ScoreSummary:
    """Score into memory, tailor (a person's previous assessment may be anywhere in the file),
    then write: the rejects first, the tailored table last. Nothing is written and read back;
    NHS numbers link a person's rows without being written unless asked for."""
    from pamlib.cli import _settle
    from pamlib.formats.guard import commit_together
    from pamlib.pipeline import (
        WRITE_ROWS,
        TableScorer,
        default_rejects_path,
        write_pieces,
        write_rejects,
    )
    from pamlib.plugins import get_host
    from pamlib.tables.scored import release_freed_memory
    from pamlib.tailoring.rows import Tailoring

    rejects = args.rejects or default_rejects_path(args.input, output)
    guard.input(args.input, "the input")
    guard.output(output, "the scored output")
    guard.output(
        rejects,
        "the rejects file"
        if args.rejects
        else "the default rejects file (named after the output; set one with --rejects)",
    )
    host = get_host()
    _settle()  # the plugins and the modules of the run are loaded
    scorer = TableScorer(
        provider=args.provider,
        calibration=args.calibration,
        options=options,
        keep_nhs_number=args.keep_nhs_number,
        pseudonymiser=pseudonymiser,
        host=host,
        threads=args.threads,
    )
    run = scorer.score_source(args.input, input_format=args.input_format, progress=progress.update)
    release_freed_memory()  # what scoring made and dropped, before the table is tailored
    # Decided for every row at once, written a piece at a time: the recommendation columns
    # of the whole table are never in memory together.
    tailoring = Tailoring.of(run.scored, args.rules, host=host)
    rejects_target, output_target = guard.open(rejects), guard.open(output)
    try:  # both written in full, then published: the rejects first, the output last
        write_rejects(run, rejects_target, commit=False)
        write_pieces(
            tailoring.schema(),
            tailoring.pieces(WRITE_ROWS),
            output_target,
            output_format=args.output_format,
            score_decimals=run.score_decimals,
            host=host,
        )
        commit_together([rejects_target, output_target])
    except BaseException:
        rejects_target.discard()
        output_target.discard()
        raise
    for line in tailoring.no_pathway_summary():  # rows without a pathway never go unnoticed
        print(line, file=sys.stderr)
    import attrs

    name = str(args.output) if args.output not in (None, "-") else "<stdout>"
    return attrs.evolve(run.summary, output=name, rejects=str(rejects))
