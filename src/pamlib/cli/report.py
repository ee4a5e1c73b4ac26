"""``pamlib report``: cohort figures, NQF #2483 and a single-file HTML report from scored data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
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
        "input", metavar="INPUT", help="scored CSV/Parquet, or a raw export with --provider"
    )
    p.add_argument("-o", "--output", required=True, metavar="HTML", help="HTML report to write")
    p.add_argument("--json", metavar="FILE", help="also write the JSON summary here")
    p.add_argument("--patients", metavar="FILE", help="also write one CSV row per patient")
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
    p.add_argument("--calibration", metavar="FILE", help="calibration file for --provider rasch")
    p.add_argument("--mapping", metavar="FILE", help="column mapping for a raw export")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pamlib.cli import UsageError
    from pamlib.reporting import (
        IdentifyingColumnError,
        ReportConfig,
        build_report,
        parse_threshold,
        write_html,
        write_json,
        write_patients_csv,
    )

    if args.publish and args.patients:
        raise UsageError(
            "--patients writes identifiable rows and cannot be combined with --publish"
        )
    source = Path(args.input)
    if not source.is_file():
        raise UsageError(f"no such input file: {source.name}")
    if args.provider is not None:
        source = _score_first(args, source)
    config = ReportConfig(
        threshold=parse_threshold(args.threshold), group_by=args.group_by, publish=args.publish
    )
    try:
        report = build_report(source, config)
    except IdentifyingColumnError as exc:  # the column is the user's choice: a usage error
        raise UsageError(str(exc)) from None
    write_html(report, args.output)
    print(f"Report: {args.output}", file=sys.stderr)
    if args.json:
        write_json(report, args.json)
        print(f"Summary: {args.json}", file=sys.stderr)
    if args.patients:
        write_patients_csv(report, args.patients)
        print(f"Patients: {args.patients}", file=sys.stderr)
    if report.demo:
        print(
            "Note: these scores come from the synthetic demo calibration — NOT PAM scores.",
            file=sys.stderr,
        )
    return 0


def _score_first(args: argparse.Namespace, source: Path) -> Path:
    """Score a raw export into a scored CSV beside the report (``NAME.scored.csv``), printing the
    reconciliation; rejects go beside it too."""
    from pamlib.cli.score import print_summary
    from pamlib.formats.base import ReadOptions
    from pamlib.formats.layout import load_mapping
    from pamlib.instruments import Instrument
    from pamlib.pipeline import score_file
    from pamlib.plugins import get_host
    from pamlib.scoring import select_provider
    from pamlib.scoring.provider import ScoringProvider

    host = get_host()

    def select(instrument: Instrument) -> ScoringProvider:
        return select_provider(args.provider, instrument, calibration=args.calibration, host=host)

    options = ReadOptions()
    if args.mapping:
        options = load_mapping(args.mapping).apply(options)
    report = Path(args.output)
    scored = report.with_name(report.stem + ".scored.csv")
    summary = score_file(
        source,
        select_provider=select,
        output=scored,
        rejects=report.with_name(report.stem + ".rejects.csv"),
        options=options,
        host=host,
    )
    print(f"Scored: {scored}", file=sys.stderr)
    print_summary(summary, sys.stderr)
    return scored
