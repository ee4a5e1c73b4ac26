"""Benchmark: exports that are mostly rejects — wall time and peak memory.

Two cases where every other record is rejected, each in a fresh process:

* **appended**: ``pamlib score --provider demo`` on a synthetic export appended to itself
  (``--rows`` records, then the same records again: each of the second half repeats an
  assessment id), beside the same command on the export alone;
* **one batch**: :func:`pamlib.pipeline.score_table` on a pyarrow Table of ``--rows`` rows in
  one batch (as a DataFrame converts), every row carrying the same assessment id, so every row
  but the first is rejected and held in memory as the run's rejects table.

Reports the best and median wall time and the peak resident memory (``ru_maxrss``) of each.
Run it with ``PYTHONPATH`` pointing at another checkout's ``src`` to measure that code instead.
Figures for the documentation come from this script only.

Usage::

    python benchmarks/bench_rejects.py                  # 200,000 rows, 3 rounds
    python benchmarks/bench_rejects.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_csv import run

#: The one-batch case, run in a child so that its peak memory is its own.
_ONE_BATCH = """
import sys
import numpy as np, pyarrow as pa
from pamlib.pipeline import score_table
n = int(sys.argv[1])
rng = np.random.default_rng(1)
columns = {
    "assessment_id": pa.array(np.full(n, "A1")),
    "patient_id": pa.array(np.char.add("P", np.arange(n).astype(str))),
    "assessed_on": pa.array(np.full(n, "2024-03-01")),
    **{f"q{k:02d}": pa.array(rng.integers(1, 5, n).astype(str)) for k in range(1, 14)},
}
run = score_table(pa.table(columns), provider="demo", instrument="PAM-13")
assert run.rejects.num_rows == n - 1, run.summary.reconciliation
"""


def appended(source: Path, target: Path) -> None:
    """``source`` with its records written twice under one header, copied a block at a time
    (this process's memory is counted in its children's peaks)."""
    with source.open("rb") as f, target.open("wb") as out:
        header = f.readline()
        out.write(header)
        shutil.copyfileobj(f, out)
        f.seek(len(header))
        shutil.copyfileobj(f, out)


def outputs(folder: Path, name: str) -> list[str]:
    return ["-o", str(folder / f"{name}.csv"), "--rejects", str(folder / f"{name}.rejects.csv")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pamlib = [sys.executable, "-m", "pamlib"]
    with tempfile.TemporaryDirectory(prefix="pamlib-bench-rejects-") as tmp:
        folder = Path(tmp)
        once, twice = folder / "export.csv", folder / "appended.csv"
        # Made in a child, as bench_csv.py does: a child's peak memory counts its parent's at
        # the fork, and making the export takes several hundred MiB.
        generate = [sys.executable, str(Path(__file__).with_name("bench_csv.py"))]
        subprocess.run(
            [*generate, "--rows", str(args.rows), "--generate-only", str(once)], check=True
        )
        appended(once, twice)
        score = [*pamlib, "score", "--provider", "demo", "--no-progress"]
        cases = {
            "pamlib score, the export": [*score, str(once), *outputs(folder, "once")],
            "pamlib score, appended to itself": [*score, str(twice), *outputs(folder, "twice")],
            "score_table, one batch, one id": [sys.executable, "-c", _ONE_BATCH, str(args.rows)],
        }
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
        loads = [os.getloadavg()[0]]
        for _ in range(args.repeat):  # interleaved rounds: a slow spell touches every case
            for name, argv in cases.items():
                results[name].append(run(argv))
            loads.append(os.getloadavg()[0])
    print(
        f"{args.rows:,} rows (appended: {2 * args.rows:,} records, {args.rows:,} repeats); "
        f"Python {platform.python_version()}; {os.cpu_count()} CPUs; {args.repeat} rounds; "
        f"load average (1 min) before and after each round: " + ", ".join(f"{x:.1f}" for x in loads)
    )
    for name, runs in results.items():
        times = [t for t, _ in runs]
        peak = max(p for _, p in runs) / 2**20
        print(
            f"{name:36} best {min(times):6.2f} s  median {statistics.median(times):6.2f} s  "
            f"peak RSS {peak:7.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
