"""How long ``import pamlib`` takes in a fresh interpreter (target: under 0.1 s).

Run: ``python benchmarks/bench_import.py [--json FILE]``. Reports the best and median of
repeated cold starts, minus the cost of starting an empty interpreter.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def cold(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    empty = [cold("pass") for _ in range(args.repeat)]
    full = [cold("import pamlib") for _ in range(args.repeat)]
    baseline = min(empty)
    result = {
        "import_best_s": round(min(full) - baseline, 4),
        "import_median_s": round(statistics.median(full) - baseline, 4),
        "interpreter_start_s": round(baseline, 4),
        "python": sys.version.split()[0],
    }
    for key, value in result.items():
        print(f"{key:22} {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
