"""Time the Rasch engine on one million PAM-13-shaped response vectors.

    python benchmarks/bench_engine.py [--n 1000000] [--repeats 5] [--json FILE]

Per estimator: the vectors scored by a fresh table in one call (its one fill solves every
(mask, raw score) pair met), then by a warm table (int64 and int8 codes), then by a fresh table
in blocks of 65,536 vectors, as ``pamlib score`` gives them: each block's fill solves the pairs
not met before, a few hundred after the first, where the fixed cost of a fill shows.

The calibration is a synthetic rating-scale model made up here (never a licensed one), and the
responses are simulated from it (13 items, 4 categories, 5% missing: half unanswered, half N/A),
so the mix of answered-item masks and raw scores looks like real data. Targets: 1M vectors in
under 0.5 s warm, one vector in under 50 µs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pamlib.scoring._engine import (
    EAP,
    MLE,
    NOT_APPLICABLE,
    UNANSWERED,
    WLE,
    Estimator,
    ScoreTable,
    StepModel,
)

N_ITEMS = 13
THRESHOLDS = (-1.8, 0.1, 1.7)  # synthetic Andrich thresholds, logits
MISSING = 0.05
SEED = 20240613


def synthetic_model(rng: np.random.Generator) -> StepModel:
    difficulties = np.linspace(-1.2, 1.2, N_ITEMS) + rng.normal(0.0, 0.2, N_ITEMS)
    return StepModel.rating_scale(difficulties - difficulties.mean(), THRESHOLDS)


def simulate(
    model: StepModel, n: int, rng: np.random.Generator, dtype: type[np.integer[Any]]
) -> NDArray[np.integer[Any]]:
    """Codes 1..4 drawn from the model for θ ~ N(0.8, 1.3), then 5% set missing."""
    theta = rng.normal(0.8, 1.3, n)
    out = np.empty((n, model.n_items), dtype=dtype)
    ks = np.arange(model.n_steps + 1)
    for i in range(model.n_items):
        cum = np.concatenate([[0.0], np.cumsum(model.steps[i])])
        logits = theta[:, None] * ks[None, :] - cum[None, :]
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(n) * cdf[:, -1]
        out[:, i] = 1 + (u[:, None] > cdf).sum(axis=1)
    missing = rng.random(out.shape) < MISSING
    n_missing = int(np.count_nonzero(missing))
    out[missing] = np.where(rng.random(n_missing) < 0.5, UNANSWERED, NOT_APPLICABLE)
    return out


def cold_score(model: StepModel, est: Estimator, responses: NDArray[np.integer[Any]]) -> object:
    """A fresh table each time: the (mask, raw) compile is part of what is timed."""
    return ScoreTable(model, est).score(responses)


def block_score(
    model: StepModel, est: Estimator, responses: NDArray[np.integer[Any]], rows: int
) -> object:
    """A fresh table given the vectors a block of ``rows`` at a time: a fill a block."""
    table = ScoreTable(model, est)
    for start in range(0, responses.shape[0], rows):
        table.score(responses[start : start + rows])
    return table


BLOCK_ROWS = 65_536  # pamlib score's rows a block


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(n: int, repeats: int, one_calls: int) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    model = synthetic_model(rng)
    responses = simulate(model, n, rng, np.int64)
    responses_i8 = responses.astype(np.int8)
    results: dict[str, Any] = {
        "n_vectors": n,
        "n_items": N_ITEMS,
        "missing": MISSING,
        "repeats": repeats,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "rows": [],
    }
    rows: list[dict[str, Any]] = results["rows"]
    estimators: list[tuple[str, Estimator]] = [("WLE", WLE()), ("MLE", MLE()), ("EAP", EAP())]
    for name, est in estimators:
        cold = best_of(max(1, repeats // 2), partial(cold_score, model, est, responses))
        table = ScoreTable(model, est)
        table.score(responses)
        masks = table.n_compiled
        warm = best_of(repeats, partial(table.score, responses))
        warm_i8 = best_of(repeats, partial(table.score, responses_i8))
        blocks = best_of(
            max(1, repeats // 2), partial(block_score, model, est, responses_i8, BLOCK_ROWS)
        )
        rows += [
            {"estimator": name, "what": f"cold {n:,} (int64, compile incl.)", "seconds": cold},
            {"estimator": name, "what": f"warm {n:,} (int64)", "seconds": warm},
            {"estimator": name, "what": f"warm {n:,} (int8)", "seconds": warm_i8},
            {
                "estimator": name,
                "what": f"cold, blocks of {BLOCK_ROWS:,} (int8)",
                "seconds": blocks,
            },
        ]
        if name == "WLE":
            results["distinct_masks"] = masks
            vectors = [responses[i] for i in range(min(n, 1000))]
            for v in vectors:
                table.score_one(v)
            per_call = []
            for k in range(one_calls):
                v = vectors[k % len(vectors)]
                start = time.perf_counter()
                table.score_one(v)
                per_call.append(time.perf_counter() - start)
            per_call.sort()
            rows += [
                {
                    "estimator": name,
                    "what": "score_one, median",
                    "seconds": statistics.median(per_call),
                },
                {
                    "estimator": name,
                    "what": "score_one, 90th percentile",
                    "seconds": per_call[int(0.9 * len(per_call))],
                },
            ]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="response vectors")
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (best taken)")
    parser.add_argument("--one-calls", type=int, default=20_000, help="timed score_one calls")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = bench(args.n, args.repeats, args.one_calls)
    print(
        f"{results['n_vectors']:,} vectors x {results['n_items']} items, "
        f"{results['missing']:.0%} missing, {results['distinct_masks']} distinct masks; "
        f"python {results['python']}, numpy {results['numpy']}, {results['cpus']} CPUs"
    )
    print(f"{'estimator':<10}{'timing':<40}{'result':>14}")
    for row in results["rows"]:
        secs = row["seconds"]
        shown = f"{secs * 1e6:.1f} µs" if secs < 1e-3 else f"{secs * 1e3:.1f} ms"
        print(f"{row['estimator']:<10}{row['what']:<40}{shown:>14}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
