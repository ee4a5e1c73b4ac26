"""``pamlib report``: cohort figures, NQF #2483 and a single-file HTML report from scored data."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pamlib.formats.base import Target
    from pamlib.formats.guard import AtomicTarget, OutputGuard
    from pamlib.reporting import CohortReport
    from pamlib.tables.scored import ScoredTable


def add_parser(subparsers: Any) -> None:
    from pamlib.cli import file_name

    p = subparsers.add_parser(
        "report",
        help="summarise a scored cohort: levels, change, NQF #2483, an offline HTML report",
        description=(
            "Build cohort figures from a scored file (the output of 'pamlib score'), or from a "
            "raw export scored on the way with --provider. Writes a single-file HTML report and, "
            "on request, a JSON summary and a per-patient CSV."
        ),
    )
    p.add_argument(
        "input",
        type=file_name,
        metavar="INPUT",
        help="scored CSV, Parquet or JSON Lines, or a raw export with --provider "
        "('-' for standard input)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=file_name,
        metavar="HTML",
        help="HTML report to write ('-' for standard output)",
    )
    p.add_argument(
        "--json", type=file_name, metavar="FILE", help="also write the JSON summary here"
    )
    p.add_argument(
        "--pdf",
        type=file_name,
        metavar="FILE",
        help="also write the report as PDF for board papers (needs the pdf extra: "
        "pip install 'pamlib[pdf]')",
    )
    p.add_argument(
        "--patients", type=file_name, metavar="FILE", help="also write one CSV row per patient"
    )
    p.add_argument(
        "--group-by",
        metavar="COLUMN",
        help="stratify by this column (e.g. site); identifier columns (patient_id, nhs_number, "
        "names, dates of birth, or any column whose values mostly belong to one patient each) "
        "are refused",
    )
    p.add_argument(
        "--threshold",
        default="3",
        metavar="POINTS",
        help="change that counts as improved/declined: a number, or nqf2483 (3), mcid (5.4), "
        "mdc (7.2); default 3",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="suppress small numbers (counts 1-7 shown as *) in the HTML and JSON",
    )
    p.add_argument("--provider", metavar="NAME", help="score a raw export first with this provider")
    p.add_argument(
        "--calibration",
        type=file_name,
        metavar="FILE",
        help="calibration file for --provider rasch",
    )
    p.add_argument(
        "--mapping", type=file_name, metavar="FILE", help="column mapping for a raw export"
    )
    p.add_argument(
        "--scored",
        type=file_name,
        metavar="FILE",
        help="with --provider: write the scored rows here (default: REPORT.scored.csv beside "
        "the report; none with --publish)",
    )
    p.add_argument(
        "--rejects",
        type=file_name,
        metavar="FILE",
        help="with --provider: write the rejected records here (default: REPORT.rejects.csv "
        "beside the report; required with --publish, as they hold identifiers)",
    )
    p.add_argument(
        "--rules",
        action="append",
        type=file_name,
        default=[],
        metavar="FILE",
        help="a tailoring rules file the scored input was tailored with (repeatable); listed "
        "in the report's context by name and sha256",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pamlib.cli import UsageError
    from pamlib.formats.guard import OutputGuard
    from pamlib.reporting import (
        IdentifyingColumnError,
        ReportConfig,
        SourceFile,
        build_report,
        console_lines,
        parse_threshold,
    )
    from pamlib.reporting._context import _now
    from pamlib.reporting._not_pam import CONSOLE_NOTES
    from pamlib.tables.scored import hand_back_large_blocks

    if args.publish and args.patients:
        raise UsageError(
            "--patients writes identifiable rows and cannot be combined with --publish"
        )
    if args.pdf:  # before any work: a missing extra is a broken environment, said plainly
        from pamlib.reporting._pdf import check_available

        check_available()
    source = _given_input(args.input)
    _check_side_files(args)
    given = {"-o": args.output, "--json": args.json, "--pdf": args.pdf, "--patients": args.patients}
    to_stdout = [option for option, name in given.items() if name == "-"]
    if len(to_stdout) > 1:
        raise UsageError(f"only one output can go to standard output ('-'): {', '.join(to_stdout)}")
    output: Target = args.output if args.output != "-" else _stdout()
    json_out, pdf_out, patients_out = (_target(n) for n in (args.json, args.pdf, args.patients))
    with OutputGuard() as guard, contextlib.ExitStack() as spooled:
        guard.input(source, "the input")
        guard.input(args.mapping, "the mapping file")
        guard.input(args.calibration, "the calibration file")
        for rules in args.rules:
            guard.input(rules, "the rules file")
        guard.output(output, "the HTML report (-o)")
        guard.output(json_out, "the JSON summary (--json)")
        guard.output(pdf_out, "the PDF report (--pdf)")
        guard.output(patients_out, "the per-patient CSV (--patients)")
        # The settings first: a bad one stops the command before anything is read or written.
        config = ReportConfig(
            threshold=parse_threshold(args.threshold),
            group_by=args.group_by,
            publish=args.publish,
        )
        generated_at = _now()  # SOURCE_DATE_EPOCH, if set, is a setting too
        scored: ScoredTable | Path = _readable_input(source, args, spooled)
        beside: _Beside | None = None
        if args.provider is not None:
            beside = _score_first(args, source, output, guard)
            scored = beside.table
        sources = [
            SourceFile.of(source, "input", digest=False)
            if str(source) != STDIN
            else SourceFile(role="input", name=STDIN_NAME, sha256=None)
        ]
        sources += [
            SourceFile.of(path, role)
            for path, role in ((args.mapping, "mapping"), (args.calibration, "calibration"))
            if path is not None
        ]
        # This process is the command's own: it may set the C library's allocator, which a
        # library function called from someone else's process must not.
        hand_back_large_blocks()
        try:
            report = build_report(
                scored,
                config,
                sources=sources,
                rules=args.rules,
                generated_at=generated_at,
                scoring=None if beside is None else beside.summary,
            )
        except IdentifyingColumnError as exc:  # the column is the user's choice: a usage error
            raise UsageError(str(exc)) from None
        # The scored and rejects files beside the report are published with it, or not at all.
        targets = (output, json_out, patients_out, pdf_out)
        _write(guard, report, targets, () if beside is None else beside.targets)
    if beside is not None:
        beside.print_summary()
    _print_written(args)
    for line in console_lines(report.released, report.config):
        print(line, file=sys.stderr)
    # Demonstration, unlicensed and raw-only scores each say so, as the report does.
    for reason in report.not_pam_reasons:
        print(CONSOLE_NOTES[reason], file=sys.stderr)
    return 0


#: The input named so is standard input, listed in the report (and its files named) as
#: :data:`STDIN_NAME`, as ``pamlib score`` names it.
STDIN, STDIN_NAME = "-", "stdin"


def _given_input(name: str) -> Path:
    """The input named, refused where it names nothing or a folder; a file, a pipe such as
    ``<(…)``, a device or ``-`` (standard input) is read (as ``pamlib score`` takes them)."""
    from pamlib.cli import UsageError

    source = Path(name)
    if name == STDIN:
        return source
    if source.is_dir():
        named = f" {source.name}" if source.name else ""  # ``.`` and ``/`` have no name
        raise UsageError(f"the input{named} is a folder, not a file")
    if not source.exists():
        raise UsageError(f"no such input file: {source.name}")
    return source


def _readable_input(source: Path, args: argparse.Namespace, spooled: contextlib.ExitStack) -> Path:
    """The input as its reader is to read it, checked to be the kind of file the options
    say: a raw export is read once, as ``pamlib score`` reads it; a scored table that is not
    a regular file, from a copy (see :func:`_regular_file`) that ``spooled`` removes."""
    scored_first = args.provider is not None
    if scored_first and str(source) == STDIN:
        return source  # read once, as it comes: its header cannot be looked at first
    readable = source if scored_first else spooled.enter_context(_regular_file(source))
    _check_kind_of_input(readable, scored_first=scored_first)
    return readable


@contextlib.contextmanager
def _regular_file(source: Path) -> Iterator[Path]:
    """``source``, or where it is not a regular file (a pipe such as ``<(…)``, a device) a copy
    of it in a temporary folder only this user can read, removed when done: the scored-table
    reader seeks, and reads a file more than once (its header, then its rows; again to find a
    repeated id). The copy keeps the input's name, so problems name the file as given;
    standard input's is ``stdin``."""
    import shutil
    import stat
    import tempfile

    from_stdin = str(source) == STDIN
    if not from_stdin and stat.S_ISREG(source.stat().st_mode):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="pamlib-report-") as folder:
        copy = Path(folder) / (STDIN_NAME if from_stdin else source.name or "input")
        with contextlib.ExitStack() as opened:
            given = sys.stdin.buffer if from_stdin else opened.enter_context(source.open("rb"))
            with copy.open("xb") as kept:
                shutil.copyfileobj(given, kept, 1 << 20)
        yield copy


def _print_written(args: argparse.Namespace) -> None:
    """Where each file went, on standard error (what went to standard output goes unsaid, as
    ``pamlib score``'s rows do)."""
    written = [
        ("Report", args.output),
        ("PDF", args.pdf),
        ("Summary", args.json),
        ("Patients", args.patients),
    ]
    for what, path in written:
        if path and path != "-":
            print(f"{what}: {path}", file=sys.stderr)


def _target(output: str | None) -> Target | None:
    """Where an output goes: ``-`` is standard output (as for ``pamlib score -o -``), any other
    name a file."""
    return output if output != "-" else _stdout()


def _stdout() -> IO[bytes]:
    if sys.__stdout__ is None:  # closed at start (``>&-``): the report must not vanish
        import errno

        raise OSError(errno.EBADF, "standard output is closed: name the output with a file")
    return sys.stdout.buffer


def _is_stream(target: Target | None) -> bool:
    return target is not None and not isinstance(target, (str, os.PathLike))


def _header_of(source: Path) -> set[str] | None:
    """The column names of a CSV or Parquet file, lower-cased, where they can be had cheaply
    (``None`` otherwise: the reader then says what is wrong)."""
    suffix = source.suffix.lower()
    try:
        if not source.is_file():  # a pipe read here would be read no more
            return None
        if not suffix:  # standard input's copy, or a file saved with no suffix
            with source.open("rb") as fh:
                suffix = ".parquet" if fh.read(4) == b"PAR1" else ".csv"
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return {n.lower() for n in pq.read_schema(source).names}
        if suffix in (".csv", ".txt", ".tsv"):
            with source.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
                first = fh.readline(65_536)
            return {c.strip().strip('"').lower() for c in first.replace(";", ",").split(",")}
    except Exception:  # only a hint: the reader reports the file properly
        return None
    return None


def _check_kind_of_input(source: Path, *, scored_first: bool) -> None:
    """A raw export given to report, or a scored file given to report --provider: said as such,
    with what to do, rather than as a scored table's or an export's missing columns."""
    from pamlib.cli import UsageError

    columns = _header_of(source)
    if columns is None:
        return
    scored = {"status", "score", "level"} <= columns
    export = any(c.startswith("q0") for c in columns) and "status" not in columns
    if not scored_first and export:
        raise UsageError(
            f"{source.name} looks like an assessment export (item columns, no status): score it "
            "with pamlib score first, or give --provider to score it here"
        )
    if scored_first and scored:
        raise UsageError(f"{source.name} is already scored: drop --provider")


def _check_side_files(args: argparse.Namespace) -> None:
    """Every file the report names in its context is read: a rules file must be one (it is
    listed by name and digest), and a mapping or calibration is read only to score a raw
    export."""
    from pamlib.cli import UsageError
    from pamlib.tailoring.rules import load_rules

    if args.provider is None:
        for given, value in (
            ("--mapping", args.mapping),
            ("--calibration", args.calibration),
            ("--scored", args.scored),
            ("--rejects", args.rejects),
        ):
            if value:
                raise UsageError(f"{given} applies to a raw export scored with --provider")
    for given, value in (("--scored", args.scored), ("--rejects", args.rejects)):
        if value == "-":
            raise UsageError(f"{given} names a file: its rows cannot go to standard output")
    if args.provider is not None and args.publish and args.rejects is None:
        # A published report is shared: the rows scored for it, and the records rejected, hold
        # identifiers and must not land beside it unasked.
        raise UsageError(
            "--publish with --provider: the rejected records hold identifiers, so they are not "
            "written beside a published report; name their file with --rejects FILE (and, to "
            "keep the scored rows, --scored FILE) away from what is published"
        )
    for rules in args.rules:
        if not Path(rules).is_file():
            raise UsageError(f"no rules file {rules}")
        load_rules(rules)


def _write(
    guard: OutputGuard,
    report: CohortReport,
    outputs: tuple[Target | None, Target | None, Target | None, Target | None],
    written: Sequence[AtomicTarget] = (),
) -> None:
    """Write every file in full first, then publish them together with the files already
    ``written`` (see :func:`~pamlib.formats.guard.commit_together`): one that fails
    to be written leaves none of them changed, and an interrupt leaves all or none. HTML for
    standard output is written after every file, and flushed last, as ``pamlib score``'s rows
    are: a file that fails to be written leaves it empty."""
    from pamlib.formats.guard import commit_together
    from pamlib.reporting import write_html, write_json, write_patients_csv

    writers: list[tuple[Target | None, Callable[[CohortReport, IO[bytes]], None]]] = [
        (outputs[0], _as_text(write_html)),
        (outputs[1], _as_text(write_json)),
        (outputs[2], _as_text(write_patients_csv)),
        (outputs[3], _write_pdf),
    ]
    writers.sort(key=lambda writer: _is_stream(writer[0]))  # a stream last (the sort is stable)
    targets = list(written)
    for path, write in writers:
        if path is None:
            continue
        target = guard.open(path)
        write(report, target.stream)
        targets.append(target)
    commit_together(targets)


def _as_text(
    write: Callable[[CohortReport, IO[str]], None],
) -> Callable[[CohortReport, IO[bytes]], None]:
    """A writer of text as a writer to a binary stream (UTF-8), which it leaves open."""

    def to_bytes(report: CohortReport, stream: IO[bytes]) -> None:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            write(report, text)
            text.flush()
        finally:
            with contextlib.suppress(Exception):
                text.detach()  # the target owns the binary stream

    return to_bytes


def _write_pdf(report: CohortReport, stream: IO[bytes]) -> None:
    from pamlib.reporting import render_pdf

    stream.write(render_pdf(report))


class _Beside(NamedTuple):
    """A raw export scored for its report: the table, and its rejects file and (unless a
    published report asked for none) scored file, written but not yet published."""

    table: ScoredTable
    targets: tuple[AtomicTarget, ...]
    scored: Path | None
    summary: Any

    def print_summary(self) -> None:
        from pamlib.cli.score import print_summary

        if self.scored is not None:
            print(f"Scored: {self.scored}", file=sys.stderr)
        print_summary(self.summary, sys.stderr)


#: How a file written beside the report by default is named in a refusal.
_BESIDE = "file written beside the report"


def _score_first(
    args: argparse.Namespace, source: Path, output: Target, guard: OutputGuard
) -> _Beside:
    """Score a raw export in memory and report from it — a person's rows are linked by NHS
    number where the export has no patient id, without the number being written anywhere —
    and also write the rejects and the scored rows, to be published with the report: where
    ``--rejects`` and ``--scored`` say, else beside the report (``NAME.rejects.csv``,
    ``NAME.scored.csv``). A report to standard output, a device or a pipe has them named after
    the input, in the current folder, as ``pamlib score`` names its rejects file then. A
    published report has no file beside it by default (:func:`_check_side_files` asks for
    ``--rejects``)."""
    import attrs

    from pamlib.formats.guard import writes_through
    from pamlib.pipeline import TableScorer, write_rejects, write_scored

    if isinstance(output, (str, os.PathLike)) and not writes_through(output):
        report = Path(output)
        beside = report.with_name(report.stem + ".scored.csv")
        rejects = report.with_name(report.stem + ".rejects.csv")
    else:
        stem = STDIN_NAME if str(source) == STDIN else source.stem
        beside, rejects = Path(stem + ".scored.csv"), Path(stem + ".rejects.csv")
    if args.rejects is not None:
        rejects = Path(args.rejects)
    scored = Path(args.scored) if args.scored is not None else None if args.publish else beside
    if scored is not None:
        given = args.scored is not None
        guard.output(scored, "the scored file (--scored)" if given else f"the scored {_BESIDE}")
    guard.output(
        rejects, "the rejects file (--rejects)" if args.rejects else f"the rejects {_BESIDE}"
    )
    scorer = TableScorer(provider=args.provider, calibration=args.calibration, mapping=args.mapping)
    run = scorer.score_source(source)
    targets = [guard.open(rejects)]
    try:
        write_rejects(run, targets[0], commit=False)
        if scored is not None:
            targets.append(guard.open(scored))
            write_scored(run.scored, targets[1], score_decimals=run.score_decimals, commit=False)
    except BaseException:
        for target in targets:
            target.discard()
        raise
    summary = attrs.evolve(run.summary, rejects=str(rejects))
    return _Beside(run.scored, tuple(targets), scored, summary)
