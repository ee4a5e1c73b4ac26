"""Benchmark: small-number suppression of a report grouped by site — time and counts hidden.

For synthetic cohorts of ``patients`` people spread over ``groups`` sites (``--cases``, default
3×400, 20×2,000, 100×3,000 and 100×20,000), builds the report's figures once and times
:func:`pamlib.reporting._suppression.hidden_counts` (every step: primary, secondary, combined,
bounded) ``--repeat`` times, reporting the best and median time and how many of the summary's
counts are hidden. Small groups hide most of their counts, and the combined step then works hardest.
Figures for the documentation come from this script only.

Usage::

    python benchmarks/bench_suppression.py
    python benchmarks/bench_suppression.py --cases 100x3000 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import time


def cohort(n_patients: int, n_groups: int, seed: int = 5) -> list[dict[str, str]]:
    """Scored rows: 1–4 assessments a person, 3–14 months apart, a few not scored."""
    rnd = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not security
    rows: list[dict[str, str]] = []
    for p in range(n_patients):
        site = f"site-{rnd.randrange(n_groups)}"
        day = dt.date(2023, 1, 1) + dt.timedelta(days=rnd.randrange(500))
        score = round(min(100.0, max(0.0, rnd.gauss(56, 15))), 1)
        for _ in range(rnd.choice((1, 2, 2, 2, 3, 4))):
            scored = rnd.random() > 0.06
            level = 1 if score <= 47.0 else 2 if score <= 55.1 else 3 if score <= 67.0 else 4
            rows.append(
                {
                    "assessment_id": f"A{len(rows):07d}",
                    "patient_id": f"P{p:05d}",
                    "assessed_on": day.isoformat(),
                    "instrument": "PAM-13",
                    "status": "scored" if scored else "not-scored",
                    "score": f"{score:.1f}" if scored else "",
                    "level": str(level) if scored else "",
                    "cutpoint_set": "current" if scored else "",
                    "flags": "",
                    "demo": "false",
                    "site": site,
                }
            )
            day += dt.timedelta(days=rnd.randrange(90, 430))
            score = round(min(100.0, max(0.0, score + rnd.gauss(1.5, 8))), 1)
    return rows


def main() -> int:
    from pamlib.reporting import ReportConfig, build_report
    from pamlib.reporting._columns import ScoredColumns
    from pamlib.reporting._suppression import hidden_counts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="3x400,20x2000,100x3000,100x20000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()}; {os.cpu_count()} CPUs; "
        f"load {os.getloadavg()[0]:.1f}; {args.repeat} rounds"
    )
    for case in args.cases.split(","):
        n_groups, n_patients = (int(x) for x in case.split("x"))
        config = ReportConfig(group_by="site", publish=True)
        columns = ScoredColumns.from_rows(cohort(n_patients, n_groups))
        figures = build_report(columns, config).figures
        times, hidden = [], set()
        for _ in range(args.repeat):
            start = time.perf_counter()
            hidden = hidden_counts(figures, config.suppression)
            times.append(time.perf_counter() - start)
        print(
            f"{n_groups:4} groups, {n_patients:6,} patients: best {min(times):6.3f} s  "
            f"median {statistics.median(times):6.3f} s  hidden {len(hidden):,} of "
            f"{len(figures.counts):,} counts"
        )
    print(f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
