"""What pamlib writes as FHIR: valid for the R4B models and for pamlib's own checks; round trips."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.assessment import Assessment
from pamlib.fhir import questionnaire, questionnaire_response, read_fhir, to_bundle
from pamlib.fhir.codes import (
    ANSWER_SYSTEM,
    BASE,
    LEVEL_SYSTEM,
    LOINC_PAM_SCORE,
    NHS_NUMBER_SYSTEM,
    ORDINAL_VALUE,
    SNOMED_PAM_LEVEL,
    TAG_SYSTEM,
)
from pamlib.hookspecs import hookimpl
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.levels import ActivationLevel
from pamlib.plugins import PluginHost
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.scoring.raw_sum import RawSumProvider
from tests.fhir_support import assert_valid, fhir_assessments, fhir_results, when
from tests.strategies import assessments

PAM13 = BUILTIN_INSTRUMENTS[0]
NS = uuid.UUID("0b7f6f3e-3f7e-4b8e-9a59-4c7d3c0e2a11")


def by_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == kind]


def sample(**kwargs: Any) -> Assessment:
    defaults: dict[str, Any] = {
        "id": "A1",
        "patient": Patient("P1", nhs_number="943 476 5919"),
        "instrument": PAM13,
        "assessed_on": when(),
        "responses": {"pam13.01": 3, "pam13.02": -1, "pam13.05": 4},
    }
    return Assessment(**(defaults | kwargs))


def licensed(aid: str = "A1", **kwargs: Any) -> ScoreResult:
    defaults: dict[str, Any] = {
        "assessment_id": aid,
        "status": ScoreStatus.SCORED,
        "provider": "vendor",
        "provider_version": "2.0",
        "n_answered": 13,
        "raw_score": 40,
        "score": 55.15,
        "score_se": 3.2,
        "level": ActivationLevel.LEVEL_3,
        "cutpoint_set": "current",
        "calibration_id": "cal-7",
    }
    return ScoreResult(**(defaults | kwargs))


# -- Questionnaire ----------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", BUILTIN_INSTRUMENTS, ids=lambda i: i.id)
def test_questionnaire_is_valid(instrument: Instrument, host: PluginHost) -> None:
    q = questionnaire(instrument, host=host)
    assert_valid(q)
    assert q["url"].endswith(f"/Questionnaire/{instrument.id}")
    assert [i["linkId"] for i in q["item"]] == list(instrument.items)
    for item in q["item"]:
        assert item["type"] == "choice"
        weights = [
            next(
                (e["valueDecimal"] for e in o.get("extension", []) if e["url"] == ORDINAL_VALUE),
                None,
            )
            for o in item["answerOption"]
        ]
        assert weights == [1, 2, 3, 4, None]  # not applicable carries no weight
        assert item["answerOption"][-1]["valueCoding"]["code"] == "NA"


def test_questionnaire_text_is_a_placeholder_without_a_licence(host: PluginHost) -> None:
    q = questionnaire("PAM-13", host=host)
    assert q["status"] == "draft"
    assert q["item"][0]["text"] == ("Item 1 of PAM-13 — wording supplied by a licensed provider")


def test_questionnaire_uses_licensed_text_from_the_hook() -> None:
    class Licensed:
        @hookimpl
        def pamlib_item_text(self, instrument: Instrument, language: str) -> dict[str, str]:
            return {item: f"[{language}] licensed text {item}" for item in instrument.items}

    host = PluginHost(load_entry_points=False, disabled=(), plugins={"lic": Licensed()})
    q = questionnaire("PAM-10", language="cy", host=host)
    assert q["status"] == "active"
    assert q["item"][0]["text"] == "[cy] licensed text pam10.01"
    assert_valid(q)


def test_questionnaire_carries_loinc_item_codes_when_known(host: PluginHost) -> None:
    inst = attrs.evolve(PAM13, item_loinc={"pam13.01": "00000-0"})
    q = questionnaire(inst, host=host)
    assert q["item"][0]["code"] == [{"system": "http://loinc.org", "code": "00000-0"}]
    assert "code" not in q["item"][1]
    assert q["code"] == [{"system": "http://loinc.org", "code": "86933-9"}]


# -- QuestionnaireResponse --------------------------------------------------------------------


def test_response_keeps_not_applicable_apart_from_unanswered(host: PluginHost) -> None:
    qr = questionnaire_response(sample())
    assert_valid(qr)
    answers = {i["linkId"]: i["answer"][0]["valueCoding"] for i in qr["item"]}
    assert set(answers) == {"pam13.01", "pam13.02", "pam13.05"}  # unanswered items left out
    assert answers["pam13.02"] == {
        "system": ANSWER_SYSTEM,
        "code": "NA",
        "display": "Not applicable",
    }
    assert answers["pam13.01"]["extension"] == [{"url": ORDINAL_VALUE, "valueDecimal": 3}]


@given(fhir_assessments())
def test_every_response_is_valid(assessment: Assessment) -> None:
    assert_valid(questionnaire_response(assessment))


@given(assessments())
def test_round_trip_response_is_identity(assessment: Assessment) -> None:
    """assessment → QuestionnaireResponse → assessment, for any assessment pamlib accepts.

    FHIR has no empty strings: an empty site is written as no site.
    """
    back, rejects, counts = read_fhir(questionnaire_response(assessment))
    assert rejects == []
    assert counts.n_read == counts.n_valid == 1
    assert back == [attrs.evolve(assessment, site=assessment.site or None)]


@settings(max_examples=25)  # generating lists of assessments is what takes the time
@given(st.lists(assessments(), max_size=6, unique_by=lambda a: a.id), st.data())
def test_round_trip_through_a_bundle_is_identity(
    items: list[Assessment], data: st.DataObject
) -> None:
    results = [data.draw(fhir_results(a.id)) for a in items]
    kinds: tuple[Literal["transaction", "collection"], ...] = ("transaction", "collection")
    for kind in kinds:
        bundle = to_bundle(items, results, bundle_type=kind)
        back, rejects, counts = read_fhir(json.dumps(bundle))
        assert rejects == []
        assert back == [attrs.evolve(a, site=a.site or None) for a in items]
        assert counts.n_read == len(items)


# -- Bundles and Observations -----------------------------------------------------------------


@settings(max_examples=30)
@given(st.lists(fhir_assessments(), max_size=5, unique_by=lambda a: a.id), st.data())
def test_every_bundle_is_valid(items: list[Assessment], data: st.DataObject) -> None:
    results = [data.draw(fhir_results(a.id)) for a in items]
    snomed = data.draw(st.booleans())
    kind: Literal["transaction", "collection"] = data.draw(
        st.sampled_from(["transaction", "collection"])
    )
    bundle = to_bundle(items, results, bundle_type=kind, snomed_level=snomed)
    assert_valid(bundle)
    for obs in by_type(bundle, "Observation"):
        tags = {t["code"] for t in obs.get("meta", {}).get("tag", [])}
        if tags & {"demo", "raw-only"}:
            assert obs["status"] == "preliminary"
            assert "not a" in obs["note"][0]["text"]
        if tags:  # not a PAM score: never coded as one (a system files it by its code)
            codes = {c["code"] for c in obs["code"]["coding"]}
            assert not codes & {LOINC_PAM_SCORE, SNOMED_PAM_LEVEL}


def test_transaction_bundle_shape(host: PluginHost) -> None:
    a = sample()
    bundle = to_bundle([a], [licensed()], namespace=NS)
    assert_valid(bundle)
    entries = bundle["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == [
        "Patient",
        "QuestionnaireResponse",
        "Observation",
        "Observation",
    ]
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in entries)
    assert all("id" not in e["resource"] for e in entries)  # the server assigns ids
    patient, qr, score, level = entries
    assert patient["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": f"identifier={NHS_NUMBER_SYSTEM}|9434765919",
    }
    assert qr["request"]["ifNoneExist"].endswith("/Id/assessment-id|A1")
    assert qr["resource"]["subject"] == {"reference": patient["fullUrl"]}
    s = score["resource"]
    assert s["status"] == "final"
    assert "meta" not in s
    assert "note" not in s
    assert s["code"]["coding"] == [{"system": "http://loinc.org", "code": LOINC_PAM_SCORE}]
    assert s["category"][0]["coding"][0]["code"] == "survey"
    assert s["valueQuantity"] == {
        "value": 55.2,  # reported to one decimal, half away from zero
        "unit": "score",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert s["derivedFrom"] == [{"reference": qr["fullUrl"]}]
    assert s["method"]["coding"][0]["code"] == "vendor"
    scoring = {e["url"]: e for e in s["extension"][0]["extension"]}
    assert scoring["calibration"]["valueString"] == "cal-7"
    assert scoring["cutpointSet"]["valueString"] == "current"
    lv = level["resource"]
    assert lv["valueCodeableConcept"]["coding"][0] == {
        "system": LEVEL_SYSTEM,
        "code": "level-3",
        "display": "Level 3",
    }
    assert lv["derivedFrom"] == [{"reference": qr["fullUrl"]}, {"reference": score["fullUrl"]}]
    assert [c["system"] for c in lv["code"]["coding"]] == [
        "https://pamlib.org/fhir/CodeSystem/observation"
    ]


def test_snomed_level_code_only_when_configured(host: PluginHost) -> None:
    bundle = to_bundle([sample()], [licensed()], snomed_level=True)
    level = by_type(bundle, "Observation")[1]
    assert {"system": "http://snomed.info/sct", "code": SNOMED_PAM_LEVEL} in [
        {k: c[k] for k in ("system", "code")} for c in level["code"]["coding"]
    ]


def test_demo_scores_are_unmistakable(host: PluginHost) -> None:
    result = licensed(demo=True, flags={Flag.DEMO}, provider="demo-rasch")
    bundle = to_bundle([sample()], [result])
    for obs in by_type(bundle, "Observation"):
        assert obs["status"] == "preliminary"
        assert {"system": TAG_SYSTEM, "code": "demo", "display": "Demonstration score"} in obs[
            "meta"
        ]["tag"]
        assert obs["note"][0]["text"].startswith("DEMONSTRATION ONLY")
    score = by_type(bundle, "Observation")[0]
    assert "not a PAM score" in score["code"]["text"]
    assert score["code"]["coding"] == [
        {"system": f"{BASE}/CodeSystem/observation", "code": "score", "display": "Score"}
    ]


@pytest.mark.parametrize("flags", [{Flag.UNLICENSED}, {Flag.DEMO}])
def test_a_score_that_is_not_the_pam_s_has_no_loinc_code(
    host: PluginHost, flags: set[Flag]
) -> None:
    """LOINC 88175-5 is the PAM score: a record system files a value so coded as the patient's
    PAM score whatever its tags and notes say, so a demonstration or unlicensed score has
    pamlib's own code alone, as a raw total and a level that is not the PAM's have."""
    bundle = to_bundle([sample()], [licensed(flags=flags)], snomed_level=True)
    for obs in by_type(bundle, "Observation"):
        systems = {c["system"] for c in obs["code"]["coding"]}
        assert systems == {f"{BASE}/CodeSystem/observation"}


def test_raw_only_results_have_no_score_observation(host: PluginHost) -> None:
    a = sample()
    result = RawSumProvider().score(a)
    bundle = to_bundle([a], [result])
    observations = by_type(bundle, "Observation")
    assert len(observations) == 1
    raw = observations[0]
    assert raw["code"]["coding"][0]["code"] == "raw-total"
    assert all(c["system"] != "http://loinc.org" for c in raw["code"]["coding"])
    assert raw["valueInteger"] == 7
    assert raw["status"] == "preliminary"
    assert {t["code"] for t in raw["meta"]["tag"]} == {"raw-only"}
    assert not by_type(to_bundle([a], [result], raw_totals=False), "Observation")


def test_not_scored_results_write_only_the_response(host: PluginHost) -> None:
    a = sample(responses={})
    result = RawSumProvider().score(a)
    assert not result.scored
    bundle = to_bundle([a], [result])
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == [
        "Patient",
        "QuestionnaireResponse",
    ]


def test_patients_appear_once_per_bundle(host: PluginHost) -> None:
    p = Patient(None, nhs_number="9434765919")
    items = [sample(id=f"A{i}", patient=p) for i in range(3)]
    bundle = to_bundle(items, namespace=NS)
    patients = by_type(bundle, "Patient")
    assert len(patients) == 1
    subjects = {r["subject"]["reference"] for r in by_type(bundle, "QuestionnaireResponse")}
    assert len(subjects) == 1


def test_uuids_are_reproducible_with_a_namespace_and_random_without(host: PluginHost) -> None:
    a = sample()
    first = to_bundle([a], [licensed()], namespace=NS)
    assert first == to_bundle([a], [licensed()], namespace=NS)
    assert first != to_bundle([a], [licensed()])
    assert to_bundle([a]) != to_bundle([a])


def test_no_identifier_leaks_into_uuids_or_urls(host: PluginHost) -> None:
    """UUIDs derive from the assessment id in the namespace, never from the patient."""
    a = sample()
    b = sample(patient=Patient("someone else", nhs_number="9990000018"))
    full_urls = [e["fullUrl"] for e in to_bundle([a], namespace=NS)["entry"]]
    assert full_urls == [e["fullUrl"] for e in to_bundle([b], namespace=NS)["entry"]]
    text = json.dumps(to_bundle([a], [licensed()], namespace=NS))
    # The NHS number appears exactly where it belongs: the identifier and the conditional create.
    assert text.count("9434765919") == 2


def test_to_bundle_rejects_unmatched_results_and_repeated_ids(host: PluginHost) -> None:
    from pamlib.errors import ValidationError

    with pytest.raises(ValidationError, match="cannot make a Bundle") as info:
        to_bundle([sample(), sample()], [licensed("nope")])
    codes = [p.code for p in info.value.problems]
    assert codes == ["duplicate-id", "unknown-assessment"]


def test_empty_bundle_is_valid(host: PluginHost) -> None:
    bundle = to_bundle([])
    assert bundle == {"resourceType": "Bundle", "type": "transaction"}
    assert_valid(bundle)


# -- write_fhir: the file form of to_bundle -------------------------------------------------------


@pytest.mark.parametrize("style", ["transaction", "collection"])
def test_write_fhir_writes_what_to_bundle_builds(
    host: PluginHost, tmp_path: Any, style: Literal["transaction", "collection"]
) -> None:
    from pamlib import write_fhir
    from pamlib.fhir import BundleSettings

    a = sample()
    target = tmp_path / "out.json"
    n = write_fhir(target, [a], [licensed()], settings=BundleSettings(style=style, namespace=NS))
    written = json.loads(target.read_text(encoding="utf-8"))
    assert written == to_bundle([a], [licensed()], bundle_type=style, namespace=NS)
    assert n == len(written["entry"])
    back, rejects, _ = read_fhir(target, instruments=host.instruments())
    assert rejects == []
    assert [x.id for x in back] == [a.id]


def test_write_fhir_ndjson_is_one_resource_a_line(host: PluginHost, tmp_path: Any) -> None:
    from pamlib.fhir import BundleSettings, write_fhir

    target = tmp_path / "out.ndjson"
    n = write_fhir(target, [sample()], settings=BundleSettings(style="ndjson", namespace=NS))
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == n
    assert {json.loads(line)["resourceType"] for line in lines} == {
        "Patient",
        "QuestionnaireResponse",
    }
    back, rejects, _ = read_fhir(target, instruments=host.instruments())
    assert (len(back), rejects) == (1, [])


def test_write_fhir_leaves_nothing_when_refused(host: PluginHost, tmp_path: Any) -> None:
    """A refused write leaves an existing file as it was and no partial file beside it."""
    from pamlib.errors import ValidationError
    from pamlib.fhir import write_fhir

    target = tmp_path / "out.json"
    target.write_text("before", encoding="utf-8")
    with pytest.raises(ValidationError, match="cannot make a Bundle"):
        write_fhir(target, [sample(), sample()])
    assert target.read_text(encoding="utf-8") == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
