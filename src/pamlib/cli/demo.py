"""``pamlib demo``: the main job, end to end, on built-in synthetic data."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import numpy as np

from pamlib.plugins import get_host
from pamlib.synthetic import synthetic_cohort


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="run the main job on a built-in synthetic cohort (no real patients)"
    )
    p.add_argument("--patients", type=int, default=400, help="cohort size (default 400)")
    p.add_argument("--seed", type=int, default=2016, help="random seed (default 2016)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cohort = synthetic_cohort(args.patients, seed=args.seed)
    provider = get_host().scoring_providers()["raw-sum"]
    scores = provider.score_batch(cohort.instrument, cohort.codes)
    per_patient = Counter(cohort.patient_id.tolist())
    print(
        f"Synthetic cohort: {len(per_patient)} patients, {len(cohort)} assessments "
        f"of {cohort.instrument.id} (seed {args.seed})."
    )
    print(f"Patients with a follow-up: {sum(1 for n in per_patient.values() if n > 1)}")
    for site, n in sorted(Counter(cohort.site.tolist()).items()):
        print(f"  {site}: {n} assessments")
    scored = scores.scored
    print(
        f"Scored with '{provider.id}' (raw totals — NOT PAM scores): "
        f"{int(scored.sum())} scored, {int((~scored).sum())} not scored; "
        f"mean raw total {float(np.mean(scores.raw_score[scored])):.1f}, "
        f"mean items answered {float(np.mean(scores.n_answered)):.1f}."
    )
    return 0
