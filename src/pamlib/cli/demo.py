"""``pamlib demo``: the main job, end to end, on built-in synthetic data.

Writes a synthetic cohort as a canonical CSV (with made-up condition, interpreter and
accessibility columns, and three rows broken on purpose to show the rejects file), scores it with
the synthetic ``demo`` calibration through exactly the code path of ``pamlib score``, tailors
support with pamlib's default rules plus the example site file, and ends with the cohort report:
one pass in memory (score, tailor, report), each output written once and never read back.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pamlib.synthetic import SyntheticCohort
    from pamlib.tables.scored import ScoredTable

#: The synthetic demonstration calibration: every result is flagged demo, NOT the PAM.
DEMO_PROVIDER = "demo"
DEFAULT_OUTPUT_DIR = "pamlib-demo-output"
#: The largest cohort the demo makes (it is held in memory): beyond, a usage error.
MAX_PATIENTS = 10_000_000
#: The files the demo writes in its folder.
DEMO_FILES = ("synthetic-cohort.csv", "scored.csv", "rejects.csv", "report.html", "summary.json")
#: Written beside them once they are: a folder holding it holds a demo's files, which the next
#: demo may replace. Without it, a file of those names is someone else's and is never replaced.
MARKER = ".pamlib-demo"


def add_parser(subparsers: Any) -> None:
    from pamlib.cli import file_name

    p = subparsers.add_parser(
        "demo", help="run the main job on a built-in synthetic cohort (no real patients)"
    )
    p.add_argument("--patients", type=int, default=400, help="cohort size (default 400)")
    p.add_argument("--seed", type=int, default=2016, help="random seed (default 2016)")
    p.add_argument(
        "--output-dir",
        type=file_name,
        default=DEFAULT_OUTPUT_DIR,
        metavar="DIR",
        help=f"where to write the files (default ./{DEFAULT_OUTPUT_DIR})",
    )
    p.set_defaults(func=run)


def write_cohort(cohort: SyntheticCohort, path: Path, seed: int) -> int:
    """Write the cohort in the canonical layout, with synthetic attribute columns, plus three
    broken rows; returns the number of data rows written. The file appears only when complete."""
    from pamlib.formats.guard import OutputGuard
    from pamlib.formats.output import CsvWriter
    from pamlib.tailoring._demo import synthetic_attributes

    rows = list(cohort.csv_rows())
    attributes = synthetic_attributes(len(cohort), seed)
    header = [*rows[0], *attributes]
    body = [
        [*row, *(str(values[i]) for values in attributes.values())]
        for i, row in enumerate(rows[1:])
    ]
    template = body[0]
    broken = []
    for k, (column, value) in enumerate(
        [("nhs_number", "9990000011"), ("assessed_on", "2024-02-30"), ("q05", "5")]
    ):
        row = list(template)
        row[header.index("assessment_id")] = f"BROKEN-{k + 1}"
        row[header.index(column)] = value
        broken.append(row)
    with OutputGuard() as guard:
        guard.output(path, "the synthetic cohort")
        target = guard.open(path)
        text = io.TextIOWrapper(target.stream, encoding="utf-8", newline="")
        writer = CsvWriter(text)
        writer.writerow(header)
        writer.writerows(body + broken)
        text.flush()
        text.detach()
        target.commit()
    return len(body) + len(broken)


def _check_arguments(args: argparse.Namespace) -> None:
    """The cohort's size and seed, before anything is made (a folder included)."""
    from pamlib.cli import UsageError

    if not 1 <= args.patients <= MAX_PATIENTS:
        raise UsageError(f"--patients must be from 1 to {MAX_PATIENTS:,}")
    if not 0 <= args.seed < 2**64:
        raise UsageError("--seed must be a whole number from 0 to 2**64 - 1")


def _check_folder(out: Path) -> None:
    """Refuse a folder holding a file of the demo's names that no demo wrote (a user's own
    ``scored.csv``): the demo's names are not the user's choice, so nothing of theirs may be
    replaced by them. A demo's own folder (:data:`MARKER`) is written again."""
    from pamlib.cli import UsageError

    shown = out.name or str(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output-dir {shown} is a file, not a folder")
    marker = out / MARKER
    if not out.is_dir() or (marker.is_file() and not marker.is_symlink()):
        return
    found = [name for name in DEMO_FILES if (out / name).exists() or (out / name).is_symlink()]
    if found:
        raise UsageError(
            f"{shown} holds {', '.join(found)}, which pamlib demo did not write: give another "
            "--output-dir, or move those files away"
        )


def _claim(out: Path) -> None:
    """Mark ``out`` as a demo's folder, before any file is written (a run stopped part way is
    written again): a new file, never one followed through a link."""
    import os

    marker = out / MARKER
    if os.path.lexists(marker):
        return
    text = "Written by pamlib demo with the files beside it: the next demo may replace them.\n"
    with os.fdopen(
        os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w", encoding="utf-8"
    ) as f:
        f.write(text)


def run(args: argparse.Namespace) -> int:
    import attrs

    from pamlib.cli.score import print_summary
    from pamlib.formats.guard import OutputGuard, commit_together
    from pamlib.pipeline import TableScorer, write_rejects, write_scored
    from pamlib.plugins import get_host
    from pamlib.reporting import build_report, console_lines, write_html, write_json
    from pamlib.synthetic import synthetic_cohort
    from pamlib.tailoring import EXAMPLE_SITE_RULES, tailor

    _check_arguments(args)
    out = Path(args.output_dir)
    _check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    _claim(out)
    cohort = synthetic_cohort(args.patients, seed=args.seed)
    per_patient = Counter(cohort.patient_id.tolist())
    source = out / "synthetic-cohort.csv"
    write_cohort(cohort, source, args.seed)
    print(
        f"Synthetic cohort: {len(per_patient)} patients, {len(cohort)} assessments "
        f"of {cohort.instrument.id} (seed {args.seed}), plus 3 rows broken on purpose."
    )
    host = get_host()
    scored, rejects = out / "scored.csv", out / "rejects.csv"
    html, summary_json = out / "report.html", out / "summary.json"
    with OutputGuard() as guard:
        guard.input(source, "the synthetic cohort")
        for path, label in (
            (scored, "the scored file"),
            (rejects, "the rejects file"),
            (html, "the HTML report"),
            (summary_json, "the JSON summary"),
        ):
            guard.output(path, label)
        # One pass in memory: score, tailor, report; each file is written once, never read.
        run = TableScorer(provider=DEMO_PROVIDER, host=host).score_source(source)
        tailored = tailor(run.scored, [str(EXAMPLE_SITE_RULES)], host=host)
        report = build_report(tailored, sources=[source], rules=[EXAMPLE_SITE_RULES])
        targets = [guard.open(p) for p in (rejects, scored, html, summary_json)]
        try:
            write_rejects(run, targets[0], commit=False)
            write_scored(
                tailored, targets[1], score_decimals=run.score_decimals, host=host, commit=False
            )
            for target, write in zip(targets[2:], (write_html, write_json), strict=True):
                text = io.TextIOWrapper(target.stream, encoding="utf-8", newline="")
                write(report, text)
                text.flush()
                text.detach()
            commit_together(targets)  # the rejects first, the report last
        except BaseException:
            for target in targets:
                target.discard()
            raise
    summary = attrs.evolve(run.summary, output=str(scored), rejects=str(rejects))
    print(f"Input:   {source}")
    print(f"Scored:  {scored}  (with recommended pathways for {len(tailored)} assessments)")
    print(f"Rejects: {summary.rejects}")
    print(f"Scored with '{DEMO_PROVIDER}' (synthetic calibration — NOT PAM scores).")
    print_summary(summary, sys.stdout)
    _print_tailoring(tailored)
    print(f"Cohort report: {html} (summary: {summary_json}); its headline figures:")
    for line in console_lines(report.released, report.config):
        print(f"  {line}")
    # as pamlib report ends its figures: the last thing read says what these numbers are not
    print("Note: these scores come from the synthetic demo calibration — NOT PAM scores.")
    return 0


def _print_tailoring(tailored: ScoredTable) -> None:
    """Counts of recommended pathways in the tailored table."""
    counts: Counter[str] = Counter()
    none = 0
    for pathways in tailored.column("recommended_pathways").to_pylist():
        counts.update(pathways)
        none += not pathways
    print("Tailoring (pamlib's default rules + the example site file):")
    for pathway, k in counts.most_common():
        print(f"  {pathway}: {k}")
    if none:
        print(f"  no pathway: {none}")
