"""How fast tailoring runs over a scored table: rows per second for the three output columns.

Run: ``python benchmarks/bench_tailoring.py [--rows N] [--repeat R] [--json FILE]``.

A synthetic scored table (no real patients; scores drawn uniformly, so every level and many
distinct scores occur; 40% of patients have a follow-up; attributes on a share of rows) is
tailored with pamlib's default rules plus the example site file:

* ``rows``: ``apply_recommendations`` on dictionaries of strings, as from a CSV file — parsing,
  linking to the previous assessment, evaluation and the three columns;
* ``batch``: the three columns from ``Engine.table_columns`` over
  ``ContextColumns.from_batch``, as from a scoring provider's ``BatchScores``;
* ``batch_objects``: ``tailor_batch``, which also builds one ``TailoringOutcome`` per row;
* ``python_rule``: the row path again with one trivial Python rule added, which turns off the
  sharing of evaluations between rows with equal facts (Python rules may read anything).
* ``one_context``: ``Engine.evaluate`` of a single context (a batch of one through the same
  columns), microseconds per call, averaged over ``--one`` calls.

Reports the best of ``repeat`` runs for each, after one warm-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.levels import CURRENT
from pamlib.plugins import PluginHost
from pamlib.scoring.provider import BatchScores
from pamlib.tailoring import (
    EXAMPLE_SITE_RULES,
    STANDARD_COLUMNS,
    Context,
    Engine,
    apply_recommendations,
    build_engine,
    rule,
    tailor_batch,
)
from pamlib.tailoring.columns import ContextColumns


def synthetic_table(n: int, seed: int) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    n_patients = max(1, int(n / 1.4))
    patient = np.concatenate([np.arange(n_patients), rng.choice(n_patients, n - n_patients)])
    start = np.datetime64("2023-01-01") + rng.integers(0, 365, n).astype("timedelta64[D]")
    start[n_patients:] += np.timedelta64(200, "D")
    score = np.round(rng.uniform(20, 95, n), 1)
    scored = rng.random(n) > 0.03
    score[~scored] = np.nan
    level = CURRENT.levels(score)
    condition = rng.choice(["", "", "", "COPD", "diabetes", "CKD;COPD"], n)
    interpreter = rng.choice([""] * 19 + ["Polish"], n)
    return {
        "assessment_id": np.array([f"a{i}" for i in range(n)]),
        "patient_id": np.array([f"p{p}" for p in patient]),
        "assessed_on": start,
        "score": score,
        "level": level,
        "scored": scored,
        "condition": condition,
        "interpreter": interpreter,
    }


def as_rows(table: dict[str, np.ndarray[Any, Any]]) -> list[dict[str, str]]:
    base = dict.fromkeys(STANDARD_COLUMNS, "") | {"instrument": "PAM-13", "demo": "false"}
    rows = []
    for i in range(len(table["score"])):
        scored = bool(table["scored"][i])
        rows.append(
            base
            | {
                "assessment_id": str(table["assessment_id"][i]),
                "patient_id": str(table["patient_id"][i]),
                "assessed_on": str(table["assessed_on"][i]),
                "status": "scored" if scored else "not-scored",
                "score": f"{table['score'][i]:.1f}" if scored else "",
                "level": str(int(table["level"][i])) if scored else "",
                "condition": str(table["condition"][i]),
                "interpreter": str(table["interpreter"][i]),
            }
        )
    return rows


def as_scores(table: dict[str, np.ndarray[Any, Any]]) -> BatchScores:
    n = len(table["score"])
    nan = np.full(n, np.nan)
    return BatchScores(
        scored=table["scored"],
        n_answered=np.full(n, 13),
        raw_score=np.zeros(n),
        mean_response=nan,
        theta=nan,
        theta_se=nan,
        score=table["score"],
        score_se=nan,
        level=table["level"],
        flags=np.zeros(n, dtype=np.uint8),
        reason_code=np.where(table["scored"], "", "too-few"),
        cutpoint_set="current",
        reasons={"too-few": "too few items answered"},
    )


def best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@rule("bench.noop", reason="a Python rule that never applies")
def noop(ctx: Context) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", type=int, default=2_000, help="calls timed for one_context")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    host = PluginHost(load_entry_points=False, disabled=())
    build_s = best(lambda: build_engine([EXAMPLE_SITE_RULES], host=host), args.repeat)
    engine = build_engine([EXAMPLE_SITE_RULES], host=host)
    with_python = Engine([*engine.rules, noop], engine.pathways)
    table = synthetic_table(args.rows, seed=6)
    rows = as_rows(table)
    scores = as_scores(table)

    batch_args: dict[str, Any] = {
        "instrument": BUILTIN_INSTRUMENTS[0],
        "scores": scores,
        "assessment_id": table["assessment_id"],
        "patient_key": table["patient_id"],
        "assessed_on": table["assessed_on"],
        "attributes": {"condition": table["condition"], "interpreter": table["interpreter"]},
    }

    def batch() -> object:
        return engine.table_columns(ContextColumns.from_batch(**batch_args))

    def batch_objects() -> object:
        return tailor_batch(engine, **batch_args)

    n = args.rows
    rows_s = best(lambda: apply_recommendations(rows, engine), args.repeat)
    batch_s = best(batch, args.repeat)
    objects_s = best(batch_objects, args.repeat)
    python_s = best(lambda: apply_recommendations(rows, with_python), args.repeat)
    one = Context(
        "a1",
        score=48.2,
        level=2,
        previous_score=55.0,
        previous_level=3,
        assessed_on=dt.date(2024, 3, 1),
        attributes={"condition": "COPD"},
    )
    one_s = best(lambda: [engine.evaluate(one) for _ in range(args.one)], args.repeat) / args.one
    result = {
        "rows": n,
        "rules": len(engine.rules),
        "build_engine_s": round(build_s, 4),
        "rows_s": round(rows_s, 3),
        "rows_per_s": round(n / rows_s),
        "batch_s": round(batch_s, 3),
        "batch_per_s": round(n / batch_s),
        "batch_objects_s": round(objects_s, 3),
        "batch_objects_per_s": round(n / objects_s),
        "python_rule_rows_s": round(python_s, 3),
        "python_rule_rows_per_s": round(n / python_s),
        "one_context_us": round(one_s * 1e6, 1),
        "python": sys.version.split()[0],
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
    }
    for key, value in result.items():
        print(f"{key:24} {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
