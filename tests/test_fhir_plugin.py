"""The ``fhir`` format through the format hook, and the ``pamlib fhir`` command."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pamlib.cli import main
from pamlib.errors import ConfigurationError, FormatError
from pamlib.fhir import questionnaire_response, read_fhir, to_bundle
from pamlib.fhir.plugin import FhirFormat, looks_like_fhir
from pamlib.formats.base import (
    InputFormat,
    OutputFormat,
    ReadChunk,
    ReadOptions,
    RecordBatch,
    WriteOptions,
    text_values,
)
from pamlib.plugins import PluginHost
from pamlib.scoring.raw_sum import RawSumProvider
from pamlib.synthetic import synthetic_cohort
from tests.fhir_support import assert_valid
from tests.test_fhir_in import MAPPING
from tests.test_fhir_out import sample


def cohort_batch(n: int = 20) -> RecordBatch:
    c = synthetic_cohort(n, seed=7)
    return RecordBatch(
        instrument=c.instrument,
        assessment_id=c.assessment_id,
        patient_id=c.patient_id,
        nhs_number=c.nhs_number,
        assessed_on=c.assessed_on,
        site=c.site,
        codes=c.codes,
        locations=np.array([f"line {i + 2}" for i in range(len(c))]),
    )


def fhir(host: PluginHost) -> FhirFormat:
    fmt = host.formats()["fhir"]
    assert isinstance(fmt, FhirFormat)
    return fmt


def test_registered_as_a_default_plugin(host: PluginHost) -> None:
    fmt = fhir(host)
    assert isinstance(fmt, InputFormat)
    assert isinstance(fmt, OutputFormat)
    record = next(r for r in host.records() if r.name == "pamlib.fhir.plugin")
    assert record.builtin
    assert record.provides == {"formats": ["fhir"]}


def test_can_be_disabled_like_any_plugin() -> None:
    host = PluginHost(load_entry_points=False, disabled=("pamlib.fhir.plugin",))
    assert "fhir" not in host.formats()


@pytest.mark.parametrize("target", ["out.json", "out.ndjson"])
def test_write_then_read_through_the_format(target: str, tmp_path: Path, host: PluginHost) -> None:
    fmt = fhir(host)
    batch = cohort_batch()
    scores = RawSumProvider().score_batch(batch.instrument, batch.codes)
    path = tmp_path / target
    writer = fmt.open_writer(path, WriteOptions(settings={"namespace": str(uuid.UUID(int=5))}))
    half = len(batch) // 2
    for part in (slice(0, half), slice(half, None)):
        sub = RecordBatch(
            instrument=batch.instrument,
            assessment_id=np.asarray(batch.assessment_id)[part],
            patient_id=np.asarray(batch.patient_id)[part],
            nhs_number=np.asarray(batch.nhs_number)[part],
            assessed_on=batch.assessed_on[part],
            site=np.asarray(batch.site)[part],
            codes=batch.codes[part],
            locations=np.asarray(batch.locations)[part],
        )
        sub_scores = RawSumProvider().score_batch(sub.instrument, sub.codes)
        writer.write(sub, sub_scores, {})
    writer.close()
    assert not list(tmp_path.glob("*.part"))
    if target.endswith(".json"):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        assert_valid(bundle)
        patients = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert len(patients) == len(set(batch.patient_id.tolist()))
    else:
        for line in path.read_text(encoding="utf-8").splitlines():
            assert_valid(json.loads(line))
    chunks = list(fmt.read(path, ReadOptions(chunk_rows=7), host=host))
    assert all(isinstance(c, ReadChunk) for c in chunks)
    assert sum(c.n_read for c in chunks) == len(batch)
    assert sum(c.n_valid for c in chunks) == len(batch)
    back = [b for c in chunks for b in c.batches]
    codes = np.concatenate([b.codes for b in back])
    assert np.array_equal(codes, batch.codes)
    assert np.concatenate([b.assessment_id for b in back]).tolist() == batch.assessment_id.tolist()
    assert np.concatenate([b.nhs_number for b in back]).tolist() == batch.nhs_number.tolist()
    assert np.concatenate([b.patient_id for b in back]).tolist() == batch.patient_id.tolist()
    assert np.concatenate([b.site for b in back]).tolist() == batch.site.tolist()
    assert np.array_equal(np.concatenate([b.assessed_on for b in back]), batch.assessed_on)
    rescored = RawSumProvider().score_batch(batch.instrument, codes)
    assert np.array_equal(rescored.raw_score, scores.raw_score)


def test_written_output_is_reproducible_with_a_namespace(tmp_path: Path, host: PluginHost) -> None:
    fmt = fhir(host)
    batch = cohort_batch(5)
    texts = []
    for name in ("a.json", "b.json"):
        with fmt.open_writer(
            tmp_path / name, WriteOptions(settings={"namespace": str(uuid.UUID(int=9))})
        ) as w:
            w.write(batch, None, {})
        texts.append((tmp_path / name).read_text(encoding="utf-8"))
    assert texts[0] == texts[1]


def test_collection_setting_and_empty_output(tmp_path: Path, host: PluginHost) -> None:
    fmt = fhir(host)
    path = tmp_path / "empty.json"
    fmt.open_writer(path, WriteOptions(settings={"bundle": "collection"})).close()
    bundle = json.loads(path.read_text(encoding="utf-8"))
    assert bundle == {"resourceType": "Bundle", "type": "collection"}
    assert_valid(bundle)


def test_a_failed_write_leaves_no_file(tmp_path: Path, host: PluginHost) -> None:
    fmt = fhir(host)
    path = tmp_path / "out.json"
    batch = cohort_batch(3)

    def fail_half_way() -> None:
        with fmt.open_writer(path, WriteOptions()) as w:
            w.write(batch, None, {})
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_half_way()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "settings",
    [{"bundle": "pile"}, {"namespace": "nope"}, {"snomed_level": "maybe"}, {"colour": "red"}],
)
def test_bad_write_settings(settings: dict[str, Any], tmp_path: Path, host: PluginHost) -> None:
    with pytest.raises(ConfigurationError):
        fhir(host).open_writer(tmp_path / "x.json", WriteOptions(settings=settings))


def test_read_settings_mapping_and_strict(sample_data: Path, host: PluginHost) -> None:
    fmt = fhir(host)
    path = sample_data / "qr-lforms-export.json"
    (chunk,) = fmt.read(path, ReadOptions(settings={"mapping": str(MAPPING)}), host=host)
    assert chunk.n_valid == 1
    assert chunk.batches[0].instrument.id == "PAM-13"
    assert chunk.batches[0].patient_id[0].startswith("anonymous:")
    (chunk,) = fmt.read(path, ReadOptions(), host=host)
    assert chunk.rejects[0].code == "unknown-questionnaire"
    with pytest.raises(FormatError):
        list(fmt.read(path, ReadOptions(strict=True), host=host))
    with pytest.raises(ConfigurationError):
        list(fmt.read(path, ReadOptions(settings={"colour": "red"})))


def test_read_options_name_the_instrument_and_link_ids(tmp_path: Path, host: PluginHost) -> None:
    qr = questionnaire_response(sample())
    qr["questionnaire"] = "https://elsewhere.test/Q"
    for item in qr["item"]:
        item["linkId"] = item["linkId"].replace("pam13.", "q")
    path = tmp_path / "in.json"
    path.write_text(json.dumps(qr), encoding="utf-8")
    mapping = {f"q{i:02d}": f"pam13.{i:02d}" for i in range(1, 14)}
    (chunk,) = fhir(host).read(path, ReadOptions(instrument="PAM-13", mapping=mapping), host=host)
    assert chunk.batches[0].codes[0].tolist()[:5] == [3, -1, 0, 0, 4]


def test_questionnaires_setting(tmp_path: Path, host: PluginHost) -> None:
    qpath = tmp_path / "q.json"
    qpath.write_text(
        json.dumps({"resourceType": "Questionnaire", "status": "active"}), encoding="utf-8"
    )
    (chunk,) = fhir(host).read(
        tmp_path / "q.json", ReadOptions(settings={"questionnaires": [str(qpath)]}), host=host
    )
    assert chunk.n_read == 0
    with pytest.raises(ConfigurationError):
        list(
            fhir(host).read(qpath, ReadOptions(settings={"questionnaires": [str(tmp_path / "x")]}))
        )


def test_looks_like_fhir(tmp_path: Path) -> None:
    fhir_file = tmp_path / "a.json"
    fhir_file.write_text('{"resourceType": "Bundle"}', encoding="utf-8")
    plain = tmp_path / "b.json"
    plain.write_text('{"scores": []}', encoding="utf-8")
    assert looks_like_fhir(fhir_file)
    assert not looks_like_fhir(plain)
    assert not looks_like_fhir(tmp_path / "missing.json")


# -- command line ----------------------------------------------------------------------------------


def test_cli_questionnaire(capsys: pytest.CaptureFixture[str], process_host: PluginHost) -> None:
    assert main(["fhir", "questionnaire", "--instrument", "PAM-13"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["url"] == "https://pamlib.org/fhir/Questionnaire/PAM-13"
    assert_valid(q)


def test_cli_questionnaire_to_file(tmp_path: Path, process_host: PluginHost) -> None:
    out = tmp_path / "q.json"
    assert main(["fhir", "questionnaire", "--instrument", "PAM-10", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["version"] == "1"


def test_cli_unknown_instrument(
    capsys: pytest.CaptureFixture[str], process_host: PluginHost
) -> None:
    assert main(["fhir", "questionnaire", "--instrument", "PAM-99"]) == 1
    assert "unknown instrument" in capsys.readouterr().err


def test_cli_fhir_without_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fhir"]) == 2
    assert "questionnaire" in capsys.readouterr().err


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], host: PluginHost) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(to_bundle([sample()])), encoding="utf-8")
    bad = tmp_path / "bad.ndjson"
    qr = questionnaire_response(sample())
    bad.write_text(
        json.dumps(qr) + "\n" + json.dumps(qr | {"status": "done"}) + "\n{\n", encoding="utf-8"
    )
    assert main(["fhir", "check", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["fhir", "check", str(good), str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["problems"] == []
    assert [(p["where"], p["code"]) for p in report[1]["problems"]] == [
        ("line 2, $.status", "code"),
        ("line 3", "json"),
    ]


def test_cli_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fhir", "check", str(tmp_path / "absent.json")]) == 2
    assert "no such file: absent.json" in capsys.readouterr().err


def test_read_fhir_matches_the_format(tmp_path: Path, host: PluginHost) -> None:
    """The Python API and the plugin read the same records."""
    path = tmp_path / "b.json"
    path.write_text(json.dumps(to_bundle([sample(id=f"A{i}") for i in range(4)])), encoding="utf-8")
    assessments, _, _ = read_fhir(path, instruments=host.instruments())
    (chunk,) = fhir(host).read(path, ReadOptions(), host=host)
    assert [a.id for a in assessments] == chunk.batches[0].assessment_id.tolist()
    assert np.array_equal(np.stack([a.codes() for a in assessments]), chunk.batches[0].codes)


def test_attributes_travel_as_extra_columns(tmp_path: Path, host: PluginHost) -> None:
    fmt = fhir(host)
    items = [sample(id="A1", attributes={"condition": "CKD"}), sample(id="A2")]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(to_bundle(items)), encoding="utf-8")
    (chunk,) = fmt.read(path, ReadOptions(), host=host)
    (batch,) = chunk.batches
    assert {k: text_values(v) for k, v in batch.extras.items()} == {"condition": ["CKD", ""]}
    out = tmp_path / "out.json"
    with fmt.open_writer(out, WriteOptions()) as w:
        w.write(batch, None, batch.extras)
    back, _, _ = read_fhir(out, instruments=host.instruments())
    assert [dict(a.attributes) for a in back] == [{"condition": "CKD"}, {}]


def test_other_resources_are_logged_not_silent(
    tmp_path: Path, host: PluginHost, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "obs.ndjson"
    path.write_text(json.dumps({"resourceType": "Observation", "status": "final"}) + "\n")
    with caplog.at_level("INFO", logger="pamlib.fhir.plugin"):
        (chunk,) = fhir(host).read(path, ReadOptions(), host=host)
    assert chunk.n_read == 0
    assert "Observation: 1" in caplog.text
    assert caplog.records[0].levelname == "WARNING"
