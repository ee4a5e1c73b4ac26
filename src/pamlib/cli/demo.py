"""``pamlib demo``: the main job, end to end, on built-in synthetic data.

Writes a synthetic cohort as a canonical CSV (with three rows broken on purpose, to show the
rejects file), scores it through exactly the code path of ``pamlib score``, and prints the
reconciliation and where the files are.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from pamlib.cli.score import _select_provider, print_summary
from pamlib.instruments import Instrument
from pamlib.pipeline import score_file
from pamlib.plugins import get_host
from pamlib.scoring.provider import ScoringProvider
from pamlib.synthetic import SyntheticCohort, synthetic_cohort

#: MERGE: switch to "demo" (synthetic Rasch calibration) when the demo provider lands.
DEMO_PROVIDER = "raw-sum"
DEFAULT_OUTPUT_DIR = "pamlib-demo-output"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="run the main job on a built-in synthetic cohort (no real patients)"
    )
    p.add_argument("--patients", type=int, default=400, help="cohort size (default 400)")
    p.add_argument("--seed", type=int, default=2016, help="random seed (default 2016)")
    p.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        metavar="DIR",
        help=f"where to write the files (default ./{DEFAULT_OUTPUT_DIR})",
    )
    p.set_defaults(func=run)


def write_cohort(cohort: SyntheticCohort, path: Path) -> int:
    """Write the cohort in the canonical layout plus three broken rows; returns the number of
    data rows written."""
    rows = list(cohort.csv_rows())
    header, body = rows[0], rows[1:]
    template = body[0]
    broken = []
    for k, (column, value) in enumerate(
        [("nhs_number", "9990000011"), ("assessed_on", "2024-02-30"), ("q05", "5")]
    ):
        row = list(template)
        row[header.index("assessment_id")] = f"BROKEN-{k + 1}"
        row[header.index(column)] = value
        broken.append(row)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body + broken)
    return len(body) + len(broken)


def run(args: argparse.Namespace) -> int:
    from pamlib.cli import UsageError

    if args.patients < 1:
        raise UsageError("--patients must be at least 1")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cohort = synthetic_cohort(args.patients, seed=args.seed)
    per_patient = Counter(cohort.patient_id.tolist())
    source = out / "synthetic-cohort.csv"
    write_cohort(cohort, source)
    print(
        f"Synthetic cohort: {len(per_patient)} patients, {len(cohort)} assessments "
        f"of {cohort.instrument.id} (seed {args.seed}), plus 3 rows broken on purpose."
    )
    print(f"Patients with a follow-up: {sum(1 for n in per_patient.values() if n > 1)}")
    host = get_host()

    def select(instrument: Instrument) -> ScoringProvider:
        return _select_provider(DEMO_PROVIDER, instrument, host=host)

    summary = score_file(
        source,
        select_provider=select,
        output=out / "scored.csv",
        rejects=out / "rejects.csv",
        host=host,
    )
    print(f"Input:   {source}")
    print(f"Scored:  {summary.output}")
    print(f"Rejects: {summary.rejects}")
    if summary.demo:
        print(f"Scored with '{DEMO_PROVIDER}' (synthetic calibration — NOT PAM scores).")
    else:
        print(f"Scored with '{DEMO_PROVIDER}' (raw totals — NOT PAM scores).")
    print_summary(summary, sys.stdout)
    return 0
