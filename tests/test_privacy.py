"""No patient identifier leaks from any command: the proof for "nothing leaked".

Every command runs on inputs holding known, distinctive identifiers — patient ids, valid NHS
numbers (and one with a wrong check digit, still an identifier), and pass-through ``name``,
``date_of_birth`` and ``postcode`` columns — on good input and on input that fails on purpose.
Then none of those values may appear in standard error, in any log record (captured at DEBUG),
in a published report (HTML or JSON, with or without ``--publish``), in the reprs of the objects
involved, or in exception messages. Per-patient outputs the user asked for (the scored file,
standard output when it *is* the scored file, the rejects file, ``report --patients``,
``rules overdue``) may hold patient ids and pass-through columns, but the NHS number only with
``--keep-nhs-number``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from pamlib.cli import main
from pamlib.plugins import PluginHost, reset_host
from pamlib.synthetic import test_nhs_number as nhs_number_for
from tests.conftest import ROOT

pytest.importorskip("pyarrow")

ITEMS = [f"q{i:02d}" for i in range(1, 14)]
N_PATIENTS = 12

PATIENT_IDS = [f"PID-ZQX-77{i:02d}" for i in range(N_PATIENTS)]
NHS_NUMBERS = [n for n in (nhs_number_for(778100 + s) for s in range(40)) if n][:N_PATIENTS]
#: A well-formed NHS number whose check digit is wrong: rejected, and still an identifier.
BAD_NHS_NUMBER = NHS_NUMBERS[0][:9] + str((int(NHS_NUMBERS[0][9]) + 1) % 10)
NAMES = [f"Zebedee Quillfeather{chr(65 + i)}" for i in range(N_PATIENTS)]
BIRTH_DATES = [f"1931-07-{i + 1:02d}" for i in range(N_PATIENTS)]
POSTCODES = [f"ZX{i} 7QV" for i in range(N_PATIENTS)]
BAD_ROW_PATIENT = "PID-ZQX-BAD1"

#: Values that must never leave except in a per-patient output the user asked for.
PASS_THROUGH = [*NAMES, *BIRTH_DATES, *POSTCODES]
PATIENT_KEYS = [*PATIENT_IDS, BAD_ROW_PATIENT]
NHS = [*NHS_NUMBERS, BAD_NHS_NUMBER]
EVERY_IDENTIFIER = [*PATIENT_KEYS, *NHS, *PASS_THROUGH]


def spaced(nhs: str) -> str:
    return f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"


def leaks(text: str, values: list[str] = EVERY_IDENTIFIER) -> list[str]:
    """The identifiers found in ``text`` (NHS numbers also spaced 3-3-4)."""
    found = [v for v in values if v in text]
    found += [spaced(v) for v in values if v in NHS and spaced(v) in text]
    return found


# -- inputs ----------------------------------------------------------------------------------


def _answers(i: int, visit: int) -> list[str]:
    return [str(1 + (i + visit + j) % 4) for j in range(13)]


def cohort_csv() -> str:
    header = ["patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument", "site"]
    lines = [",".join([*header, *ITEMS, "name", "date_of_birth", "postcode"])]
    for i in range(N_PATIENTS):
        for visit, day in ((0, "2024-01-15"), (1, "2024-08-20")):
            row = [PATIENT_IDS[i], NHS_NUMBERS[i], f"A{i:02d}{visit}", day, "PAM-13", "North"]
            row += [*_answers(i, visit), NAMES[i], BIRTH_DATES[i], POSTCODES[i]]
            lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def bad_csv() -> str:
    """Rows each rejected for a different reason, every one holding identifiers."""
    header = ["patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument", "site"]
    lines = [",".join([*header, *ITEMS, "name", "date_of_birth", "postcode"])]
    good = ["3"] * 13
    tail = [NAMES[0], BIRTH_DATES[0], POSTCODES[0]]
    rows = [
        [BAD_ROW_PATIENT, BAD_NHS_NUMBER, "B1", "2024-01-15", "PAM-13", "North", *good],
        [PATIENT_IDS[1], NHS_NUMBERS[1], "B2", "2024-02-31", "PAM-13", "North", *good],
        [PATIENT_IDS[2], NHS_NUMBERS[2], "B3", "2024-01-15", "PAM-13", "North", "5", *good[1:]],
        [PATIENT_IDS[3], NHS_NUMBERS[3], "B4", "2024-01-15", "PAM-13", "North", "Maybe", *good[1:]],
        [PATIENT_IDS[4], NHS_NUMBERS[4], "B4", "2024-01-16", "PAM-13", "North", *good],
        [PATIENT_IDS[5], NHS_NUMBERS[5], "B6", "2024-01-15", "PAM-99", "North", *good],
        [PATIENT_IDS[6], NHS_NUMBERS[6], "B7", "2024-01-15", "PAM-13", "North", *[""] * 13],
    ]
    lines += [",".join([*row, *tail]) for row in rows]
    lines.append(f"{PATIENT_IDS[7]},{NHS_NUMBERS[7]},B8,2024-01-15,PAM-13")  # too few fields
    return "\n".join(lines) + "\n"


def fhir_ndjson(bad: bool) -> str:
    """Patients with identifiers, names, birth dates and postcodes, and their responses."""
    out: list[dict[str, Any]] = []
    for i in range(4):
        out.append(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "identifier": [
                    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBERS[i]},
                    {"system": "https://pamlib.org/fhir/Id/patient-id", "value": PATIENT_IDS[i]},
                ],
                "name": [{"text": NAMES[i]}],
                "birthDate": BIRTH_DATES[i],
                "address": [{"postalCode": POSTCODES[i]}],
            }
        )
        items: list[dict[str, Any]] = [
            {"linkId": f"pam13.{n + 1:02d}", "answer": [{"valueCoding": {"code": a}}]}
            for n, a in enumerate(_answers(i, 0))
        ]
        if bad and i % 2:
            items[0]["answer"] = [{"valueCoding": {"code": "9"}}]
        out.append(
            {
                "resourceType": "QuestionnaireResponse",
                "identifier": {
                    "system": "https://pamlib.org/fhir/Id/assessment-id",
                    "value": f"F{i}",
                },
                "questionnaire": "https://pamlib.org/fhir/Questionnaire/PAM-13|1",
                "status": "completed",
                "subject": {"reference": f"Patient/p{i}"},
                "authored": "2024-01-15",
                "item": items,
            }
        )
    if bad:  # a response citing a patient by an NHS number with a wrong check digit
        wrong = dict(out[1], identifier={"value": "F9"})
        wrong["subject"] = {
            "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": BAD_NHS_NUMBER}
        }
        out.append(wrong)
    return "\n".join(json.dumps(r) for r in out) + "\n"


SITE_RULES = """
format = 1

[[rule]]
id = "privacy.postcode-rule"
priority = 10
reason = "People in one area get a local note."
when = { attributes = { postcode = "ZX0 7QV" } }
then = [ { note = "A local service exists." } ]
"""


@attrs.frozen
class Workspace:
    folder: Path
    cohort: Path
    bad: Path
    fhir: Path
    fhir_bad: Path
    rules: Path
    scored: Path
    scored_nhs: Path


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("privacy")
    files = {
        "cohort.csv": cohort_csv(),
        "bad.csv": bad_csv(),
        "cohort.ndjson": fhir_ndjson(bad=False),
        "bad.ndjson": fhir_ndjson(bad=True),
        "site-rules.toml": SITE_RULES,
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    reset_host(PluginHost(load_entry_points=False, disabled=()))
    try:
        scored, scored_nhs = folder / "scored.csv", folder / "scored-nhs.csv"
        base = ["score", str(folder / "cohort.csv"), "--provider", "demo", "--no-progress"]
        assert main([*base, "-o", str(scored)]) == 0
        assert main([*base, "-o", str(scored_nhs), "--keep-nhs-number"]) == 0
        yield Workspace(
            folder,
            folder / "cohort.csv",
            folder / "bad.csv",
            folder / "cohort.ndjson",
            folder / "bad.ndjson",
            folder / "site-rules.toml",
            scored,
            scored_nhs,
        )
    finally:
        reset_host(None)


# -- running commands ------------------------------------------------------------------------


@attrs.frozen
class Run:
    status: int
    stdout: str
    stderr: str
    logs: str


def run_cli(
    argv: list[str], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Run:
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        status = main(argv)
    out, err = capsys.readouterr()
    records = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    return Run(status, out, err, records)


@attrs.frozen
class Case:
    """One command: its arguments (given the workspace and an output folder), which of its
    files are published reports and which are per-patient outputs the user asked for."""

    argv: Callable[[Workspace, Path], list[str]]
    published: tuple[str, ...] = ()
    per_patient: tuple[str, ...] = ()
    stdout_per_patient: bool = False
    nhs_asked: bool = False
    status: tuple[int, ...] = (0,)


def _score(*extra: str, source: str = "cohort") -> Callable[[Workspace, Path], list[str]]:
    def argv(ws: Workspace, out: Path) -> list[str]:
        path = {"cohort": ws.cohort, "bad": ws.bad, "fhir": ws.fhir, "fhir-bad": ws.fhir_bad}
        return ["score", str(path[source]), "--provider", "demo", "--no-progress",
                *(e.format(out=out, rules=ws.rules) for e in extra)]  # fmt: skip

    return argv


def _report(*extra: str, scored: str = "scored") -> Callable[[Workspace, Path], list[str]]:
    def argv(ws: Workspace, out: Path) -> list[str]:
        source = {"scored": ws.scored, "nhs": ws.scored_nhs, "raw": ws.cohort}[scored]
        return ["report", str(source), "-o", str(out / "report.html"),
                *(e.format(out=out) for e in extra)]  # fmt: skip

    return argv


def _args(*parts: str) -> Callable[[Workspace, Path], list[str]]:
    def argv(ws: Workspace, out: Path) -> list[str]:
        names = {"rules": ws.rules, "scored": ws.scored, "nhs": ws.scored_nhs, "fhir": ws.fhir,
                 "fhir_bad": ws.fhir_bad, "cohort": ws.cohort, "bad": ws.bad}  # fmt: skip
        return [p.format(out=out, **{k: str(v) for k, v in names.items()}) for p in parts]

    return argv


CASES = {
    "score-csv-to-stdout": Case(_score(), stdout_per_patient=True),
    "score-csv": Case(_score("-o", "{out}/s.csv"), per_patient=("s.csv", "s.rejects.csv")),
    "score-keep-nhs-number": Case(
        _score("-o", "{out}/s.csv", "--keep-nhs-number"), per_patient=("s.csv",), nhs_asked=True
    ),
    "score-parquet": Case(_score("-o", "{out}/s.parquet"), per_patient=("s.parquet",)),
    "score-json-lines": Case(_score("-o", "{out}/s.jsonl"), per_patient=("s.jsonl",)),
    "score-fhir-out": Case(
        _score("-o", "{out}/s.ndjson", "--format", "fhir"), per_patient=("s.ndjson",)
    ),
    "score-fhir-out-keep-nhs-number": Case(
        _score("-o", "{out}/s.ndjson", "--format", "fhir", "--keep-nhs-number"),
        per_patient=("s.ndjson",),
        nhs_asked=True,
    ),
    "score-recommend": Case(_score("-o", "{out}/r.csv", "--recommend"), per_patient=("r.csv",)),
    "score-rules": Case(_score("-o", "{out}/r.csv", "--rules", "{rules}"), per_patient=("r.csv",)),
    # a run that scores nothing exits 1 with its files written (no silent zero)
    "score-bad-rows": Case(
        _score("-o", "{out}/s.csv", source="bad"),
        per_patient=("s.csv", "s.rejects.csv"),
        status=(0, 1),
    ),
    "score-bad-rows-strict": Case(
        _score("-o", "{out}/s.csv", "--strict", source="bad"),
        per_patient=("s.csv", "s.rejects.csv"),
        status=(1,),
    ),
    "score-bad-rows-to-stdout": Case(
        _score("--rejects", "{out}/rej.csv", source="bad"),
        per_patient=("rej.csv",),
        stdout_per_patient=True,
        status=(0, 1),
    ),
    "score-fhir-in": Case(
        _score("-o", "{out}/s.csv", source="fhir"), per_patient=("s.csv",), status=(0, 1)
    ),
    "score-fhir-in-bad": Case(
        _score("-o", "{out}/s.csv", source="fhir-bad"),
        per_patient=("s.csv", "s.rejects.csv"),
        status=(0, 1),
    ),
    "report": Case(
        _report("--json", "{out}/r.json", "--patients", "{out}/p.csv"),
        published=("report.html", "r.json"),
        per_patient=("p.csv",),
    ),
    "report-publish": Case(
        _report("--json", "{out}/r.json", "--publish"), published=("report.html", "r.json")
    ),
    "report-group-by-site-publish": Case(
        _report("--json", "{out}/r.json", "--publish", "--group-by", "site"),
        published=("report.html", "r.json"),
    ),
    "report-from-nhs-scored-publish": Case(
        _report("--json", "{out}/r.json", "--publish", scored="nhs"),
        published=("report.html", "r.json"),
    ),
    "report-raw-export-with-provider": Case(
        _report("--json", "{out}/r.json", "--provider", "demo", scored="raw"),
        published=("report.html", "r.json"),
        per_patient=("report.scored.csv",),
    ),
    "rules-check": Case(_args("rules", "check", "{rules}")),
    "rules-explain-row": Case(
        _args("rules", "explain", "--input", "{scored}", "--assessment-id", "A000")
    ),
    "rules-explain-json": Case(
        _args("rules", "explain", "--input", "{nhs}", "--assessment-id", "A011", "--json")
    ),
    "rules-explain-missing-row": Case(
        _args("rules", "explain", "--input", "{nhs}", "--assessment-id", PATIENT_IDS[0]),
        status=(1, 2),
    ),
    "rules-overdue": Case(
        _args("rules", "overdue", "--input", "{nhs}", "--on", "2026-01-01", "--all"),
        stdout_per_patient=True,
    ),
    "calibration": Case(
        _args("calibration", str(ROOT / "docs" / "examples" / "synthetic-demo-PAM-13.json"))
    ),
    "calibration-bad-file": Case(_args("calibration", "{cohort}"), status=(1, 2)),
    "fhir-check": Case(_args("fhir", "check", "{fhir}")),
    "fhir-check-bad": Case(_args("fhir", "check", "{fhir_bad}", "--json"), status=(0, 1)),
    "fhir-questionnaire": Case(_args("fhir", "questionnaire", "--instrument", "PAM-13")),
    "plugins": Case(_args("plugins")),
    "plugins-json": Case(_args("plugins", "--json")),
    "demo": Case(_args("demo", "--patients", "30", "--output-dir", "{out}/demo")),
}

#: Commands that once leaked or failed (issue cases 6 and 16), kept as cases of their own.
CASES |= {
    "report-group-by-nhs-number-publish": Case(
        _report("--json", "{out}/r.json", "--publish", "--group-by", "nhs_number", scored="nhs"),
        published=("report.html", "r.json"),
        status=(0, 2),
    ),
    "report-group-by-postcode-publish": Case(
        _report("--json", "{out}/r.json", "--publish", "--group-by", "postcode"),
        published=("report.html", "r.json"),
        status=(0, 2),
    ),
    "report-bad-input": Case(
        _args("report", "{bad}", "-o", "{out}/report.html", "--json", "{out}/r.json"),
        published=("report.html", "r.json"),
        status=(1, 2),
    ),
}

#: Commands that still leak (or fail) today, with the reason they wait for a fix.
KNOWN_FAILURES: dict[str, tuple[Case, str]] = {}


def _params() -> list[object]:
    params: list[object] = [pytest.param(case, id=name) for name, case in CASES.items()]
    params += [
        pytest.param(case, id=name, marks=pytest.mark.xfail(strict=True, reason=reason))
        for name, (case, reason) in KNOWN_FAILURES.items()
    ]
    return params


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder a command writes to, also its working directory (default rejects files)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _read(path: Path) -> str:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    return path.read_text(encoding="utf-8", errors="replace")


@pytest.mark.parametrize("case", _params())
def test_no_identifier_leaves_a_command(
    case: Case,
    ws: Workspace,
    out: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tmp_path = out
    reset_host(PluginHost(load_entry_points=False, disabled=()))
    try:
        run = run_cli(case.argv(ws, tmp_path), capsys, caplog)
    finally:
        reset_host(None)
    assert run.status in case.status, run.stderr
    assert "Traceback" not in run.stderr
    assert leaks(run.stderr) == [], "standard error"
    assert leaks(run.logs) == [], "log records"
    if case.stdout_per_patient:
        assert leaks(run.stdout, NHS) == [], "NHS numbers on standard output"
    else:
        assert leaks(run.stdout) == [], "standard output"
    for file in case.published:
        if run.status == 0:
            assert (tmp_path / file).exists(), f"{file} was not written: nothing was checked"
        if (tmp_path / file).exists():
            assert leaks(_read(tmp_path / file)) == [], file
    for file in case.per_patient:
        if (tmp_path / file).exists():
            found = leaks(_read(tmp_path / file), NHS)
            if case.nhs_asked:
                assert found, f"{file}: --keep-nhs-number asked for the NHS number"
            elif "rejects" not in file and file != "rej.csv":
                assert found == [], file
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    unlisted = written - set(case.published) - set(case.per_patient)
    for file in sorted(unlisted):  # anything else a command wrote is held to the strict rule
        if not file.startswith("demo/"):
            assert leaks(_read(tmp_path / file)) == [], file


def test_identifiers_do_reach_the_per_patient_output(ws: Workspace) -> None:
    """The control: the identifiers flow through a run, so their absence elsewhere means
    something."""
    scored = ws.scored.read_text(encoding="utf-8")
    assert set(leaks(scored)) == {*PATIENT_IDS, *PASS_THROUGH}
    assert set(leaks(ws.scored_nhs.read_text(encoding="utf-8"), NHS)) == set(NHS_NUMBERS)


# -- in a subprocess: what a user's terminal and a scheduler's log capture -------------------


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["score", "{bad}", "--provider", "demo", "-o", "{out}/s.csv"], id="score"),
        pytest.param(
            ["report", "{nhs}", "-o", "{out}/r.html", "--publish", "--json", "{out}/r.json"],
            id="report-publish",
        ),
        pytest.param(["fhir", "check", "{fhir_bad}"], id="fhir-check"),
    ],
)
def test_no_identifier_on_a_terminal(ws: Workspace, tmp_path: Path, argv: list[str]) -> None:
    names = {"bad": ws.bad, "nhs": ws.scored_nhs, "fhir_bad": ws.fhir_bad}
    args = [a.format(out=tmp_path, **{k: str(v) for k, v in names.items()}) for a in argv]
    done = subprocess.run(
        [sys.executable, "-m", "pamlib", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "default"},
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    assert leaks(done.stderr) == []
    assert leaks(done.stdout) == []
    for file in ("r.html", "r.json"):
        if (tmp_path / file).exists():
            assert leaks((tmp_path / file).read_text(encoding="utf-8")) == [], file


# -- reprs and exception messages --------------------------------------------------------------


def _objects() -> list[object]:
    """The objects a run holds for one patient: built from the identifiers above."""
    import datetime as dt

    from pamlib.assessment import Assessment
    from pamlib.identity import Patient
    from pamlib.instruments import BUILTIN_INSTRUMENTS
    from pamlib.scoring.demo import DemoProvider

    patient = Patient(PATIENT_IDS[0], nhs_number=NHS_NUMBERS[0])
    attributes = {"name": NAMES[0], "date_of_birth": BIRTH_DATES[0], "postcode": POSTCODES[0]}
    pam13 = BUILTIN_INSTRUMENTS[0]
    assessment = Assessment(
        "A1",
        patient,
        pam13,
        dt.date(2024, 1, 15),
        dict.fromkeys(pam13.items, 3),
        attributes=attributes,
    )
    result = DemoProvider().score(assessment)
    return [patient, assessment, result]


def test_no_identifier_in_reprs_of_a_run() -> None:
    for obj in _objects():
        for text in (repr(obj), str(obj), repr([obj])):
            assert leaks(text) == [], type(obj).__name__


def _context() -> object:
    from pamlib.tailoring.context import Context

    assessment, result = _objects()[1:]
    return Context.of(assessment, result)  # type: ignore[arg-type]


def test_no_identifier_in_the_tailoring_context_repr() -> None:
    context = _context()
    for text in (repr(context), str(context)):
        assert leaks(text) == []


def test_no_identifier_in_rejects_or_reader_errors(ws: Workspace) -> None:
    from pamlib.errors import PamlibError
    from pamlib.fhir._reader import read_fhir
    from pamlib.formats.base import ReadOptions
    from pamlib.formats.delimited import CsvFormat

    rejects = [r for chunk in CsvFormat().read(ws.bad, ReadOptions()) for r in chunk.rejects]
    assert len(rejects) >= 7
    _, fhir_rejects, _ = read_fhir(ws.fhir_bad)
    assert fhir_rejects
    for reject in [*rejects, *fhir_rejects]:
        assert leaks(f"{reject!r} {reject.message} {reject.location}") == []
    with pytest.raises(PamlibError) as info:
        read_fhir(ws.fhir_bad, strict=True)
    assert leaks(str(info.value)) == []
    assert leaks(repr(info.value)) == []


def test_no_identifier_in_identity_errors() -> None:
    from pamlib.errors import PamlibError
    from pamlib.identity import Patient

    for bad in (BAD_NHS_NUMBER, spaced(BAD_NHS_NUMBER)):
        with pytest.raises(PamlibError) as info:
            Patient(PATIENT_IDS[0], nhs_number=bad)
        assert leaks(str(info.value)) == []
