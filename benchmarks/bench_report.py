"""Benchmark: ``pamlib report`` on a large scored table — wall time and peak memory.

Writes a synthetic scored table of ``--rows`` rows as Parquet (what ``pamlib score -o
scored.parquet`` writes: demo scores, about three assessments per patient a few months apart,
twenty sites), then runs ``pamlib report`` on it in a fresh process ``--repeat`` times, with the
per-patient CSV and grouped by site, and reports the best and median wall time and the peak
resident memory (``ru_maxrss`` from ``wait4``). Memory that grows with the cohort shows up as a
peak that grows with ``--rows``; run at 1M and 10M rows to see it. Figures for the documentation
come from this script only.

Usage::

    python benchmarks/bench_report.py                   # 1M rows
    python benchmarks/bench_report.py --rows 10000000 --repeat 1
    python benchmarks/bench_report.py --rows 10000000 --keep bench-data   # generate once, reuse
    python benchmarks/bench_report.py --rows 10000000 --keep bench-data --repeat 0 --stages
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_csv import run  # one child timed for wall time and peak memory

_BLOCK = 1_000_000


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """A scored table of ``rows`` rows, written block by block (memory stays bounded)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pamlib.tables.scored import scored_schema

    schema = scored_schema(["site"])
    rng = np.random.default_rng(seed)
    start = np.datetime64("2023-01-02")
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(0, rows, _BLOCK):
            n = min(_BLOCK, rows - first)
            index = np.arange(first, first + n)
            patient = index // 3  # about three assessments each, in order
            visit = index % 3
            days = (patient % 365) + visit * rng.integers(90, 200, n)
            score = np.round(rng.normal(58 + visit * 2.5, 12, n).clip(0, 100), 1)
            level = np.select([score <= 47.0, score <= 55.1, score <= 67.0], [1, 2, 3], 4)
            scored = rng.random(n) > 0.02
            columns = {
                "assessment_id": pa.array(np.char.add("A", index.astype(str))),
                "patient_id": pa.array(np.char.add("P", patient.astype(str))),
                "assessed_on": pa.array(start + days.astype("timedelta64[D]")),
                "instrument": pa.array(np.full(n, "PAM-13")),
                "status": pa.array(np.where(scored, "scored", "not-scored")),
                "n_answered": pa.array(np.where(scored, 13, 5).astype(np.int8)),
                "score": pa.array(score, mask=~scored),
                "level": pa.array(level.astype(np.int8), mask=~scored),
                "cutpoint_set": pa.array(np.full(n, "current")),
                "flags": pa.array([[] for _ in range(n)], pa.list_(pa.string())),
                "provider": pa.array(np.full(n, "demo")),
                "provider_version": pa.array(np.full(n, "1")),
                "calibration_id": pa.array(np.full(n, "pamlib-demo-synthetic")),
                "demo": pa.array(np.ones(n, dtype=bool)),
                "site": pa.array(np.char.add("site-", (patient % 20).astype(str))),
            }
            arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))


#: The stages ``--stages`` measures: (module, function) as the report calls them.
_STAGES = (
    ("pamlib.reporting._report", "load_scored"),
    ("pamlib.reporting._report", "link_trajectories"),
    ("pamlib.reporting._report", "nqf2483"),
    ("pamlib.reporting._report", "summarise"),
    ("pamlib.reporting._report", "report_context"),
    ("pamlib.reporting", "write_html"),
    ("pamlib.reporting", "write_json"),
    ("pamlib.reporting", "write_patients_csv"),
)


def _memory() -> dict[str, float]:
    """Resident memory now and its peak since the last reset, in MiB (Linux)."""
    found = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                found[key] = int(value.split()[0]) / 1024
    return found


def stages(argv: list[str]) -> None:
    """Run ``pamlib report`` in this process and print each stage's peak resident memory:
    the peak is reset as a stage starts (``/proc/self/clear_refs``), so each figure is that
    stage's own, what it holds from earlier stages included. Linux only."""
    import functools
    import importlib

    from pamlib.cli import main as cli

    def measured(name: str, run: Any) -> Any:
        @functools.wraps(run)
        def stage(*args: Any, **kwargs: Any) -> Any:
            start = _memory()["VmRSS"]
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")  # reset the peak
            began = time.perf_counter()
            try:
                return run(*args, **kwargs)
            finally:
                now = _memory()
                print(
                    f"  {name:<20} start {start:5.0f}  peak {now['VmHWM']:5.0f}  "
                    f"end {now['VmRSS']:5.0f} MiB  {time.perf_counter() - began:6.2f} s",
                    flush=True,
                )

        return stage

    for module, name in _STAGES:
        target = importlib.import_module(module)
        setattr(target, name, measured(name, getattr(target, name)))
    cli(argv)


def main() -> int:
    if sys.argv[1:2] == ["--stages-of"]:  # the child of --stages
        stages(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="use (and keep) this folder")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also run each report once in this process, printing each stage's peak memory",
    )
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = Path(args.keep)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pamlib-bench-")))
        source = folder / f"scored-{args.rows}.parquet"
        if not source.exists():  # a kept table is generated once (the same seed, the same rows)
            partial = source.with_suffix(".partial")
            generate(partial, args.rows)
            partial.replace(source)
        print(
            f"{args.rows:,} scored rows ({source.stat().st_size / 2**20:.0f} MiB Parquet); "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}; {args.repeat} rounds"
        )
        report = [sys.executable, "-m", "pamlib", "report", str(source)]
        commands = {
            "report (HTML + JSON)": [
                *report,
                *("-o", str(folder / "r.html"), "--json", str(folder / "r.json")),
            ],
            "report --patients --group-by site": [
                *report,
                *("-o", str(folder / "g.html"), "--patients", str(folder / "p.csv")),
                *("--group-by", "site"),
            ],
        }
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, argv in commands.items():
                results[name].append(run(argv))
        if args.stages:  # each in a fresh process, as the timed runs
            for name, argv in commands.items():
                print(f"{name}, stage by stage (peak resident memory of each stage):", flush=True)
                child = [sys.executable, __file__, "--stages-of", *argv[3:]]
                subprocess.run(child, check=True, stderr=subprocess.DEVNULL)
        for name, runs in results.items():
            if not runs:  # --repeat 0
                continue
            times = sorted(t for t, _ in runs)
            peak = max(m for _, m in runs)
            print(
                f"{name:<36} best {times[0]:6.2f} s  median {statistics.median(times):6.2f} s  "
                f"peak RSS {peak / 2**20:5.0f} MiB"
            )
        # Times are upper bounds on a busy machine: say how busy it was by the end too.
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
