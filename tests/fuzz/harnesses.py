"""Fuzz harnesses: one ``check(data: bytes) -> None`` per input surface.

Each harness feeds arbitrary bytes to pamlib the way a user's file would arrive and raises
:class:`InvariantError` only when pamlib breaks one of its promises about bad input:

- only pamlib's own clean errors (:class:`~pamlib.errors.PamlibError`) escape, never another
  exception, and never one that calls itself a pamlib bug;
- ``read = scored + not scored + rejected + blank``, and ``read`` equals an independent count
  of the records in the input;
- every record is in the output or in the rejects (by line or count);
- two implementations of the same reader agree (pamlib's CSV reader and the tests'
  record-at-a-time oracle; the columnar and object FHIR paths).

The same functions serve two callers: the coverage-guided runner (``fuzz/run.py``, atheris,
``make fuzz``) and the replay of the crash corpus (``tests/fuzz/test_corpus_replay.py``) in
every ``make test``. This module never imports atheris.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pamlib.errors import LicenceError, PamlibError

__all__ = [
    "SURFACES",
    "InvariantError",
    "check_calibration",
    "check_csv",
    "check_fhir",
    "check_fhir_mapping",
    "check_mapping",
    "check_rules",
]


class InvariantError(AssertionError):
    """An input made pamlib break a promise it makes about bad input."""


# -- shared plumbing -------------------------------------------------------------------------

_SCRATCH: list[Path] = []


def _scratch() -> Path:
    """One scratch folder per process (files are overwritten input after input)."""
    if not _SCRATCH:
        folder = Path(tempfile.mkdtemp(prefix="pamlib-fuzz-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _SCRATCH.append(folder)
    return _SCRATCH[0]


def _write(name: str, data: bytes) -> Path:
    path = _scratch() / name
    path.write_bytes(data)
    return path


@contextlib.contextmanager
def _clean_errors_only(what: str) -> Iterator[list[PamlibError]]:
    """Run a step that may refuse the input: a PamlibError is recorded (the caller looks at the
    list), anything else is a violation."""
    caught: list[PamlibError] = []
    try:
        yield caught
    except PamlibError as exc:
        if "pamlib bug" in str(exc):
            raise InvariantError(f"{what}: an error that calls itself a bug: {exc}") from exc
        caught.append(exc)
    except (KeyboardInterrupt, InvariantError):
        raise
    except BaseException as exc:
        raise InvariantError(f"{what}: {type(exc).__name__} escaped: {exc!s:.300}") from exc


def _host() -> Any:
    """pamlib's built-in plugins, and the tests' CSV oracle as the input format ``csv-oracle``."""
    from tests.oracles.csv_reader import oracle_host

    if not _HOSTS:
        _HOSTS.append(oracle_host())
    return _HOSTS[0]


def _input_format(reader: str) -> str:
    """The input format of a reader: pamlib's (``arrow``) or the oracle."""
    from tests.oracles.csv_reader import ORACLE_FORMAT

    return "csv" if reader == "arrow" else ORACLE_FORMAT


_HOSTS: list[Any] = []


def _raw_sum() -> Any:
    from pamlib.scoring.raw_sum import RawSumProvider

    return RawSumProvider()


def _csv_rows(data: bytes) -> list[list[str]]:
    """A file pamlib wrote, read back by Python's csv module."""
    with _big_fields():
        return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@contextlib.contextmanager
def _big_fields() -> Iterator[None]:
    """Let the independent counter read cells of any size (restored afterwards, so the readers
    under test see the limit they would see anyway)."""
    old = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _violation(what: str, expected: object, got: object) -> InvariantError:
    return InvariantError(f"{what}: expected {expected!r:.300}, got {got!r:.300}")


def _unique_ids(what: str, ids: list[str]) -> None:
    """No assessment is scored twice: a repeated assessment id is a reject, never a second row."""
    if len(set(ids)) != len(ids):
        raise InvariantError(f"an assessment id is on more than one scored row: {what}")


# -- CSV ---------------------------------------------------------------------------------------

_DELIMITERS = (",", ";", "\t")


def _first_nonblank_line(text: str) -> str:
    for line in io.StringIO(text, newline=""):
        body = line.rstrip("\r\n")
        if body:
            return body
    return ""


def csv_record_lines(path: Path) -> tuple[list[int], list[int]]:
    """The physical start line of every data record, counted by Python's csv module alone; and
    of the blank ones (every field empty or whitespace, no quote left open at the end).

    The text is decoded as pamlib decodes it (its encoding rule is tested apart). The delimiter
    is the one of ``,`` ``;`` tab found most often outside quotes in the first non-blank line
    (pamlib's documented rule); empty lines are not records; the first record is the header.
    """
    from pamlib.formats.encoding import open_utf8

    with open_utf8(path, {}).stream as stream:
        text = stream.read().decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    head = re.sub(r'"[^"]*"', "", _first_nonblank_line(text))
    counts = [(head.count(d), -i, d) for i, d in enumerate(_DELIMITERS)]
    best = max(counts)
    delimiter = best[2] if best[0] > 0 else ","
    return record_lines_of(text, delimiter)


def record_lines_of(text: str, delimiter: str) -> tuple[list[int], list[int]]:
    """:func:`csv_record_lines` of decoded text with a known delimiter."""
    starts: list[int] = []
    blank: list[int] = []
    with _big_fields():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        before = 0
        for fields in reader:
            if fields:
                starts.append(before + 1)
                if starts[1:] and all(not f.strip() for f in fields):
                    blank.append(before + 1)
            before = reader.line_num
        if blank and blank[-1] == starts[-1]:  # unless a quote is still open at the end
            rest = "".join(io.StringIO(text, newline="").readlines()[blank[-1] - 1 :])
            try:
                list(csv.reader(io.StringIO(rest, newline=""), delimiter=delimiter, strict=True))
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    blank.pop()
    return starts[1:], blank


def _read_csv(
    path: Path, engine: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int, int]:
    """Records and rejects one CSV reader makes of ``path`` (small chunks, so records cross
    chunk boundaries)."""
    from pamlib.formats._columnar import read_columnar
    from pamlib.formats.base import ReadOptions, text_values
    from tests.oracles.csv_reader import read_record_chunks

    instruments = list(_host().instruments())
    options = ReadOptions(chunk_rows=3, instrument="PAM-13")
    read = read_columnar if engine == "arrow" else read_record_chunks
    records: list[tuple[Any, ...]] = []
    rejects: list[tuple[Any, ...]] = []
    n_read = n_blank = 0
    for chunk in read(path, options, instruments):
        n_read += chunk.n_read
        n_blank += chunk.n_blank
        if any(c.startswith("\ufeff") for c in chunk.extra_columns):
            raise InvariantError(f"a byte-order mark became part of a column name ({engine})")
        rejects.extend((r.line, r.code, r.message, dict(r.fields), r.record) for r in chunk.rejects)
        for b in chunk.batches:
            lines = [] if b.lines is None else [int(x) for x in b.lines]
            ids = text_values(b.assessment_id)
            for i in range(len(b)):
                codes = tuple(int(c) for c in b.codes[i])
                records.append((lines[i] if lines else None, ids[i], b.instrument.id, codes))
    return sorted(records, key=repr), rejects, n_read, n_blank


def _score_csv(path: Path, engine: str) -> tuple[Any, bytes, bytes]:
    from pamlib.formats.base import ReadOptions
    from pamlib.pipeline import score_file

    out, rejects = io.BytesIO(), io.BytesIO()
    summary = score_file(
        path,
        select_provider=lambda _: _raw_sum(),
        output=out,
        rejects=rejects,
        options=ReadOptions(chunk_rows=4, instrument="PAM-13"),
        input_format=_input_format(engine),
        keep_nhs_number=True,
        host=_host(),
    )
    return summary, out.getvalue(), rejects.getvalue()


def check_csv(data: bytes) -> None:
    """A CSV export: pamlib's reader and the oracle, then the whole scoring run with each."""
    path = _write("export.csv", data)
    read: dict[str, Any] = {}
    scored: dict[str, Any] = {}
    for engine in ("arrow", "oracle"):
        with _clean_errors_only(f"reading CSV ({engine})") as refused:
            read[engine] = _read_csv(path, engine)
        if refused:
            read[engine] = ("refused", str(refused[0]))
        with _clean_errors_only(f"scoring CSV ({engine})") as refused:
            scored[engine] = _score_csv(path, engine)
        if refused:
            scored[engine] = ("refused", str(refused[0]))
    if read["arrow"] != read["oracle"]:
        raise _violation("pamlib's reader and the oracle disagree", read["oracle"], read["arrow"])
    if isinstance(read["oracle"][0], str):  # refused by both, with the same message
        return
    records, rejects, n_read, n_blank = read["oracle"]
    expected, blank = csv_record_lines(path)
    if n_read != len(expected):
        raise _violation("records read vs. an independent count", len(expected), n_read)
    if n_blank != len(blank):
        raise _violation("blank records vs. an independent count", len(blank), n_blank)
    seen = sorted([r[0] for r in records] + [r[0] for r in rejects] + blank)
    if seen != expected:
        raise _violation("lines in the output, the rejects or the blank ones", expected, seen)
    if n_read != len(records) + len(rejects) + n_blank:
        raise _violation(
            "read = valid + rejected + blank", n_read, (len(records), len(rejects), n_blank)
        )
    _unique_ids("CSV", [r[1] for r in records])
    a, p = scored["arrow"], scored["oracle"]
    if isinstance(a[0], str) or isinstance(p[0], str):
        if a != p:
            raise _violation("pamlib's reader and the oracle disagree on scoring", p, a)
        return
    if (a[0].reconciliation, a[1], a[2]) != (p[0].reconciliation, p[1], p[2]):
        raise _violation("the outputs of pamlib's reader and the oracle differ", p, a)
    summary, out, rejected = p
    if not summary.reconciles or summary.n_read != n_read:
        raise _violation("the run's reconciliation", n_read, summary.reconciliation)
    n_out = len(_csv_rows(out)) - 1
    if n_out != summary.n_scored + summary.n_not_scored:
        raise _violation(
            "rows in the scored output", summary.n_scored + summary.n_not_scored, n_out
        )
    n_rejects = max(len(_csv_rows(rejected)) - 1, 0)
    if n_rejects != summary.n_rejected:
        raise _violation("records in the rejects file read back", summary.n_rejected, n_rejects)


# -- FHIR --------------------------------------------------------------------------------------


def _fhir_records(value: object, top: bool) -> int:
    """Records in one parsed JSON value, counted independently of the reader: a response or
    anything that is not a resource counts one; a Bundle counts its entries; other resources
    (Patient, Questionnaire, …) are context, not records."""
    if isinstance(value, list) and top:
        return sum(_fhir_records(v, False) for v in value)
    kind = value.get("resourceType") if isinstance(value, dict) else None
    if not isinstance(value, dict) or not isinstance(kind, str):
        return 1
    if kind == "QuestionnaireResponse":
        return 1
    if kind == "Bundle":
        entries = value.get("entry", [])
        total = 0
        for entry in entries if isinstance(entries, list) else [entries]:
            has = isinstance(entry, dict) and "resource" in entry
            total += _fhir_records(entry["resource"], False) if has else 1
        return total
    return 0


def _fhir_text_records(text: str) -> int:
    from pamlib._documents import DocumentError, parse_json

    try:
        value = parse_json(text, "")
    except DocumentError:
        return 1  # the document (or line) is one rejected record
    return _fhir_records(value, True)


def fhir_ndjson_counts(data: bytes) -> set[int]:
    """The records of an NDJSON file, counted line by line; one count with lines ended by LF
    (NDJSON's own rule, CRLF included) and one with universal newlines (a bare CR too). Each
    line is a JSON text of its own, and a parser may ignore a byte order mark at the start of
    one (RFC 8259, section 8.1): a line of nothing else holds no record."""
    counts = set()
    for pattern in (rb"\n", rb"\r\n|\r|\n"):
        total = 0
        for raw in re.split(pattern, data):
            line = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                total += 1  # that line only is rejected
                continue
            if text.strip():
                total += _fhir_text_records(text)
        counts.add(total)
    return counts


def fhir_json_count(data: bytes) -> int | None:
    """The records of one JSON document; ``None`` when the file is not UTF-8 (refused whole)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return _fhir_text_records(text)


def _fhir_columnar(path: Path) -> tuple[list[tuple[Any, ...]], list[str], int]:
    from pamlib.fhir.plugin import FhirFormat
    from pamlib.formats.base import ReadOptions, text_values

    records: list[tuple[Any, ...]] = []
    rejects: list[str] = []
    n_read = 0
    for chunk in FhirFormat().read(path, ReadOptions(chunk_rows=2)):
        n_read += chunk.n_read
        rejects.extend(r.location for r in chunk.rejects)
        for b in chunk.batches:
            ids = text_values(b.assessment_id)
            for i in range(len(b)):
                records.append((ids[i], b.instrument.id, tuple(int(c) for c in b.codes[i])))
    return sorted(records), sorted(rejects), n_read


def _fhir_objects(path: Path) -> tuple[list[tuple[Any, ...]], list[str], int]:
    from pamlib.fhir._reader import read_fhir

    assessments, rejects, counts = read_fhir(path, instruments=_host().instruments())
    records = [(a.id, a.instrument.id, tuple(int(c) for c in a.codes())) for a in assessments]
    return sorted(records), sorted(r.location for r in rejects), counts.n_read


def _score_fhir(path: Path) -> tuple[Any, bytes, bytes]:
    from pamlib.formats.base import ReadOptions
    from pamlib.pipeline import score_file

    out, rejects = io.BytesIO(), io.BytesIO()
    summary = score_file(
        path,
        select_provider=lambda _: _raw_sum(),
        output=out,
        rejects=rejects,
        input_format="fhir",
        output_format="csv",
        options=ReadOptions(chunk_rows=3),
        host=_host(),
    )
    return summary, out.getvalue(), rejects.getvalue()


def check_fhir(data: bytes) -> None:
    """FHIR input, as NDJSON and as one JSON document: the columnar path (what ``pamlib score``
    runs) and the object path (:func:`pamlib.read_fhir`) must agree and account for every
    response."""
    for name, expected in (
        ("responses.ndjson", fhir_ndjson_counts(data)),
        ("responses.json", fhir_json_count(data)),
    ):
        path = _write(name, data)
        outcome: dict[str, Any] = {}
        for label, read in (("columnar", _fhir_columnar), ("object", _fhir_objects)):
            with _clean_errors_only(f"reading {name} ({label} path)") as refused:
                outcome[label] = read(path)
            if refused:
                outcome[label] = ("refused", str(refused[0]))
        if outcome["columnar"] != outcome["object"]:
            raise _violation(
                f"the FHIR reading paths disagree on {name}", outcome["object"], outcome["columnar"]
            )
        if isinstance(outcome["object"][0], str):
            continue
        records, rejects, n_read = outcome["object"]
        _unique_ids(name, [r[0] for r in records])
        if n_read != len(records) + len(rejects):
            raise _violation(f"read = valid + rejected ({name})", n_read, (records, rejects))
        counts = expected if isinstance(expected, set) else {expected}
        if None not in counts and n_read not in counts:
            raise _violation(f"responses read vs. an independent count ({name})", counts, n_read)
        with _clean_errors_only(f"scoring {name}") as refused:
            summary, out, rejected = _score_fhir(path)
        if refused:
            raise InvariantError(f"read cleanly but scoring refused ({name}): {refused[0]}")
        if not summary.reconciles or summary.n_read != n_read:
            raise _violation(f"the run's reconciliation ({name})", n_read, summary.reconciliation)
        n_out = len(_csv_rows(out)) - 1
        if n_out != len(records):
            raise _violation(f"rows in the scored output ({name})", len(records), n_out)
        n_rejects = max(len(_csv_rows(rejected)) - 1, 0)
        if n_rejects != summary.n_rejected:
            raise _violation(f"records in the rejects file ({name})", summary.n_rejected, n_rejects)


# -- calibration -------------------------------------------------------------------------------


def _answer_patterns(n_items: int) -> np.ndarray[Any, np.dtype[np.int8]]:
    """Every extreme and a spread of mixed answer patterns, with missing and N/A items
    (codes: 1-4 answers, 0 unanswered, -1 not applicable)."""
    rows = [[v] * n_items for v in (1, 2, 3, 4, 0, -1)]
    for v in (1, 4):
        rows += [[v] * (n_items - 1) + [0], [0] * (n_items - 1) + [v]]
    rng = np.random.default_rng(20260)
    rows += rng.choice([1, 2, 3, 4], size=(12, n_items)).tolist()
    mixed = rng.choice([0, -1, 1, 2, 3, 4], size=(12, n_items))
    rows += mixed.tolist()
    return np.array(rows, dtype=np.int8)


def _score_range(provider: Any, instrument: Any, cal: Any) -> None:
    codes = _answer_patterns(instrument.n_items)
    with _clean_errors_only("scoring with an accepted calibration") as refused:
        scores = provider.score_batch(instrument, codes)
    if refused:
        if isinstance(refused[0], LicenceError):
            return
        raise InvariantError(f"an accepted calibration cannot score: {refused[0]}")
    scored = np.asarray(scores.scored, dtype=bool)
    lo, hi = sorted((cal.scale.min, cal.scale.max))
    for field in ("theta", "theta_se", "score", "score_se"):
        values = np.asarray(getattr(scores, field), dtype=float)[scored]
        if not np.all(np.isfinite(values)):
            raise InvariantError(f"an accepted calibration gives a non-finite {field}")
    score = np.asarray(scores.score, dtype=float)[scored]
    if np.any(score < lo) or np.any(score > hi):
        raise _violation("scores within the calibration's scale", (lo, hi), score.tolist())
    if np.any(np.asarray(scores.score_se, dtype=float)[scored] < 0):
        raise InvariantError("an accepted calibration gives a negative standard error")


def _scores_written(provider: Any, instrument: Any, fmt: str) -> list[float | None]:
    """The scores of the answer patterns as the ``fmt`` writer writes them."""
    from pamlib.formats.base import ReadOptions
    from pamlib.pipeline import score_file

    codes = _answer_patterns(instrument.n_items)
    items = [f"q{i:02d}" for i in range(1, instrument.n_items + 1)]
    spell = {0: "", -1: "NA"}
    lines = [",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *items])]
    for i, row in enumerate(codes.tolist()):
        cells = [spell.get(c, str(c)) for c in row]
        lines.append(",".join([f"P{i}", f"A{i}", "2024-01-02", instrument.id, *cells]))
    path = _write("patterns.csv", ("\n".join(lines) + "\n").encode())
    out = io.BytesIO()
    score_file(
        path,
        select_provider=lambda _: provider,
        output=out,
        rejects=io.BytesIO(),
        output_format=fmt,
        options=ReadOptions(),
        host=_host(),
    )
    text = out.getvalue().decode("utf-8")
    if fmt == "json":
        values = [json.loads(line).get("score") for line in text.splitlines() if line.strip()]
        return [None if v is None else float(v) for v in values]
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return [float(r["score"]) if r.get("score") else None for r in rows]


def check_calibration(data: bytes) -> None:
    """A calibration file, as JSON and as TOML: only ``CalibrationError``; anything accepted
    scores every pattern finite and within its scale, and the CSV and JSON Lines writers write
    the same scores."""
    from pamlib.scoring.calibration import load_calibration
    from pamlib.scoring.rasch import RaschProvider

    for name in ("calibration.json", "calibration.toml"):
        path = _write(name, data)
        with _clean_errors_only(f"loading {name}") as refused:
            cal = load_calibration(path, host=_host())
        if refused:
            continue
        with _clean_errors_only(f"binding {name}") as refused:
            provider = RaschProvider(cal, host=_host())
        if refused:
            continue
        instrument = _host().instruments().get(cal.instrument)
        _score_range(provider, instrument, cal)
        written: dict[str, list[float | None]] = {}
        for fmt in ("csv", "json"):
            with _clean_errors_only(f"writing scores as {fmt}") as refused:
                written[fmt] = _scores_written(provider, instrument, fmt)
            if refused:
                if isinstance(refused[0], LicenceError):
                    return
                raise InvariantError(f"{fmt} output refused: {refused[0]}")
        lo, hi = sorted((cal.scale.min, cal.scale.max))
        step = 0.5 * 10.0 ** -max(cal.scale.decimals, 0) + 1e-9
        for a, b in zip(written["csv"], written["json"], strict=True):
            if (a is None) != (b is None):
                raise _violation("CSV and JSON Lines agree on which rows have a score", a, b)
            if a is None or b is None:
                continue
            if not (math.isfinite(a) and lo - step <= a <= hi + step):
                raise _violation("a written score within the scale", (lo, hi), a)
            if abs(a - b) > step + 1e-6 * abs(b):
                raise _violation("CSV and JSON Lines write the same score", b, a)


# -- tailoring rules ---------------------------------------------------------------------------

_SCORED: list[Path] = []


def _scored_table() -> Path:
    """A small scored CSV (demo provider) to tailor with each rules file."""
    if _SCORED:
        return _SCORED[0]
    from pamlib.formats.base import ReadOptions
    from pamlib.pipeline import score_file

    items = [f"q{i:02d}" for i in range(1, 14)]
    lines = [",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *items])]
    patterns = ["1", "2", "3", "4", ""]
    for i in range(10):
        answers = [patterns[(i + j) % 4] if i % 3 else patterns[i % 4] for j in range(13)]
        day = 1 + i % 9
        lines.append(",".join([f"P{i % 4}", f"A{i}", f"202{3 + i // 5}-0{day}-0{day}", "PAM-13"]))
        lines[-1] += "," + ",".join(answers)
    source = _write("to-tailor.csv", ("\n".join(lines) + "\n").encode())
    target = _scratch() / "scored-for-rules.csv"
    from pamlib.scoring.demo import DemoProvider

    score_file(
        source,
        select_provider=lambda _: DemoProvider(),
        output=str(target),
        rejects=io.BytesIO(),
        options=ReadOptions(),
        host=_host(),
    )
    _SCORED.append(target)
    return target


def check_rules(data: bytes) -> None:
    """A site's rules file: ``rules check`` and ``score --rules`` tailoring never fail other
    than cleanly, and tailoring keeps every row."""
    from pamlib.cli import EXIT_BUG, main
    from pamlib.tailoring.rules import check_rules_file

    path = _write("rules.toml", data)
    with _clean_errors_only("checking a rules file"):
        check_rules_file(path)
    stderr = io.StringIO()
    with (
        _clean_errors_only("pamlib rules check"),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(stderr),
    ):
        status = main(["rules", "check", str(path)])
    if status == EXIT_BUG or "Traceback" in stderr.getvalue():
        raise InvariantError(f"pamlib rules check: {stderr.getvalue()[-300:]}")
    from pamlib.pipeline import write_scored
    from pamlib.tables.scored import ScoredTable
    from pamlib.tailoring import tailor

    scored = _scored_table()
    out = io.BytesIO()
    with _clean_errors_only("tailoring with the rules") as refused:
        write_scored(tailor(ScoredTable.read(scored), [str(path)]), out, output_format="csv")
    if refused:
        return
    n_in = len(_csv_rows(scored.read_bytes()))
    n_out = len(_csv_rows(out.getvalue()))
    if n_in != n_out:
        raise _violation("rows kept by tailoring", n_in, n_out)


# -- CSV mapping files ------------------------------------------------------------------------

_MAPPED_CSV = (
    "patient_id,nhs_number,assessment_id,assessed_on,instrument,site,"
    + ",".join(f"q{i:02d}" for i in range(1, 14))
    + "\n"
    + "P1,,A1,2024-01-02,PAM-13,s,Agree,Strongly disagree,N/A,2,4,3,1,Disagree,,3,3,3,3\n"
    + "P2,,A2,2024-01-03,PAM-13,s,1,2,3,4,1,2,3,4,1,2,3,4,1\n"
).encode()


def check_mapping(data: bytes) -> None:
    """A CSV mapping file: only clean errors; one that loads never gives a label two meanings
    nor changes a built-in label, and both readers agree on a file read with it."""
    from pamlib.formats.base import ReadOptions
    from pamlib.formats.layout import load_mapping
    from pamlib.formats.values import label_key
    from pamlib.responses import parse_response

    path = _write("mapping.toml", data)
    with _clean_errors_only("loading a mapping file") as refused:
        mapping = load_mapping(path)
    if refused:
        return
    codes = {"1": 1, "2": 2, "3": 3, "4": 4, "NA": -1}
    meaning: dict[str, tuple[str, int]] = {}
    for label, value in mapping.answers.items():
        code = codes.get(str(value).strip().upper())
        if code is None:
            raise _violation("a label's value", "1, 2, 3, 4 or NA", value)
        key = label_key(label)
        earlier = meaning.get(key)
        if earlier is not None and earlier[1] != code:
            raise InvariantError(f"a label has two meanings: {earlier[0]!r}, {label!r}")
        meaning[key] = (label, code)
        try:
            builtin = parse_response(label)
        except ValueError:
            continue
        if builtin is not None and int(builtin) != code:
            raise InvariantError(f"the mapping changes a built-in label: {label!r}")
    source = _write("mapped.csv", _MAPPED_CSV)
    options = mapping.apply(ReadOptions(chunk_rows=1))
    outcome: dict[str, Any] = {}
    for engine in ("arrow", "oracle"):
        from pamlib.pipeline import score_file

        out, rejects = io.BytesIO(), io.BytesIO()
        with _clean_errors_only(f"scoring with the mapping ({engine})") as refused:
            summary = score_file(
                source,
                select_provider=lambda _: _raw_sum(),
                output=out,
                rejects=rejects,
                options=options,
                input_format=_input_format(engine),
                host=_host(),
            )
            outcome[engine] = (summary.reconciliation, out.getvalue(), rejects.getvalue())
            if not summary.reconciles:
                raise _violation("the run's reconciliation", "read = ...", summary.reconciliation)
        if refused:
            outcome[engine] = ("refused", str(refused[0]))
    if outcome["arrow"] != outcome["oracle"]:
        raise _violation(
            "the readers disagree under a mapping", outcome["oracle"], outcome["arrow"]
        )


# -- FHIR mapping files -----------------------------------------------------------------------

_MAPPED_RESPONSE = {
    "resourceType": "QuestionnaireResponse",
    "identifier": {"system": "https://pamlib.org/fhir/Id/assessment-id", "value": "M1"},
    "questionnaire": "https://example.org/fhir/Questionnaire/pam13-demo|0.1.0",
    "status": "completed",
    "subject": {"identifier": {"system": "https://pamlib.org/fhir/Id/patient-id", "value": "P1"}},
    "authored": "2024-01-02",
    "item": [
        {"linkId": f"pam{n}", "answer": [{"valueCoding": {"code": str(1 + n % 4)}}]}
        for n in range(1, 14)
    ],
}


def check_fhir_mapping(data: bytes) -> None:
    """A FHIR mapping file: only clean errors; one that loads maps no two linkIds to one item,
    neither ignores and maps one linkId, nor lists no version at all; reading a response with it
    accounts for the response."""
    from pamlib.fhir._reader import read_fhir
    from pamlib.fhir.mapping import load_mapping

    path = _write("fhir-mapping.toml", data)
    with _clean_errors_only("loading a FHIR mapping file") as refused:
        mapping = load_mapping(path)
    if refused:
        return
    for q in mapping.questionnaires:
        targets = list(q.items.values())
        if len(set(targets)) != len(targets):
            raise InvariantError(f"two linkIds map to one item: {q.url!r}")
        if set(q.items) & set(q.ignore):
            raise InvariantError(f"a linkId is both ignored and mapped: {q.url!r}")
        if q.versions is not None and not q.versions:
            raise InvariantError(f"an empty version list matches nothing: {q.url!r}")
    with _clean_errors_only("reading a response with the FHIR mapping") as refused:
        response = json.dumps(_MAPPED_RESPONSE).encode()
        assessments, rejects, counts = read_fhir(
            response, mapping=mapping, instruments=_host().instruments()
        )
    if refused:
        return
    if counts.n_read != 1 or len(assessments) + len(rejects) != 1:
        raise _violation("one response read, scored or rejected", 1, counts)


#: Every surface by the name of its corpus folder (``tests/fuzz/corpus/<name>/``).
SURFACES: dict[str, Callable[[bytes], None]] = {
    "csv": check_csv,
    "fhir": check_fhir,
    "calibration": check_calibration,
    "rules": check_rules,
    "mapping": check_mapping,
    "fhir-mapping": check_fhir_mapping,
}
