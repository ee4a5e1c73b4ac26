"""Hostile: what pamlib writes as FHIR reads back as written, is valid JSON and FHIR, says when it
is not the PAM, and fails cleanly.

An audit of the writing side found:

1. ``pamlib score --format fhir -o out.ndjson`` wrote a Bundle into ``out.ndjson`` (the writer
   is handed a stream, and only a path's name chose NDJSON), so scoring the file again rejected
   every line; ``write_fhir("out.ndjson", …)`` did the same by default.
2. A result's infinite score, theta or standard error was written as ``Infinity``: not JSON.
3. Text a FHIR string cannot hold — control characters, half a surrogate pair (a bare
   ``UnicodeEncodeError``), an empty attribute name — was written into the file, or failed with
   no location; ``pamlib score`` wrote such a row's control characters and exited 0.
4. The input's pass-through columns (``ward``) were dropped from FHIR output, and a kept NHS
   number was written a second time, as a free-text attribute of the response.
5. The format plugin's writer, given a path, wrote ``NAME.part`` beside it and deleted it
   (destroying a user's file of that name), replaced a symlink with a file, replaced a device
   (``/dev/null``, as root) with a regular file, and left ``NAME.part`` behind when the target
   was a directory.
6. A level Observation of a demonstration, unlicensed or raw-only result was titled "Activation
   level" and, with ``snomed_level``, coded as the SNOMED CT *PAM level*; a result flagged
   ``demo`` without ``demo=True`` had no tag and no note.
7. ``pamlib fhir questionnaire`` with standard output closed exited 0 having written nothing
   (``pamlib fhir check``'s report vanished too); ``--language ""`` wrote an empty ``language``,
   invalid FHIR; a file ``pamlib fhir check`` could not read was named by its full path.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pamlib import Assessment, Patient
from pamlib.cli import main
from pamlib.errors import FormatError, ValidationError
from pamlib.fhir import BundleSettings, check, questionnaire, read_fhir, to_bundle, write_fhir
from pamlib.fhir.codes import SNOMED, TAG_SYSTEM
from pamlib.formats.base import WriteOptions
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.levels import ActivationLevel
from pamlib.plugins import PluginHost
from pamlib.results import Flag, ScoreResult, ScoreStatus
from tests.test_fhir_plugin import cohort_batch

PAM13 = BUILTIN_INSTRUMENTS[0]
ALL_ANSWERED = {f"pam13.{i:02d}": 1 + i % 4 for i in range(1, 14)}
NHS = "9434765919"
ITEMS = ",".join(f"q{i:02d}" for i in range(1, 14))
ANSWERS = ",".join(str(1 + i % 4) for i in range(1, 14))


def assessment(aid: str = "A1", pid: str = "P1", **kwargs: Any) -> Assessment:
    values: dict[str, Any] = {
        "id": aid,
        "patient": Patient(pid),
        "instrument": PAM13,
        "assessed_on": dt.date(2025, 3, 1),
        "responses": ALL_ANSWERED,
    }
    return Assessment(**(values | kwargs))


def result(aid: str = "A1", **kwargs: Any) -> ScoreResult:
    values: dict[str, Any] = {
        "assessment_id": aid,
        "status": ScoreStatus.SCORED,
        "provider": "vendor",
        "provider_version": "2.0",
        "n_answered": 13,
        "raw_score": 40,
        "score": 55.1,
        "score_se": 3.2,
        "level": ActivationLevel.LEVEL_3,
        "cutpoint_set": "current",
        "calibration_id": "cal-7",
    }
    return ScoreResult(**(values | kwargs))


def export(path: Path, *rows: str, header: str = "patient_id,assessment_id") -> Path:
    """A PAM-13 CSV export: ``header`` columns, then date, instrument and every item."""
    lines = [f"{header},assessed_on,instrument,{ITEMS}"]
    lines += [f"{row},2024-01-01,PAM-13,{ANSWERS}" for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def score(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([*argv, "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "internal error" not in err
    return code, err


# -- 1. NDJSON by name ------------------------------------------------------------------------


def test_score_writes_ndjson_fhir_to_an_ndjson_name_and_reads_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = export(tmp_path / "in.csv", "P1,A1", "P2,A2", "P1,A3")
    out = tmp_path / "out.ndjson"
    assert score(["score", str(source), "--provider", "demo", "--format", "fhir", "-o", str(out)],
                 capsys)[0] == 0  # fmt: skip
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["resourceType"] for line in lines[:2]] == [
        "Patient",
        "QuestionnaireResponse",
    ]
    assert all(check(json.loads(line)) == [] for line in lines)
    back, rejects, _ = read_fhir(out)
    assert rejects == []
    assert [a.id for a in back] == ["A1", "A2", "A3"]
    again = tmp_path / "again.csv"
    code, err = score(["score", str(out), "--provider", "demo", "-o", str(again)], capsys)
    assert code == 0
    assert "read 3 = scored 3 + not scored 0 + rejected 0" in err


def test_write_fhir_style_follows_the_name_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    items = [assessment("A1"), assessment("A2", "P2")]
    for name in ("out.ndjson", "out.jsonl", "out.json"):
        write_fhir(tmp_path / name, items)
        back, rejects, _ = read_fhir(tmp_path / name)
        assert (rejects, [a.id for a in back]) == ([], ["A1", "A2"]), name
    for name, style in (("bundle.ndjson", "collection"), ("lines.json", "ndjson")):
        with pytest.raises(FormatError) as caught:
            write_fhir(tmp_path / name, items, settings=BundleSettings(style=style))
        assert caught.value.problems[0].code == "fhir-style"
        assert not (tmp_path / name).exists()


# -- 2. numbers JSON cannot hold -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["score", "theta", "theta_se", "score_se"])
def test_a_number_that_is_not_finite_is_refused_not_written_as_infinity(
    field: str, tmp_path: Path
) -> None:
    infinite: dict[str, Any] = {field: float("inf")}
    bad = result(**infinite)
    out = tmp_path / "out.json"
    with pytest.raises(FormatError) as caught:
        write_fhir(out, [assessment()], [bad])
    assert [(p.where, p.code) for p in caught.value.problems] == [("assessments[0]", "not-finite")]
    assert not out.exists()
    with pytest.raises(ValidationError):
        to_bundle([assessment()], [bad])


# -- 3. text FHIR cannot hold ---------------------------------------------------------------------

IDENTIFYING = "Jane9434765919"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: (assessment(f"{IDENTIFYING}\x01"), result(f"{IDENTIFYING}\x01")), "assessment id"),
        (lambda: (assessment(pid=f"{IDENTIFYING}\x1f"), result()), "patient id"),
        (lambda: (assessment(site=f"{IDENTIFYING}\x00"), result()), "site"),
        (lambda: (assessment(attributes={"note": f"{IDENTIFYING}\ud800"}), result()), "value of"),
        (lambda: (assessment(attributes={"": IDENTIFYING}), result()), "name of"),
        (lambda: (assessment(), result(provider_version=f"{IDENTIFYING}\x07")), "provider version"),
    ],
    ids=["id-control", "patient-control", "site-nul", "attribute-surrogate", "empty-name",
         "provider-version"],
)  # fmt: skip
@pytest.mark.parametrize("name", ["out.json", "out.ndjson"])
def test_text_a_fhir_string_cannot_hold_is_refused_where_and_what_never_the_value(
    make: Any, field: str, name: str, tmp_path: Path
) -> None:
    item, scored = make()
    out = tmp_path / name
    with pytest.raises(FormatError) as caught:
        write_fhir(out, [assessment("A0", "P0"), item], [scored])
    (problem,) = caught.value.problems
    assert (problem.where, problem.code) == ("assessments[1]", "fhir-string")
    assert field in problem.message
    assert IDENTIFYING not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_score_refuses_a_row_fhir_cannot_hold_and_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = export(tmp_path / "in.csv", "P1,A1", f"P2,{IDENTIFYING}\x02")
    out = tmp_path / "out.fhir.json"
    code, err = score(["score", str(source), "--provider", "demo", "-o", str(out)], capsys)
    assert code == 1
    assert "control character" in err
    assert "line 3" in err
    assert IDENTIFYING not in err
    assert not out.exists()


# -- 4. extra columns --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.fhir.json", "out.ndjson"])
def test_pass_through_columns_are_attributes_and_the_nhs_number_is_only_the_patients(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = export(
        tmp_path / "in.csv",
        f"P1,{NHS},A1,s1,w1",
        "P2,,A2,,",
        header="patient_id,nhs_number,assessment_id,site,ward",
    )
    out = tmp_path / name
    argv = ["score", str(source), "--provider", "demo", "--format", "fhir", "-o", str(out)]
    assert score([*argv, "--keep-nhs-number"], capsys)[0] == 0
    back, rejects, _ = read_fhir(out)
    assert rejects == []
    assert [(a.id, a.site, dict(a.attributes)) for a in back] == [
        ("A1", "s1", {"ward": "w1"}),
        ("A2", None, {}),
    ]
    assert back[0].patient.nhs_number == NHS
    text = out.read_text(encoding="utf-8")
    resources = (
        [json.loads(line) for line in text.splitlines()]
        if name.endswith(".ndjson")
        else [e["resource"] for e in json.loads(text)["entry"]]
    )
    for resource in resources:
        if resource["resourceType"] != "Patient":
            assert NHS not in json.dumps(resource), resource["resourceType"]
    with (tmp_path / "in.csv").open(encoding="utf-8") as f:
        assert [row["ward"] for row in csv.DictReader(f)] == ["w1", ""]


def test_extra_columns_of_the_write_options_are_attributes(
    tmp_path: Path, host: PluginHost
) -> None:
    import attrs
    import numpy as np

    batch = cohort_batch(2)
    wards = ["w1"] + [""] * (len(batch) - 1)
    batch = attrs.evolve(batch, extras={"ward": np.array(wards, dtype=object)})
    out = tmp_path / "out.json"
    fmt = host.formats()["fhir"]
    with fmt.open_writer(out, WriteOptions(extra_columns=("ward",))) as writer:  # type: ignore[attr-defined]
        writer.write(batch, None, {})
    back, _, _ = read_fhir(out, instruments=host.instruments())
    assert [dict(a.attributes) for a in back] == [{"ward": "w1"}] + [{}] * (len(batch) - 1)


# -- 5. the plugin's writer writes a path as every output is ------------------------------------


def _write_failing(path: Path, host: PluginHost) -> None:
    fmt = host.formats()["fhir"]
    with fmt.open_writer(path, WriteOptions()) as writer:  # type: ignore[attr-defined]
        writer.write(cohort_batch(3), None, {})
        raise RuntimeError("stopped half way")


def test_a_file_beside_the_output_is_not_the_writers_to_delete(
    tmp_path: Path, host: PluginHost
) -> None:
    mine = tmp_path / "out.json.part"
    mine.write_text("my own notes", encoding="utf-8")
    with pytest.raises(RuntimeError):
        _write_failing(tmp_path / "out.json", host)
    assert mine.read_text(encoding="utf-8") == "my own notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json.part"]


def test_a_symlinked_output_keeps_its_link(tmp_path: Path, host: PluginHost) -> None:
    (tmp_path / "real.json").write_text("old", encoding="utf-8")
    (tmp_path / "link.json").symlink_to("real.json")
    fmt = host.formats()["fhir"]
    with fmt.open_writer(tmp_path / "link.json", WriteOptions()) as writer:  # type: ignore[attr-defined]
        writer.write(cohort_batch(2), None, {})
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads((tmp_path / "real.json").read_text(encoding="utf-8"))["resourceType"] == (
        "Bundle"
    )


def test_a_directory_output_is_refused_and_leaves_nothing(tmp_path: Path, host: PluginHost) -> None:
    folder = tmp_path / "Jane Smith" / "out.json"
    folder.mkdir(parents=True)
    with pytest.raises(FormatError) as caught:
        _write_failing(folder, host)
    assert "Jane" not in str(caught.value)
    assert list(folder.parent.iterdir()) == [folder]


# -- 6. not-PAM levels ------------------------------------------------------------------------


def _levels(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if "valueCodeableConcept" in e["resource"]]


@pytest.mark.parametrize(
    ("kwargs", "text", "tag"),
    [
        ({"demo": True, "flags": {Flag.DEMO}}, "Demonstration activation level (not a PAM level)",
         "demo"),
        ({"flags": {Flag.DEMO}}, "Demonstration activation level (not a PAM level)", "demo"),
        ({"flags": {Flag.UNLICENSED}}, "Unlicensed activation level (not a PAM level)",
         "unlicensed"),
        ({"flags": {Flag.RAW_ONLY}}, "Activation level (not a PAM level)", "raw-only"),
    ],
    ids=["demo", "demo-flag-only", "unlicensed", "raw-only"],
)  # fmt: skip
def test_a_level_that_is_not_the_pam_says_so_and_is_never_coded_as_the_pam_level(
    kwargs: dict[str, Any], text: str, tag: str
) -> None:
    bundle = to_bundle([assessment()], [result(**kwargs)], snomed_level=True)
    assert check(bundle) == []
    observations = [e["resource"] for e in bundle["entry"][2:]]
    for obs in observations:
        tags = {t["code"] for t in obs["meta"]["tag"] if t["system"] == TAG_SYSTEM}
        assert tag in tags
        assert obs["note"]
        assert obs["status"] == "preliminary"
    (level,) = _levels(bundle)
    assert level["code"]["text"] == text
    assert all(c["system"] != SNOMED for c in level["code"]["coding"])


def test_a_licensed_level_keeps_its_snomed_code() -> None:
    (level,) = _levels(to_bundle([assessment()], [result()], snomed_level=True))
    assert level["code"]["text"] == "Activation level"
    assert any(c["system"] == SNOMED for c in level["code"]["coding"])
    assert level["status"] == "final"


# -- 7. the command line -------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="closing standard output: POSIX")
@pytest.mark.parametrize(
    "argv",
    [["fhir", "questionnaire", "--instrument", "PAM-13"], ["fhir", "check", "q.json"]],
    ids=["questionnaire", "check"],
)
def test_a_fhir_command_with_standard_output_closed_says_so(
    argv: list[str], tmp_path: Path
) -> None:
    (tmp_path / "q.json").write_text(json.dumps(questionnaire("PAM-13")), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pamlib", *argv],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1].startswith("pamlib: error: standard output is closed")
    )


@pytest.mark.parametrize("language", ["", "en GB", "en\x00", "-en", "english language"])
def test_a_questionnaire_language_must_be_a_language_tag(
    language: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValidationError):
        questionnaire("PAM-13", language=language)
    code = main(["fhir", "questionnaire", "--instrument", "PAM-13", f"--language={language}"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "not a language tag" in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("language", ["en", "en-GB", "cy", "zh-Hant-TW"])
def test_language_tags_still_make_a_questionnaire(language: str) -> None:
    q = questionnaire("PAM-13", language=language)
    assert q["language"] == language
    assert check(q) == []


def test_fhir_check_names_a_file_it_cannot_read_by_its_base_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "Jane Smith 9434765919" / "export.json"
    folder.mkdir(parents=True)
    code = main(["fhir", "check", str(folder)])
    err = capsys.readouterr().err
    assert code == 3
    assert "export.json" in err
    assert "Jane" not in err
    assert "9434765919" not in err
