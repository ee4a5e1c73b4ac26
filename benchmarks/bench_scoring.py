"""Time the scoring API: one assessment through ``score()`` and a million through ``score_many()``.

    python benchmarks/bench_scoring.py [--n 1000000] [--repeats 5] [--json FILE]

One assessment is timed scored again and again, and a stream of --varied simulated ones cycled
(the object API remembers a result by its answered items and raw score, so the first figure
measures what is remembered and the second includes the batch of one each new key costs). The
demo provider (a synthetic calibration, never a licensed one) and a ``rasch`` provider bound to
a synthetic calibration file are timed, so every step a licensee's scoring takes is
timed: provider choice and licence check, the engine's table, the 0–100 scale, rounding, levels,
flags and the lifecycle hook. Responses are simulated from a made-up rating-scale model with 5%
missing (half unanswered, half not applicable). Targets: one assessment in under 50 µs after
warm-up; raw engine speed is ``benchmarks/bench_engine.py``'s subject.

One-assessment figures are per call, from ``--samples`` samples of ``--calls`` calls each (best
and median sample, as ``timeit`` reports); batch figures are best and median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import pamlib
from pamlib.assessment import Assessment
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.plugins import get_host
from pamlib.scoring import score, score_many, select_provider
from pamlib.scoring.demo import demo_calibration

PAM13 = BUILTIN_INSTRUMENTS[0]
SEED = 20250301
MISSING = 0.05


def simulate(n: int, rng: np.random.Generator) -> npt.NDArray[np.int8]:
    """Codes 1..4 from the demo calibration's rating-scale model, θ ~ N(0.8, 1.3), 5% missing."""
    cal = demo_calibration(PAM13)
    steps = cal.step_model().steps
    theta = rng.normal(0.8, 1.3, n)
    out = np.empty((n, PAM13.n_items), dtype=np.int8)
    ks = np.arange(steps.shape[1] + 1)
    for i in range(PAM13.n_items):
        cum = np.concatenate([[0.0], np.cumsum(steps[i])])
        logits = theta[:, None] * ks[None, :] - cum[None, :]
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(n) * cdf[:, -1]
        out[:, i] = (u[:, None] > cdf[:, :-1]).sum(axis=1) + 1
    r = rng.random(out.shape)
    out[r < MISSING / 2] = 0
    out[(r >= MISSING / 2) & (r < MISSING)] = -1
    return out


def per_call(fn: Callable[[], object], calls: int, repeats: int) -> list[float]:
    """Seconds per call, one figure per repeat of ``calls`` calls."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - start) / calls)
    return out


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def summary(samples: list[float], scale: float, digits: int) -> dict[str, float]:
    return {
        "best": round(min(samples) * scale, digits),
        "median": round(statistics.median(samples) * scale, digits),
    }


def write_calibration(folder: Path) -> Path:
    """A synthetic calibration file (the demo numbers, not marked demo, no licence)."""
    doc = demo_calibration(PAM13).to_document()
    doc.update(id="bench-synthetic", demo=False, name="Synthetic benchmark calibration")
    path = folder / "bench-synthetic.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors for score_many")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1_000, help="score() calls per sample")
    parser.add_argument(
        "--samples", type=int, default=50, help="samples of --calls calls for score()"
    )
    parser.add_argument(
        "--varied", type=int, default=10_000, help="simulated assessments cycled through"
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    codes = simulate(args.n, rng)
    one = codes[0]
    assessment = Assessment(
        "bench-1",
        Patient("bench-patient"),
        PAM13,
        dt.date(2025, 3, 1),
        {item: int(c) for item, c in zip(PAM13.items, one.tolist(), strict=True) if c != 0},
    )
    # Many assessments, cycled: the object API remembers results by (answered items, raw
    # score), so one assessment scored again and again only ever measures what is remembered.
    varied = itertools.cycle(
        [
            Assessment(
                f"bench-{k}",
                Patient("bench-patient"),
                PAM13,
                dt.date(2025, 3, 1),
                {item: int(c) for item, c in zip(PAM13.items, row, strict=True) if c != 0},
            )
            for k, row in enumerate(codes[: args.varied].tolist())
        ]
    )
    get_host()  # plugin discovery is start-up cost, not per-call cost

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pamlib": pamlib.__version__,
            "platform": platform.platform(),
        },
        "n": args.n,
    }
    with tempfile.TemporaryDirectory() as folder:
        path = write_calibration(Path(folder))
        rasch = select_provider(None, PAM13, calibration=path)
        demo = select_provider("demo", PAM13)
        cases: dict[str, Callable[[], object]] = {
            "score(a, provider='demo')": lambda: score(assessment, provider="demo"),
            "score(a, provider=<rasch, selected once>)": lambda: score(assessment, provider=rasch),
            "provider.score(a) (rasch)": lambda: rasch.score(assessment),
            f"provider.score(a) (rasch), {args.varied:,} cycled": lambda: rasch.score(next(varied)),
        }
        for fn in cases.values():  # warm-up: tables, caches, the CPU's own
            for _ in range(5 * args.calls):
                fn()
        one_results = {}
        for name, fn in cases.items():
            one_results[name] = summary(per_call(fn, args.calls, args.samples), 1e6, 1)
            print(
                f"{name:45} {one_results[name]['best']:8.2f} µs best, "
                f"{one_results[name]['median']:8.2f} µs median"
            )
        results["one_assessment_us"] = one_results

        score_many(PAM13, codes, provider=demo)  # warm-up: compiles the masks that occur
        score_many(PAM13, codes, provider=rasch)
        many_results = {
            "score_many(demo)": summary(
                timed(lambda: score_many(PAM13, codes, provider=demo), args.repeats), 1.0, 3
            ),
            "score_many(rasch)": summary(
                timed(lambda: score_many(PAM13, codes, provider=rasch), args.repeats), 1.0, 3
            ),
        }
        for name, fig in many_results.items():
            print(
                f"{name + f' x {args.n:,}':45} {fig['best']:8.3f} s best, "
                f"{fig['median']:8.3f} s median"
            )
        results["many_s"] = many_results
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
