"""How long ``import pamlib`` takes in a fresh interpreter (target: under 0.1 s), and with
``--startup`` what ``pamlib score`` costs before and after the rows.

Run: ``python benchmarks/bench_import.py [--json FILE]``. Reports the best and median of
repeated cold starts, minus the cost of starting an empty interpreter.

``--startup`` also times, in interleaved rounds and each in a fresh process, ``pamlib score`` on a
two-row export with the demo provider (reading, scoring and writing two rows is next to nothing:
the rest is starting up), on the same rows with dates written day first and one more rejected
(``messy``: the paths a clean file does not take), ``pamlib --help``, and ``pamlib report`` of
the scored two rows (HTML, JSON summary and per-patient CSV), against
``python -c "import pyarrow.csv"``, the least any CSV tool built on pyarrow pays. Wall and
processor time (user + system, from ``wait4``) of each, best and median; on a shared machine the
processor time says what work a start-up did whatever the load.
``--compare SRC`` runs a second ``pamlib score`` with ``PYTHONPATH=SRC`` in the same rounds
(another checkout's ``src`` folder), to measure a change against the code before it.
``--callgrind`` also counts, once each, the instructions every command executes under valgrind's
callgrind (slow, but the same count however busy the machine is).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: A canonical PAM-13 export of two made-up rows (answer codes only: no item wording).
TINY_EXPORT = (
    "patient_id,nhs_number,assessment_id,assessed_on,instrument,site,"
    + ",".join(f"q{k:02d}" for k in range(1, 14))
    + "\nS0-P000000,9997777166,A0,2024-08-09,PAM-13,North Practice,NA,4,2,3,3,1,2,2,2,3,NA,1,2"
    + "\nS0-P000000,9997777166,A1,2025-06-03,PAM-13,North Practice,2,3,3,2,2,2,3,2,2,2,3,2,1\n"
)
#: The same rows with dates written day first, as many exports write them, and a third row
#: rejected: the paths a clean file does not take (pyarrow's own conversions there import pandas
#: wherever it is installed, unless pamlib builds its arrays itself).
TINY_MESSY_EXPORT = (
    TINY_EXPORT.replace("2024-08-09", "09/08/2024").replace("2025-06-03", "03/06/2025")
    + "S0-P000001,9997777166,A2,31/02/2025,PAM-13,North Practice,2,3,3,2,2,2,3,2,2,2,3,2,1\n"
)


def cold(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and processor time (s) of one child process; it must succeed."""
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    err = child.stderr.read().decode() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed:\n{err}")
    return elapsed, usage.ru_utime + usage.ru_stime


def instructions(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Instructions one child process executes, counted by callgrind (threads included)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--callgrind needs valgrind installed")
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind reported no count for {argv}:\n{done.stderr}")
    return int(found.group(1))


def startup(repeat: int, compare: str | None, callgrind: bool = False) -> dict[str, object]:
    """Interleaved rounds of pyarrow's import and ``pamlib score`` on a two-row file."""
    env = dict(os.environ)
    # Compiled modules are cached as after an installation (a fresh checkout has none yet).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    score = [sys.executable, "-m", "pamlib", "score", "tiny.csv", "--provider", "demo"]
    runs: dict[str, tuple[list[str], dict[str, str]]] = {
        "import pyarrow.csv": ([sys.executable, "-c", "import pyarrow.csv"], env),
        "pamlib score": ([*score, "-o", "out.csv", "--no-progress"], env),
    }
    messy = [sys.executable, "-m", "pamlib", "score", "messy.csv", "--provider", "demo"]
    runs["pamlib score, messy"] = ([*messy, "-o", "out-messy.csv", "--no-progress"], env)
    runs["pamlib --help"] = ([sys.executable, "-m", "pamlib", "--help"], env)
    # the report of the rows "pamlib score" wrote (its untimed first run comes before this one's)
    report = [sys.executable, "-m", "pamlib", "report", "out.csv", "--json", "report.json"]
    runs["pamlib report"] = ([*report, "--patients", "patients.csv", "-o", "report.html"], env)
    if compare is not None:
        compared = {**env, "PYTHONPATH": compare}
        runs["pamlib score (compared)"] = (
            [*score, "-o", "out-compared.csv", "--no-progress"],
            compared,
        )
        runs["pamlib score, messy (compared)"] = (
            [*messy, "-o", "out-messy-compared.csv", "--no-progress"],
            compared,
        )
        runs["pamlib --help (compared)"] = ([sys.executable, "-m", "pamlib", "--help"], compared)
        runs["pamlib report (compared)"] = (
            [*report, "--patients", "patients-compared.csv", "-o", "report-compared.html"],
            compared,
        )
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    loads = []
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "tiny.csv").write_text(TINY_EXPORT, encoding="utf-8")
        (cwd / "messy.csv").write_text(TINY_MESSY_EXPORT, encoding="utf-8")
        for argv, run_env in runs.values():  # one untimed run each: compiled modules cached
            timed(argv, run_env, cwd)
        for _ in range(repeat):
            loads.append(os.getloadavg()[0])
            for name, (argv, run_env) in runs.items():
                times[name].append(timed(argv, run_env, cwd))
        counts = {
            name: instructions(argv, run_env, cwd)
            for name, (argv, run_env) in runs.items()
            if callgrind
        }
    result: dict[str, object] = {"load_average": [round(min(loads), 2), round(max(loads), 2)]}
    for name, pairs in times.items():
        walls, cpus = [w for w, _ in pairs], [c for _, c in pairs]
        entry: dict[str, float] = {
            "wall_best_s": round(min(walls), 4),
            "wall_median_s": round(statistics.median(walls), 4),
            "cpu_best_s": round(min(cpus), 4),
            "cpu_median_s": round(statistics.median(cpus), 4),
        }
        if name in counts:
            entry["instructions"] = counts[name]
        result[name] = entry
    base = times["import pyarrow.csv"]
    for name in runs:
        if name == "import pyarrow.csv":
            continue
        ratios = [w / b[0] for (w, _), b in zip(times[name], base, strict=True)]
        figures = result[name]
        assert isinstance(figures, dict)
        figures["wall_ratio_to_pyarrow_median"] = round(statistics.median(ratios), 2)
        if name in counts:
            figures["instructions_ratio_to_pyarrow"] = round(
                counts[name] / counts["import pyarrow.csv"], 2
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument(
        "--startup",
        action="store_true",
        help="also time 'pamlib score' on a two-row file against importing pyarrow.csv",
    )
    parser.add_argument(
        "--compare",
        metavar="SRC",
        help="with --startup: also run 'pamlib score' from this source folder (PYTHONPATH)",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="with --startup: also count each command's instructions under valgrind (slow)",
    )
    args = parser.parse_args()
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind installed")
    empty = [cold("pass") for _ in range(args.repeat)]
    full = [cold("import pamlib") for _ in range(args.repeat)]
    baseline = min(empty)
    result: dict[str, object] = {
        "import_best_s": round(min(full) - baseline, 4),
        "import_median_s": round(statistics.median(full) - baseline, 4),
        "interpreter_start_s": round(baseline, 4),
        "python": sys.version.split()[0],
    }
    for key, value in result.items():
        print(f"{key:22} {value}")
    if args.startup:
        figures = startup(args.repeat, args.compare, args.callgrind)
        print(f"load average {figures['load_average']}")
        for name, value in figures.items():
            if isinstance(value, dict):
                print(f"{name:24} " + "  ".join(f"{k} {v}" for k, v in value.items()))
        result["startup"] = figures
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
