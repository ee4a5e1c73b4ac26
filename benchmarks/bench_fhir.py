"""Reading and validating QuestionnaireResponses: pamlib against the ``fhir.resources`` R4B models.

Run: ``python benchmarks/bench_fhir.py [--n 10000] [--repeat 3] [--json FILE] [--bundle
[--score]]``.

Writes ``n`` synthetic PAM-13 responses (contained patient, as :func:`questionnaire_response`
makes them) to an NDJSON file, then times, best of ``repeat``, each way of getting validated
data out of the same file:

- ``pamlib_columns``: the ``fhir`` format plugin — parse, validate every answer, resolve the
  instrument and patient, build :class:`~pamlib.formats.base.RecordBatch` columns;
- ``pamlib_objects``: :func:`pamlib.fhir.read_fhir` — the same, building ``Assessment`` objects;
- ``pamlib_checks``: ``json.loads`` + :func:`pamlib.fhir.check` on every line (pamlib's
  structural checks alone);
- ``fhir_resources``: ``json.loads`` + ``QuestionnaireResponse.model_validate`` (R4B) per line,
  which checks structure only (no weights, no instrument, no NHS number).

After one untimed pass of each over 100 responses (what is done once, on first use: imports,
the plugin host, the models' validators), the four run in interleaved rounds; each is reported
by its best round (and every round's time), and the columnar path also by the ratio of each
round and the median of those ratios.

The target is ``fhir_resources / pamlib_columns >= 40``. Times are the CPU time of this process
(``time.process_time``), so other work on a shared machine distorts the ratios less; wall-clock
times and the load average are reported too. pamlib parses with msgspec when the ``fhir`` extra
is installed (``json_parser`` says which), and then decodes NDJSON responses of the usual shape
straight into typed structures; ``--stdlib`` times the standard library's parser (and the
dictionary path for every line).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pamlib.assessment import Assessment
from pamlib.fhir import check, questionnaire_response, read_fhir
from pamlib.fhir.plugin import FhirFormat
from pamlib.formats.base import ReadOptions
from pamlib.identity import Patient
from pamlib.synthetic import synthetic_cohort


def write_input(path: Path, n: int) -> None:
    cohort = synthetic_cohort(n, seed=11, follow_up_share=0.0)
    instrument = cohort.instrument
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            codes = cohort.codes[i]
            responses = {item: int(c) for item, c in zip(instrument.items, codes, strict=True) if c}
            a = Assessment(
                id=str(cohort.assessment_id[i]),
                patient=Patient(str(cohort.patient_id[i]), nhs_number=str(cohort.nhs_number[i])),
                instrument=instrument,
                assessed_on=cohort.assessed_on[i].astype("datetime64[D]").item(),
                responses=responses,
                site=str(cohort.site[i]),
            )
            f.write(json.dumps(questionnaire_response(a), separators=(",", ":")) + "\n")


def timed(run: Callable[[Path], int], path: Path) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, records) of one run."""
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    count = run(path)
    return time.process_time() - start_cpu, time.perf_counter() - start_wall, count


def interleaved(
    runs: list[tuple[str, Callable[[Path], int]]], repeat: int, n: int, path: Path
) -> dict[str, object]:
    """Best CPU and wall time of each run over ``repeat`` interleaved rounds (a change in the
    machine's load falls on every way alike), and the median of the per-round ratios of the
    R4B models to the columnar path."""
    cpu: dict[str, list[float]] = {name: [] for name, _ in runs}
    wall: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(repeat):
        for name, run in runs:
            seconds, elapsed, count = timed(run, path)
            if count != n:
                sys.exit(f"{name}: {count} of {n} responses were valid")
            cpu[name].append(seconds)
            wall[name].append(elapsed)
    results: dict[str, object] = {}
    for name, _ in runs:
        results[f"{name}_s"] = round(min(cpu[name]), 4)
        results[f"{name}_wall_s"] = round(min(wall[name]), 4)
        results[f"{name}_per_s"] = int(n / min(cpu[name]))
    for name, _ in runs:
        results[f"{name}_rounds_s"] = [round(t, 4) for t in cpu[name]]
    ratios = [r / c for r, c in zip(cpu["fhir_resources"], cpu["pamlib_columns"], strict=True)]
    results["speedup_pamlib_columns_rounds"] = [round(r, 1) for r in ratios]
    results["speedup_pamlib_columns_median_of_rounds"] = round(statistics.median(ratios), 1)
    return results


def _bundle_rounds(
    ndjson: Path,
    repeat: int,
    n: int,
    columns: Callable[[Path], int],
    objects: Callable[[Path], int],
) -> dict[str, object]:
    """Best CPU time of pamlib reading the responses of ``ndjson`` as one minified Bundle (a
    FHIR server's answer, one line), against the same responses as NDJSON, in interleaved
    rounds: a whole document is parsed and indexed before any record is read."""
    bundle = ndjson.with_suffix(".json")
    with ndjson.open(encoding="utf-8") as f:
        entries = [{"resource": json.loads(line)} for line in f]
    document = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    bundle.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    runs = [
        ("bundle_pamlib_columns", columns, bundle),
        ("bundle_pamlib_objects", objects, bundle),
        ("ndjson_pamlib_columns", columns, ndjson),
        ("ndjson_pamlib_objects", objects, ndjson),
    ]
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for _ in range(repeat):
        for name, run, source in runs:
            seconds, _, count = timed(run, source)
            if count != n:
                sys.exit(f"{name}: {count} of {n} responses were valid")
            cpu[name].append(seconds)
    return {f"{name}_s": round(min(times), 4) for name, times in cpu.items()}


def _score_rounds(ndjson: Path, repeat: int) -> dict[str, object]:
    """Wall time of ``pamlib score --provider demo`` on the responses as one Bundle (written
    by :func:`_bundle_rounds` beside them) and as NDJSON, each run in a fresh process, in
    interleaved rounds: what a user of the command sees. (Not its peak memory: a child started
    from this process, grown by the rounds before, reports this one's peak as its own.)"""
    import subprocess

    runs = [("score_bundle", ndjson.with_suffix(".json")), ("score_ndjson", ndjson)]
    wall: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(repeat):
        for name, source in runs:
            out = source.with_name(f"{name}.csv")
            for old in (out, out.with_name(f"{name}.rejects.csv")):
                old.unlink(missing_ok=True)
            command = [sys.executable, "-m", "pamlib", "score", str(source)]
            command += ["--provider", "demo", "-o", str(out)]
            start = time.perf_counter()
            done = subprocess.run(command, stderr=subprocess.DEVNULL, check=False)
            wall[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"{name}: pamlib score failed")
    results: dict[str, object] = {}
    for name, _ in runs:
        results[f"{name}_wall_s"] = round(min(wall[name]), 3)
        results[f"{name}_median_s"] = round(statistics.median(wall[name]), 3)
    return results


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument(
        "--stdlib", action="store_true", help="pamlib parses with json, not msgspec"
    )
    parser.add_argument(
        "--bundle",
        action="store_true",
        help="also time pamlib reading the same responses as one minified Bundle (.json)",
    )
    parser.add_argument(
        "--score",
        action="store_true",
        help="with --bundle: also time `pamlib score --provider demo` on the Bundle and NDJSON",
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    import pamlib._documents as documents

    if args.stdlib:
        documents._fast_decode, documents._fast_tried = None, True
    fast = documents._fast_decoder() is not None
    try:
        from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
    except ImportError:
        sys.exit("fhir.resources is not installed (it is in the dev dependency group)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "responses.ndjson"
        write_input(path, args.n)
        small = Path(tmp) / "warm-up.ndjson"
        write_input(small, 100)
        fmt = FhirFormat()

        def pamlib_columns(path: Path) -> int:
            return sum(chunk.n_valid for chunk in fmt.read(path, ReadOptions()))

        def pamlib_objects(path: Path) -> int:
            return len(read_fhir(path)[0])

        def pamlib_checks(path: Path) -> int:
            with path.open(encoding="utf-8") as f:
                return sum(not check(json.loads(line)) for line in f)

        def fhir_resources(path: Path) -> int:
            n = 0
            with path.open(encoding="utf-8") as f:
                for line in f:
                    QuestionnaireResponse.model_validate(json.loads(line))
                    n += 1
            return n

        results: dict[str, object] = {"n": args.n, "python": sys.version.split()[0]}
        if fast:
            from importlib.metadata import version

            results["json_parser"] = f"msgspec {version('msgspec')}"
        else:
            results["json_parser"] = "json (standard library)"
        results["load_average_before"] = round(os.getloadavg()[0], 2)
        runs: list[tuple[str, Callable[[Path], int]]] = [
            ("pamlib_columns", pamlib_columns),
            ("pamlib_objects", pamlib_objects),
            ("pamlib_checks", pamlib_checks),
            ("fhir_resources", fhir_resources),
        ]
        # One untimed pass of each way over 100 responses first: imports made on first use, the
        # plugin host, the models' validators. The rounds time reading, not starting up.
        for _, run in runs:
            run(small)
        results |= interleaved(runs, args.repeat, args.n, path)
        if args.bundle:
            results |= _bundle_rounds(path, args.repeat, args.n, pamlib_columns, pamlib_objects)
            if args.score:
                results |= _score_rounds(path, args.repeat)
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    base = float(results["fhir_resources_s"])  # type: ignore[arg-type]
    for name in ("pamlib_columns", "pamlib_objects", "pamlib_checks"):
        results[f"speedup_{name}"] = round(base / float(results[f"{name}_s"]), 1)  # type: ignore[arg-type]
    for key, value in results.items():
        print(f"{key:28} {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    target = float(results["speedup_pamlib_columns"])  # type: ignore[arg-type]
    print("target (>= 40x):", "met" if target >= 40 else "NOT met")


if __name__ == "__main__":
    main()
