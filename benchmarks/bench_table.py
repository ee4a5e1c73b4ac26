"""Benchmark: ``pamlib.score_table`` on a table already in memory, against scoring the same rows
from a CSV file.

Builds a synthetic canonical PAM-13 table of ``--rows`` rows (default 1,000,000) as Arrow
string columns — what a service or a notebook holds after reading an export — and times, each
in a fresh process and ``--repeat`` times, interleaved:

* ``score_table(table, provider=NAME)`` in memory (the table is built first and not timed; the
  provider is warmed on a few rows first, so only the scoring of the table is timed);
* the same through a :class:`~pamlib.pipeline.TableScorer` fed batches of 65,536 rows;
* ``pamlib score`` on the same rows written as CSV, end to end, for comparison.

Reports the best and median wall time of each, rows per second, and each process's peak
resident memory (``ru_maxrss`` from ``wait4``: the table itself included). Figures for the
documentation come from this script only.

Usage::

    python benchmarks/bench_table.py                       # 1M rows, demo provider
    python benchmarks/bench_table.py --rows 200000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent

CHILD = """
import json, sys, time
import pyarrow as pa, pyarrow.csv as pacsv
import pamlib
source, mode, provider = sys.argv[1], sys.argv[2], sys.argv[3]
names = open(source, encoding="utf-8").readline().rstrip("\\n").split(",")
convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                               strings_can_be_null=False)
table = pacsv.read_csv(source, convert_options=convert)  # text columns, as an export holds
pamlib.score_table(table.slice(0, 1000), provider=provider)  # warm: plugins, engine tables
start = time.perf_counter()
if mode == "table":
    run = pamlib.score_table(table, provider=provider)
else:
    scorer = pamlib.TableScorer(provider=provider)
    n = 0
    for batch in table.to_batches(max_chunksize=65_536):
        n += scorer.score(batch).summary.n_read
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed}))
"""


def run(argv: list[str]) -> tuple[float, int, str]:
    """Wall time (s), peak resident memory (bytes) and standard output of one child."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    out = child.stdout.read().decode() if child.stdout else ""
    err = child.stderr.read().decode() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:4]} failed:\n{err}")
    return elapsed, usage.ru_maxrss * 1024, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--provider", default="demo")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="pamlib-bench-"))
    source = folder / f"pam13-{args.rows}.csv"
    generate = [sys.executable, str(HERE / "bench_csv.py"), "--rows", str(args.rows)]
    subprocess.run([*generate, "--generate-only", str(source)], check=True)
    print(
        f"{args.rows:,} rows; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; {args.repeat} rounds"
    )
    child = [sys.executable, "-c", CHILD, str(source)]
    commands = {
        "score_table (one table)": [*child, "table", args.provider],
        "TableScorer (64k-row batches)": [*child, "batches", args.provider],
    }
    commands["pamlib score (CSV file)"] = [
        *(sys.executable, "-m", "pamlib", "score", str(source), "--provider", args.provider),
        *("-o", str(folder / "scored.csv"), "--rejects", str(folder / "rejects.csv")),
        "--no-progress",
    ]
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, argv in commands.items():
            wall, peak, out = run(argv)
            timed = json.loads(out)["seconds"] if out.strip().startswith("{") else wall
            results[name].append((timed, peak))
    for name, runs in results.items():
        times = sorted(t for t, _ in runs)
        peak = max(m for _, m in runs)
        print(
            f"{name:<32} best {times[0]:5.2f} s  median {statistics.median(times):5.2f} s  "
            f"{args.rows / times[0] / 1e6:4.2f} M rows/s  peak RSS {peak / 2**20:4.0f} MiB"
        )
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
