"""Benchmark: ``pamlib score`` over a large canonical PAM-13 CSV, against pyarrow alone.

Writes a synthetic canonical PAM-13 export of ``--rows`` rows (default 1,000,000) into a
temporary folder, then times, each in a fresh process and ``--repeat`` times:

* the baseline: pyarrow reads the file and writes a CSV with as many columns as pamlib's scored
  output — once with pyarrow's defaults (it infers column types), once reading every column as
  text (the least work pyarrow can do, and what pamlib's reader asks of it);
* ``pamlib score FILE --provider NAME -o OUT.csv --threads N`` end to end (read, check, score,
  level, write CSV and rejects), for each N of ``--threads`` (default: 1, 2 and every core
  available; a count that equals another is run once).

With ``--write-floor`` it also times writing as many bytes as pamlib's output holds, through
pamlib's own output (:class:`pamlib.formats.guard.AtomicTarget`, which makes the file durable
with ``fsync`` before naming it), and as many as the baseline's to a plain file (pyarrow's
writer does not ``fsync``), and nothing else: what the machine charges for each output alone;
and the inferred baseline once more with its output made durable (``fsync``) as pamlib's is.

Each round runs the commands in turn, starting one command later than the round before.
Before each timed run the previous outputs are removed and pending writes flushed to disk
(untimed), so that no command pays for another's data. Reports the best and median wall time
of each, their ratios (median of the rounds' ratios, and best against best; and of the median
processor times, which the machine's load barely moves), each process's peak resident memory
(``ru_maxrss`` from ``wait4``), and the one-minute load average before every round: on a
shared machine a high load makes every figure a floor. The file is generated in a separate
process so that this one stays small: Linux carries a parent's peak memory over into the
children it starts. The first line says what kind of file system the folder is on: with
``--keep`` on a folder in memory (``tmpfs``, such as ``/dev/shm`` on Linux) no command waits on
the disk, and the ratios are those of the work alone. Figures for the documentation come from
this script only.

``--callgrind`` counts instructions instead of timing: ``pamlib score --threads 1`` and the
all-text baseline, each under valgrind's callgrind on the file and on its first two rows (one
OpenBLAS thread, a fixed hash seed), and prints start-up, work per row beyond it and the
totals, with pamlib's as a multiple of the baseline's. The machine's load does not move these
counts; they take several minutes a million rows.

Usage::

    python benchmarks/bench_csv.py                       # 1M rows, raw-sum provider
    python benchmarks/bench_csv.py --provider demo        # when the demo provider is installed
    python benchmarks/bench_csv.py --provider demo --threads 1,2,all   # the default counts
    python benchmarks/bench_csv.py --rows 10000000 --repeat 1   # flat-memory run
    python benchmarks/bench_csv.py --rows 10000000 --keep bench-data   # generate once, reuse
    python benchmarks/bench_csv.py --provider demo --callgrind   # instructions, not times
    python benchmarks/bench_csv.py --provider demo --recommend --skip-baseline   # tailored
    python benchmarks/bench_csv.py --provider demo --write-floor   # what writing alone costs
    python benchmarks/bench_csv.py --provider demo --keep /dev/shm/pamlib-bench   # no disk
    python benchmarks/bench_csv.py --provider demo --rejected --skip-baseline   # all rejected
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
import time
from pathlib import Path

#: Columns in pamlib's scored CSV for a canonical input: 19 standard, reason, site.
OUTPUT_COLUMNS = 21
#: The most pamlib may take, as a multiple of each baseline (median of the rounds' ratios).
TARGETS = {"inferred": 1.2, "text": 1.6}
PIECE = 250_000

BASELINE = """
import sys
import pyarrow as pa, pyarrow.csv as csv
src, dst, n_out, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "text":  # every column as text: the least work pyarrow can do
    names = open(src, encoding="utf-8").readline().rstrip("\\n").split(",")
    convert = csv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=False)
    table = csv.read_csv(src, convert_options=convert)
else:  # pyarrow's defaults: it infers column types
    table = csv.read_csv(src)
cols = [table.column(i % table.num_columns) for i in range(n_out)]
out = pa.table(cols, names=[f"c{i}" for i in range(n_out)])
if len(sys.argv) > 5:  # durable, as pamlib writes: then fsync before it counts as written
    import os
    with open(dst, "wb") as f:
        csv.write_csv(out, f)
        f.flush()
        os.fsync(f.fileno())
else:
    csv.write_csv(out, dst)
"""

WRITE = """
import sys
from pamlib.formats.guard import AtomicTarget
dst, size, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
piece = bytes(range(256)) * 1024  # 256 KiB, about what pyarrow's writer hands over at a time
# pamlib's own output path (early writeback, fsync, rename), or a plain file as pyarrow writes
target = AtomicTarget(dst) if how == "pamlib" else None
out = target.stream if target is not None else open(dst, "wb")
while size > 0:
    size -= out.write(piece[: min(size, len(piece))])
if target is not None:
    target.commit()
else:
    out.close()
"""


def write_cohort(path: Path, rows: int) -> None:
    """A canonical PAM-13 CSV of exactly ``rows`` rows, made with :mod:`pamlib.synthetic` in
    pieces (unique ids throughout) and written with pyarrow."""
    import attrs
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from pamlib.synthetic import CANONICAL_COLUMNS, synthetic_cohort

    cells = np.array(["", "NA", "1", "2", "3", "4"])
    header = [*CANONICAL_COLUMNS, *(f"q{i:02d}" for i in range(1, 14))]
    done = 0
    with path.open("wb") as f:
        f.write((",".join(header) + "\n").encode())
        seed = 0
        while done < rows:
            n_patients = int(min(PIECE, rows - done) / 1.55) + 10  # ~1.6 assessments each
            cohort = synthetic_cohort(n_patients, seed=2016 + seed)
            take = min(len(cohort), rows - done)
            ids = np.char.add("A", np.arange(done, done + take).astype(str))
            patients = np.char.add(f"S{seed}-", cohort.patient_id[:take])
            cohort = attrs.evolve(
                cohort,
                assessment_id=ids,
                patient_id=patients,
                nhs_number=cohort.nhs_number[:take],
                assessed_on=cohort.assessed_on[:take],
                site=cohort.site[:take],
                codes=cohort.codes[:take],
            )
            columns = {
                "patient_id": pa.array(cohort.patient_id),
                "nhs_number": pa.array(cohort.nhs_number),
                "assessment_id": pa.array(cohort.assessment_id),
                "assessed_on": pa.array(cohort.assessed_on).cast(pa.string()),
                "instrument": pa.array(np.full(take, cohort.instrument.id)),
                "site": pa.array(cohort.site),
            }
            for k in range(13):
                columns[f"q{k + 1:02d}"] = pa.array(cells[cohort.codes[:, k] + 1])
            pacsv.write_csv(
                pa.table(columns),
                f,
                pacsv.WriteOptions(include_header=False, quoting_style="none"),
            )
            done += take
            seed += 1


def write_rejected(source: Path, path: Path) -> None:
    """``source`` with every record's ``assessed_on`` made an impossible date (month 13), so that
    ``pamlib score`` rejects every record: what checking, wording and writing rejects costs."""
    with (
        source.open(encoding="utf-8", newline="") as fin,
        path.open("w", encoding="utf-8", newline="") as fout,
    ):
        header = fin.readline()
        fout.write(header)
        column = header.rstrip("\r\n").split(",").index("assessed_on")
        for line in fin:  # the generated export holds no quoted field
            fields = line.split(",")
            fields[column] = fields[column][:5] + "13" + fields[column][7:]
            fout.write(",".join(fields))


def run(argv: list[str]) -> tuple[float, int]:
    """Wall time (s) and peak resident memory (bytes) of one child process."""
    elapsed, peak, _ = run_timed(argv)
    return elapsed, peak


def run_timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, int, float]:
    """Wall time (s), peak resident memory (bytes) and processor time (user + system, s, over
    every thread) of one child process. On a shared machine the processor time says what work
    a command did whatever the load; the wall time what a user waits."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode() if child.stderr else ""
    if child.returncode not in ok:
        raise SystemExit(f"{argv[:4]} failed ({child.returncode}):\n{err}")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def settle(outputs: list[Path]) -> None:
    """Before each timed run, untimed: remove the previous runs' outputs and write every
    file's pending data to disk. Each command then starts from the same state — no earlier
    run's data still being written, no earlier output to delete (on a file system mounted with
    ``discard`` deleting a 250 MB file takes tens of milliseconds) — whichever ran before."""
    for path in outputs:
        path.unlink(missing_ok=True)
    if hasattr(os, "sync"):
        os.sync()


def filesystem(folder: Path) -> str:
    """The kind of file system ``folder`` is on (``ext4``, ``tmpfs``, …), where the system says:
    a folder in memory takes the disk out of the figures."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown file system"
    where, kind = "", "unknown file system"
    resolved = str(folder.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(where):
            where, kind = point, fields[2]
    return kind


def thread_counts(spec: str) -> list[int]:
    """``1,2,all`` as counts of threads, in order, each once (``all``: the cores available)."""
    from pamlib._workers import available_cores

    counts: list[int] = []
    for word in spec.split(","):
        n = available_cores() if word.strip() == "all" else int(word)
        if n not in counts:
            counts.append(n)
    return counts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--provider", default="raw-sum")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=None)
    parser.add_argument(
        "--threads", default="1,2,all", help="thread counts to time pamlib with (default 1,2,all)"
    )
    parser.add_argument("--keep", metavar="DIR", help="use (and keep) this folder")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--recommend", action="store_true", help="time pamlib score --recommend (tailored output)"
    )
    parser.add_argument(
        "--write-floor",
        action="store_true",
        help="also time writing as many bytes as each output holds, and nothing else",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions (valgrind) of one thread and the all-text baseline instead",
    )
    parser.add_argument(
        "--rejected",
        action="store_true",
        help="make every record's date impossible, so that pamlib rejects every record",
    )
    parser.add_argument("--generate-only", metavar="FILE", help=argparse.SUPPRESS)
    return parser.parse_args()


def prepare_source(folder: Path, rows: int, *, rejected: bool) -> Path:
    """The benchmark's export of ``rows`` rows in ``folder``, generated in a separate process
    unless kept from before; with ``rejected``, its copy that pamlib rejects whole (then
    ``pamlib score`` exits 1, nothing being scored, which the timing accepts)."""
    source = folder / f"pam13-{rows}.csv"
    if not source.exists():
        t = time.perf_counter()
        generate = [sys.executable, __file__, "--rows", str(rows), "--generate-only"]
        subprocess.run([*generate, str(source)], check=True)
        print(f"wrote {source.name} ({source.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.0f} s")  # fmt: skip
    if not rejected:
        return source
    path = folder / f"pam13-{rows}-rejected.csv"
    if not path.exists():
        write_rejected(source, path)
    return path


def main() -> int:
    args = parse_args()
    if args.generate_only:
        write_cohort(Path(args.generate_only), args.rows)
        return 0

    folder = Path(args.keep or tempfile.mkdtemp(prefix="pamlib-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = prepare_source(folder, args.rows, rejected=args.rejected)
    size = source.stat().st_size
    import pyarrow

    from pamlib._workers import available_cores

    print(
        f"{args.rows:,} rows, {size / 1e6:.0f} MB; Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}; {os.cpu_count()} CPUs ({available_cores()} available), "
        f"load {os.getloadavg()[0]:.1f}; {args.repeat} rounds; files on {filesystem(folder)}"
    )

    # pip compiles a package's modules when it installs it; a checkout (or a run with
    # PYTHONDONTWRITEBYTECODE) would compile them again in every timed process.
    import compileall

    import pamlib

    compileall.compile_dir(Path(pamlib.__file__).parent, quiet=1)

    if args.callgrind:
        count_instructions(source, folder, args.provider, args.rows)
        if not args.keep:
            shutil.rmtree(folder)
        return 0

    commands: dict[str, list[str]] = {}
    for threads in thread_counts(args.threads):
        score = [sys.executable, "-m", "pamlib", "score", str(source), "--provider",
                 args.provider, "-o", str(folder / "scored.csv"), "--rejects",
                 str(folder / "rejects.csv"), "--no-progress",
                 "--threads", str(threads)]  # fmt: skip
        if args.chunk_rows:
            score += ["--chunk-rows", str(args.chunk_rows)]
        if args.recommend:
            score.append("--recommend")
        commands[f"pamlib score --threads {threads}"] = score
    ours = list(commands)
    if not args.skip_baseline:
        for mode in ("text", "inferred"):
            commands[f"pyarrow read ({mode}) + write"] = [
                sys.executable, "-c", BASELINE, str(source), str(folder / "baseline.csv"),
                str(OUTPUT_COLUMNS), mode,
            ]  # fmt: skip
    outputs = [folder / n for n in ("scored.csv", "rejects.csv", "baseline.csv")]
    if args.write_floor:
        add_write_floors(commands, ours, folder, outputs)
        if not args.skip_baseline:  # the same baseline, its output made durable as pamlib's is
            commands["pyarrow read (inferred) + write + fsync"] = [
                *commands["pyarrow read (inferred) + write"], "fsync"
            ]  # fmt: skip
    # Interleaved rounds, so that every command meets the same load on a shared machine.
    results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in commands}
    loads = []
    names = list(commands)
    for k in range(args.repeat):
        loads.append(os.getloadavg()[0])
        # Each round starts with another command: the first run after a pause can meet a
        # slower disk, and no command should always be the one that meets it.
        for name in names[k % len(names) :] + names[: k % len(names)]:
            settle(outputs)
            ok = (0, 1) if args.rejected and name in ours else (0,)
            results[name].append(run_timed(commands[name], ok))
    loads.append(os.getloadavg()[0])
    print("load average (1 min) before each round and at the end: "
          + ", ".join(f"{x:.1f}" for x in loads))  # fmt: skip
    report(results, ours)
    if not args.keep:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return 0


def instructions(argv: list[str]) -> int:
    """Instructions one child process executes, counted by callgrind as ``bench_import.py``
    counts them, with one OpenBLAS thread (its idle threads spin for a count that varies from
    run to run) and a fixed hash seed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_import", Path(__file__).with_name("bench_import.py")
    )
    assert spec is not None
    assert spec.loader is not None
    bench_import = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_import)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return int(bench_import.instructions(argv, env, Path.cwd()))


def count_instructions(source: Path, folder: Path, provider: str, rows: int) -> None:
    """Instructions of ``pamlib score --threads 1`` and of the all-text baseline, on the file
    and on its first two rows: start-up, work per row beyond it, totals and their ratio."""
    tiny = folder / "first-two-rows.csv"  # never the source, whatever its rows
    with source.open("rb") as f:
        tiny.write_bytes(b"".join(f.readline() for _ in range(3)))

    def score(src: Path) -> list[str]:
        return [sys.executable, "-m", "pamlib", "score", str(src), "--provider", provider,
                "-o", str(folder / "scored.csv"), "--rejects", str(folder / "rejects.csv"),
                "--no-progress", "--threads", "1"]  # fmt: skip

    def baseline(src: Path) -> list[str]:
        return [sys.executable, "-c", BASELINE, str(src), str(folder / "baseline.csv"),
                str(OUTPUT_COLUMNS), "text"]  # fmt: skip

    counted: dict[str, tuple[int, int]] = {}
    for name, make in (
        ("pamlib score --threads 1", score),
        ("pyarrow read (text) + write", baseline),
    ):
        counted[name] = (instructions(make(tiny)), instructions(make(source)))
    for name, (start, whole) in counted.items():
        print(f"{name:30s} start-up {start / 1e6:8,.1f} M  per row {(whole - start) / rows:8,.0f}"
              f"  in all {whole / 1e6:10,.1f} M")  # fmt: skip
    (ours_start, ours), (base_start, base) = counted.values()
    print(f"pamlib ÷ pyarrow (text): per row {(ours - ours_start) / (base - base_start):.2f}, "
          f"in all {ours / base:.2f} (target {TARGETS['text']})")  # fmt: skip
    for path in (tiny, *(folder / n for n in ("scored.csv", "rejects.csv", "baseline.csv"))):
        path.unlink(missing_ok=True)


def add_write_floors(
    commands: dict[str, list[str]], ours: list[str], folder: Path, outputs: list[Path]
) -> None:
    """Add a command writing as many bytes as pamlib's output (and the baseline's) holds.

    Each output's size comes from one untimed run of the first pamlib command and of each
    baseline. pamlib's floor writes through pamlib's own output (:class:`AtomicTarget`: early
    writeback, ``fsync``, rename), the baseline's to a plain file as pyarrow's writer does."""
    sizes = {}
    for name in (ours[0], *(n for n in commands if n not in ours)):
        settle(outputs)
        run_timed(commands[name])
        made = folder / ("scored.csv" if name in ours else "baseline.csv")
        sizes[name] = made.stat().st_size
    floor = folder / "floor.bin"
    outputs.append(floor)
    for name, size in sizes.items():
        mode = "text" if "(text)" in name else "inferred"
        label = "as pamlib's output" if name in ours else f"as pyarrow's, {mode}"
        how = "pamlib" if name in ours else "plain"
        commands[f"write {size / 1e6:.0f} MB ({label})"] = [
            sys.executable, "-c", WRITE, str(floor), str(size), how
        ]  # fmt: skip


def report(results: dict[str, list[tuple[float, int, float]]], ours: list[str]) -> None:
    """Each command's times and peak memory; each pamlib run against each baseline."""
    for name, runs in results.items():
        times = sorted(t for t, _, _ in runs)
        peak = max(m for _, m, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        listed = ", ".join(f"{t:.2f}" for t, _, _ in runs)
        print(f"{name:<40} best {times[0]:5.2f} s  median {statistics.median(times):5.2f} s  "
              f"CPU {cpu:5.2f} s  peak RSS {peak / 2**20:4.0f} MiB  (runs: {listed})")  # fmt: skip
    for name, runs in results.items():
        if name in ours or not name.startswith("pyarrow"):
            continue
        mode = "text" if "(text)" in name else "inferred"
        for mine in ours:
            ratios = [a[0] / b[0] for a, b in zip(results[mine], runs, strict=True)]
            best = min(r[0] for r in results[mine]) / min(r[0] for r in runs)
            cpu = statistics.median(r[2] for r in results[mine]) / statistics.median(
                r[2] for r in runs
            )
            goal = "both outputs durable" if "fsync" in name else f"target: at most {TARGETS[mode]}"
            print(f"{mine} / {name}: median of rounds {statistics.median(ratios):.2f}, "
                  f"best/best {best:.2f}  ({goal}); processor time {cpu:.2f}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
