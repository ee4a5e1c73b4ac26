"""Benchmark: pamlib's added cost on Spark over Spark's own CSV → Parquet job on the same file.

Writes a synthetic canonical PAM-13 export of ``--rows`` rows (a few rows bad on purpose, one
assessment id repeated), then for each number of local cores (``--cores``, default 1 and 2),
in a fresh process with its own ``local[N]`` session, times ``--repeat`` times, interleaved:

* **spark**: Spark reads the CSV (every column as text, malformed records kept, as
  :func:`pamlib.spark.read_export` reads it) and writes it as Parquet;
* **through Python**: the same read, every row sent to Python and back unchanged
  (``mapInArrow``), written as Parquet: what a job that lets Spark split the CSV and then
  works on its columns in Python costs at least;
* **lines**: the file read as lines of text (``spark.read.text``), each batch of lines split
  into columns in Python by pyarrow's CSV reader, written as Parquet: what a job that does the
  splitting in Python itself costs at least;
* **scored**: those lines, split the same way, checked and scored by pamlib
  (:class:`~pamlib.pipeline.TableScorer`, the demo provider, repeated ids tracked within each
  task), the scored columns written as Parquet: the core of a job built on lines, without its
  row numbers, rejects, counts or repeats across tasks;
* **ranges**: the same scored job with the lines read by Python instead: a Python data source
  whose partitions are ranges of the export's bytes as long as Spark's splits, each reading the
  lines that start in its range — what a job that read the files itself, with no line sent
  from the JVM and each task knowing its split, would save;
* **pamlib**: :func:`~pamlib.spark.read_export` (``multiLine`` off, so the file is split
  across tasks), :func:`~pamlib.spark.score` with the demo provider and global duplicate
  detection, and :meth:`~pamlib.spark.SparkRun.write` of the scored rows, the rejects and the
  summary as Parquet — the whole job, row numbering and the reconciled counts included. The
  benchmark's export holds one record a line, so :func:`~pamlib.spark.score` reads it as lines;
* **pamlib, split by Spark**: the same job with the records split by Spark's CSV reader, as
  :func:`~pamlib.spark.score` splits an export whose lines may not be its records;
* **pamlib, no pass**: the whole job with ``row_key="split"`` and ``duplicates="partition"``:
  no pass over the export before the job, each task keying its rows by their split and finding
  repeated ids among its own rows.

With ``--passes`` it also times the pass :func:`~pamlib.spark.score` runs before the job (the
rows of each split counted and the repeated assessment ids found, one shuffle) over the lines
and over the records Spark split, the row counts alone, and the lines of each split counted
from the text alone: what that pass's parts cost.

Reports the best and median wall time of each, pamlib's time as a multiple of Spark's, rows per
second and rows per second per core, and the load average before and after. Figures for the
documentation come from this script only. Needs the ``spark`` extra and Java 17+; without them
it says so and exits 0 (``make bench`` runs every script).

Usage::

    python benchmarks/bench_spark.py                     # 300,000 rows, 1 and 2 cores
    python benchmarks/bench_spark.py --rows 1000000 --repeat 3 --cores 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, os, shutil, sys, time, warnings
warnings.simplefilter("ignore", FutureWarning)
from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType
import pamlib.spark as ps

source, cores, repeat, work, partition_mb, cache_export, passes = sys.argv[1:8]
spark = (SparkSession.builder.master(f"local[{cores}]")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.shuffle.partitions", str(2 * int(cores)))
         .config("spark.sql.files.maxPartitionBytes", str(int(float(partition_mb) * 2**20)))
         .config("spark.driver.memory", "2g").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
header = open(source, encoding="utf-8").readline().rstrip("\\n").split(",")
schema = StructType([StructField(n, StringType()) for n in header]
                    + [StructField(ps.CORRUPT_COLUMN, StringType())])
options = ps._spark_options(False)

def spark_job(target):
    spark.read.options(**options).schema(schema).csv(source).write.parquet(target)

def _same(batches):
    yield from batches

def floor_job(target):  # every row Spark split sent to Python and back unchanged
    df = spark.read.options(**options).schema(schema).csv(source)
    df.mapInArrow(_same, df.schema).write.parquet(target)

header_line = ",".join(header)

def _table(data):  # whole lines' bytes split into columns of text by pyarrow
    import pyarrow as pa, pyarrow.csv as pcsv
    return pcsv.read_csv(
        pa.BufferReader(pa.py_buffer(data)),
        read_options=pcsv.ReadOptions(column_names=header, use_threads=False,
                                      block_size=max(1 << 20, len(data) + 1)),
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in header}, strings_can_be_null=False))

def _split(batches):  # each batch of lines joined again, then split into columns by pyarrow
    import pyarrow as pa, pyarrow.compute as pc
    for batch in batches:
        lines = batch.column(0).filter(pc.not_equal(batch.column(0), header_line))
        if len(lines) == 0:
            continue
        text = pc.binary_join(pa.ListArray.from_arrays([0, len(lines)], lines), "\\n")
        yield from _table(text[0].as_buffer().to_pybytes() + b"\\n").to_batches()

def lines_job(target):  # the file read as lines, split into columns in Python
    lines = spark.read.text(source)
    lines.mapInArrow(_split, StructType([StructField(n, StringType()) for n in header])
                     ).write.parquet(target)

def _scored_batches(batches):  # split lines checked and scored by pamlib: its scored columns
    from pamlib.pipeline import TableScorer
    scorer = TableScorer(provider="demo", duplicates="track")  # one a task: ids seen in it
    for batch in batches:
        yield from scorer.score(batch).scored.to_arrow().to_batches()

def _scored(batches):
    yield from _scored_batches(_split(batches))

def _scored_schema():
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema
    from pamlib.pipeline import TableScorer
    probe = TableScorer(provider="demo", duplicates="track")
    probe.score(pa.table({n: pa.array([], pa.string()) for n in header}))
    return from_arrow_schema(probe.output_schema())

def scored_job(target):  # lines split, checked and scored in Python: no row numbers, no rejects
    spark.read.text(source).mapInArrow(_scored, _scored_schema()).write.parquet(target)

from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

class _Range(InputPartition):  # a range of the export's bytes, as long as Spark's splits
    def __init__(self, start, end):
        self.start, self.end = start, end

class _RangeReader(DataSourceReader):  # each range's lines read, split and scored in Python
    def partitions(self):
        size, step = os.path.getsize(source), int(float(partition_mb) * 2**20)
        return [_Range(s, min(s + step, size)) for s in range(0, size, step)]

    def read(self, part):  # the lines that start in the range
        with open(source, "rb") as f:
            if part.start:
                f.seek(part.start - 1)
                if f.read(1) != b"\\n":
                    f.readline()  # a line begun before the range is the range before's
            data = f.read(max(0, part.end - f.tell()))
            if data and not data.endswith(b"\\n"):
                data += f.readline()
        if part.start == 0:
            data = data[data.index(b"\\n") + 1:]  # the header
        # Spark's batch size, as the scored job above gets its lines
        yield from _scored_batches(_table(data).to_batches(max_chunksize=10_000))

class _RangeSource(DataSource):
    @classmethod
    def name(cls):
        return "pamlib_bench_ranges"

    def schema(self):
        return _scored_schema()

    def reader(self, schema):
        return _RangeReader()

spark.dataSource.register(_RangeSource)

def ranges_job(target):  # the scored job, its lines read by Python: no line sent from the JVM
    spark.read.format("pamlib_bench_ranges").load().write.parquet(target)

def pamlib_job(target):
    run = ps.score(ps.read_export(spark, source, multiline=False), provider="demo",
                   cache_export=cache_export == "1")
    summary = run.write(target)
    run.unpersist()
    return summary

def pamlib_split_keys_job(target):  # no pass: split keys, repeats found within each task
    run = ps.score(ps.read_export(spark, source, multiline=False), provider="demo",
                   duplicates="partition", row_key="split")
    summary = run.write(target)
    run.unpersist()
    return summary

def pamlib_spark_split_job(target):  # the same, the records split by Spark's CSV reader
    ps._READ_LINES = False
    try:
        return pamlib_job(target)
    finally:
        ps._READ_LINES = True

read = ps.read_export(spark, source, multiline=False)  # the header, once: not a pass
lines_used = ps.score(read, provider="demo")._job[1].lines is not None

def lines_pass(target):  # the pass score() runs first when it reads the export as lines
    from pamlib import _spark_lines
    shape = _spark_lines.LineShape(header_line=header_line, delimiter=",", n_fields=len(header),
                                   id_position=header.index("assessment_id"), multiline=False)
    _spark_lines.plan(_spark_lines.lines_frame(spark, source, multiline=False), shape)

def counting_pass(target):  # the pass score() runs first: rows per split, repeated ids
    ps._blocks_and_repeats(read, "assessment_id", tuple(header))

def row_counts(target):  # its row counts alone: the CSV read, rows counted per split
    from pyspark.sql import functions as sf
    read.groupBy(ps._FILE, ps._BLOCK).agg(sf.count(sf.lit(1)), sf.min(ps._SEQ)).collect()

def line_counts(target):  # lines counted per split from the text alone
    from pyspark.sql import functions as sf
    spark.read.text(source).groupBy(sf.col("_metadata.file_block_start")).count().collect()

pamlib_job(os.path.join(work, "warm"))  # JVM, workers, plugins: not timed
pamlib_spark_split_job(os.path.join(work, "warm-split"))
pamlib_split_keys_job(os.path.join(work, "warm-split-keys"))
floor_job(os.path.join(work, "warm-floor"))
lines_job(os.path.join(work, "warm-lines"))
scored_job(os.path.join(work, "warm-scored"))
ranges_job(os.path.join(work, "warm-ranges"))
times = {"spark": [], "floor": [], "lines": [], "scored": [], "ranges": [], "pamlib": [],
         "pamlib-split": [], "pamlib-split-keys": []}
summary = split_keys_summary = None
jobs = (("spark", spark_job), ("floor", floor_job), ("lines", lines_job), ("scored", scored_job),
        ("ranges", ranges_job), ("pamlib", pamlib_job), ("pamlib-split", pamlib_spark_split_job),
        ("pamlib-split-keys", pamlib_split_keys_job))
if passes == "1":
    jobs += (("counting", counting_pass), ("rows", row_counts), ("text", line_counts),
             ("lines-pass", lines_pass))
    for name, job in jobs[-4:]:
        times[name] = []
        job(None)  # not timed
for k in range(int(repeat)):
    for name, job in jobs:
        target = os.path.join(work, f"{name}-{k}")
        start = time.perf_counter()
        result = job(target)
        times[name].append(time.perf_counter() - start)
        if name == "pamlib":
            summary = result.reconciliation
        if name == "pamlib-split-keys":
            split_keys_summary = result.reconciliation
        if os.path.exists(target):  # the passes write nothing
            shutil.rmtree(target)
print(json.dumps({"times": times, "summary": summary, "lines_used": lines_used,
                  "split_keys_summary": split_keys_summary,
                  "partitions": spark.read.options(**options).schema(schema).csv(source)
                  .rdd.getNumPartitions()}))
spark.stop()
"""


def write_export(path: Path, rows: int, seed: int = 7) -> None:
    """A canonical PAM-13 export: synthetic ids, dates and answers; every 10,000th row bad."""
    import numpy as np

    rng = np.random.default_rng(seed)
    answers = rng.integers(1, 5, size=(rows, 13)).astype(str)
    days = rng.integers(0, 365, size=rows)
    header = "patient_id,assessment_id,assessed_on,instrument,site," + ",".join(
        f"q{k:02d}" for k in range(1, 14)
    )
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(header + "\n")
        for i in range(rows):
            date = np.datetime64("2024-01-01") + int(days[i])
            aid = "A1" if i == rows - 1 else f"A{i + 1}"  # the last row repeats the first id
            cells = ",".join(answers[i])
            if i % 10_000 == 5_000:
                cells = cells.replace("1", "7", 1)  # not an answer
            out.write(f"P{i % 50_000},{aid},{date},PAM-13,site-{i % 7},{cells}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partition-mb", type=float, default=2.0)
    parser.add_argument("--cache-export", action="store_true", help="score with cache_export=True")
    parser.add_argument(
        "--passes",
        action="store_true",
        help="also time the counting pass score() runs first, and its parts",
    )
    args = parser.parse_args()
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        print("bench_spark: skipped (needs the spark extra and Java 17+)")
        return 0
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, {args.rows:,} rows"
        f"{', export cached' if args.cache_export else ''}"
    )
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "export.csv"
        write_export(source, args.rows)
        print(f"export: {source.stat().st_size / 2**20:.1f} MiB")
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
        print(
            f"{'cores':>5}  {'parts':>5}  {'spark best/median':>18}  "
            f"{'pamlib best/median':>19}  {'x spark':>7}  {'rows/s':>9}  {'per core':>9}  load"
        )
        for cores in args.cores:
            work = Path(folder) / f"out-{cores}"
            work.mkdir()
            load_before = os.getloadavg()[0]
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(source),
                    str(cores),
                    str(args.repeat),
                    str(work),
                    str(args.partition_mb),
                    "1" if args.cache_export else "0",
                    "1" if args.passes else "0",
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            spark, ours = result["times"]["spark"], result["times"]["pamlib"]
            floor = result["times"]["floor"]
            best = min(ours)
            rate = args.rows / best
            print(
                f"{cores:>5}  {result['partitions']:>5}  "
                f"{min(spark):>7.1f} s / {statistics.median(spark):>5.1f} s  "
                f"{best:>8.1f} s / {statistics.median(ours):>5.1f} s  "
                f"{best / min(spark):>7.2f}  {rate:>9,.0f}  {rate / cores:>9,.0f}  "
                f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"
            )
            print(
                f"       through Python unchanged: {min(floor):.1f} s / "
                f"{statistics.median(floor):.1f} s, {min(floor) / min(spark):.2f} × Spark; "
                f"pamlib {best / min(floor):.2f} × that"
            )
            lines = result["times"]["lines"]
            print(
                f"       read as lines, split in Python: {min(lines):.1f} s / "
                f"{statistics.median(lines):.1f} s, {min(lines) / min(spark):.2f} × Spark"
            )
            scored = result["times"]["scored"]
            print(
                f"       lines split, checked and scored by pamlib in Python: "
                f"{min(scored):.1f} s / {statistics.median(scored):.1f} s, "
                f"{min(scored) / min(spark):.2f} × Spark"
            )
            ranges = result["times"]["ranges"]
            print(
                f"       the same, the lines read by Python (a data source of byte ranges): "
                f"{min(ranges):.1f} s / {statistics.median(ranges):.1f} s, "
                f"{min(ranges) / min(spark):.2f} × Spark, median of the rounds' ratios "
                f"{statistics.median(r / s for r, s in zip(ranges, spark, strict=True)):.2f}"
            )
            split = result["times"]["pamlib-split"]
            print(
                f"       pamlib with the records split by Spark's CSV reader: "
                f"{min(split):.1f} s / {statistics.median(split):.1f} s, "
                f"{min(split) / min(spark):.2f} × Spark "
                f"(the job above read the export as lines: {result['lines_used']})"
            )
            keyed = result["times"]["pamlib-split-keys"]
            print(
                f"       pamlib with no pass (row_key='split', duplicates='partition'): "
                f"{min(keyed):.1f} s / {statistics.median(keyed):.1f} s, "
                f"{min(keyed) / min(spark):.2f} × Spark, median of the rounds' ratios "
                f"{statistics.median(k / s for k, s in zip(keyed, spark, strict=True)):.2f} "
                f"({result['split_keys_summary']})"
            )
            for name, what in (
                ("lines-pass", "the pass score() runs first, over the lines"),
                ("counting", "the counting pass score() runs first, records split by Spark"),
                ("rows", "its row counts alone (CSV read)"),
                ("text", "lines counted per split (text read)"),
            ):
                if name in result["times"]:
                    took = result["times"][name]
                    print(
                        f"       {what}: {min(took):.2f} s / {statistics.median(took):.2f} s, "
                        f"{min(took) / min(spark):.2f} × Spark"
                    )
            print(f"       {result['summary']}")
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    status = main()
    print(f"({time.perf_counter() - start:.0f} s in all)")
    sys.exit(status)
