"""Reading FHIR: weights, not-applicable, foreign questionnaires, lenient and strict, counts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, FormatError
from pamlib.fhir import parse_mapping, questionnaire, questionnaire_response, read_fhir, to_bundle
from pamlib.fhir.codes import ITEM_WEIGHT, NHS_NUMBER_SYSTEM, ORDINAL_VALUE
from pamlib.identity import Patient
from pamlib.plugins import PluginHost
from pamlib.responses import Response
from tests.conftest import ROOT
from tests.test_fhir_out import sample

MAPPING = ROOT / "docs" / "examples" / "lforms-pam13-mapping.toml"
FOREIGN_URL = "https://example.org/fhir/Questionnaire/pam13-demo"
FOREIGN_SYSTEM = "https://example.org/fhir/CodeSystem/pam-agreement"


def foreign_qr(answers: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A response to a foreign form, answers as linkId → weight (None for N/A)."""
    answers = {"pam1": 4, "pam2": 3, "pam12": None} if answers is None else answers
    items = []
    for link_id, weight in answers.items():
        coding: dict[str, Any] = {
            "system": FOREIGN_SYSTEM,
            "code": "NA" if weight is None else str(weight),
        }
        if weight is not None:
            coding["extension"] = [{"url": ORDINAL_VALUE, "valueDecimal": weight}]
        items.append({"linkId": link_id, "answer": [{"valueCoding": coding}]})
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": f"{FOREIGN_URL}|0.1.0",
        "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9434765919"}},
        "authored": "2025-05-06T10:11:12+01:00",
        "item": items,
    }
    return qr | extra


def bundle_of(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
            for i, r in enumerate(resources)
        ],
    }


# -- the LHC-Forms export ---------------------------------------------------------------------


def test_lforms_export_imports_with_the_example_mapping(
    sample_data: Path, host: PluginHost
) -> None:
    path = sample_data / "qr-lforms-export.json"
    assessments, rejects, counts = read_fhir(path, mapping=MAPPING, instruments=host.instruments())
    assert rejects == []
    assert (counts.n_read, counts.n_valid, counts.n_rejected) == (1, 1, 0)
    (a,) = assessments
    assert a.instrument.id == "PAM-13"
    assert a.responses["pam13.12"] is Response.NOT_APPLICABLE
    assert a.n_answered == 12
    export = json.loads(path.read_text(encoding="utf-8"))
    assert a.assessed_on.isoformat() == export["authored"][:10]
    assert a.patient.id is not None
    assert a.patient.id.startswith("anonymous:")
    raw_total = next(i for i in export["item"] if i["linkId"] == "raw-total")
    score = host.scoring_providers()["raw-sum"].score(a)
    assert score.raw_score == raw_total["answer"][0]["valueDecimal"]


def test_lforms_export_without_mapping_is_rejected_with_a_path(
    sample_data: Path, host: PluginHost
) -> None:
    _, rejects, counts = read_fhir(
        sample_data / "qr-lforms-export.json", instruments=host.instruments()
    )
    assert counts.n_rejected == 1
    assert rejects[0].location == "$.questionnaire"
    assert rejects[0].code == "unknown-questionnaire"


# -- weights and answer codes ---------------------------------------------------------------------


def mapping(**overrides: Any) -> Any:
    entry: dict[str, Any] = {
        "url": FOREIGN_URL,
        "instrument": "PAM-13",
        "items": {f"pam{i}": f"pam13.{i:02d}" for i in range(1, 14)},
        "answers": {"system": FOREIGN_SYSTEM, "NA": "NA"},
    }
    return parse_mapping({"questionnaire": [entry | overrides]})


def test_ordinal_value_item_weight_and_questionnaire_weights(host: PluginHost) -> None:
    qr = foreign_qr({"pam1": 4, "pam2": 2, "pam3": 1})
    del qr["item"][1]["answer"][0]["valueCoding"]["extension"]
    qr["item"][1]["answer"][0]["valueCoding"]["extension"] = [
        {"url": ITEM_WEIGHT, "valueDecimal": 2}
    ]
    del qr["item"][2]["answer"][0]["valueCoding"]["extension"]  # weight from the Questionnaire
    form = {
        "resourceType": "Questionnaire",
        "url": FOREIGN_URL,
        "version": "0.1.0",
        "status": "active",
        "item": [
            {
                "linkId": "pam3",
                "type": "choice",
                "answerOption": [
                    {
                        "extension": [{"url": ORDINAL_VALUE, "valueDecimal": 1}],
                        "valueCoding": {"system": FOREIGN_SYSTEM, "code": "1"},
                    }
                ],
            }
        ],
    }
    (a,), rejects, _ = read_fhir(
        bundle_of(form, qr), mapping=mapping(), instruments=host.instruments()
    )
    assert rejects == []
    assert [int(a.responses[f"pam13.0{i}"]) for i in (1, 2, 3)] == [4, 2, 1]
    # The same Questionnaire given by the caller instead of in the Bundle:
    (b,), _, _ = read_fhir(
        qr, mapping=mapping(), questionnaires=[form], instruments=host.instruments()
    )
    assert b.responses == a.responses


def test_contained_questionnaire_supplies_weights(host: PluginHost) -> None:
    qr = foreign_qr({"pam1": 3})
    del qr["item"][0]["answer"][0]["valueCoding"]["extension"]
    qr["contained"] = [
        {
            "resourceType": "Questionnaire",
            "id": "q",
            "url": FOREIGN_URL,
            "status": "active",
            "item": [
                {
                    "linkId": "pam1",
                    "type": "choice",
                    "answerOption": [
                        {
                            "valueCoding": {
                                "system": FOREIGN_SYSTEM,
                                "code": "3",
                                "extension": [{"url": ORDINAL_VALUE, "valueDecimal": 3}],
                            }
                        }
                    ],
                }
            ],
        }
    ]
    qr["questionnaire"] = "#q"
    (a,), rejects, _ = read_fhir(qr, mapping=mapping(versions=None), instruments=host.instruments())
    assert rejects == []
    assert a.responses == {"pam13.01": Response.AGREE}


def test_weight_offset_for_forms_weighted_from_zero(host: PluginHost) -> None:
    qr = foreign_qr({"pam1": 0, "pam2": 3})
    (a,), rejects, _ = read_fhir(
        qr, mapping=mapping(weight_offset=1), instruments=host.instruments()
    )
    assert rejects == []
    assert a.responses == {
        "pam13.01": Response.DISAGREE_STRONGLY,
        "pam13.02": Response.AGREE_STRONGLY,
    }


def test_answer_codes_mapped_without_weights(host: PluginHost) -> None:
    qr = foreign_qr({"pam1": 4, "pam2": None})
    del qr["item"][0]["answer"][0]["valueCoding"]["extension"]
    answers = {"system": FOREIGN_SYSTEM, "4": 4, "NA": "N/A"}
    (a,), rejects, _ = read_fhir(
        qr, mapping=mapping(answers=answers), instruments=host.instruments()
    )
    assert rejects == []
    assert a.responses == {"pam13.01": Response.AGREE_STRONGLY, "pam13.02": Response.NOT_APPLICABLE}


def test_not_applicable_is_not_unanswered(host: PluginHost) -> None:
    qr = foreign_qr({"pam1": None, "pam2": 2})
    qr["item"].append({"linkId": "pam3"})  # shown but not answered
    (a,), _, _ = read_fhir(qr, mapping=mapping(), instruments=host.instruments())
    codes = a.codes().tolist()
    assert codes[:3] == [-1, 2, 0]
    assert a.n_answered == 1


def test_pamlib_codes_need_no_extension(host: PluginHost) -> None:
    qr = questionnaire_response(sample())
    for item in qr["item"]:
        item["answer"][0]["valueCoding"].pop("extension", None)
    (a,), rejects, _ = read_fhir(qr, instruments=host.instruments())
    assert rejects == []
    assert a == sample()


def test_named_instrument_and_link_ids_for_unmapped_forms(host: PluginHost) -> None:
    qr = foreign_qr({"q-one": 2, "pam13.02": 3})
    qr["questionnaire"] = "https://elsewhere.test/Q"
    (a,), rejects, _ = read_fhir(
        qr, instrument="PAM-13", link_ids={"q-one": "pam13.01"}, instruments=host.instruments()
    )
    assert rejects == []
    assert a.responses == {"pam13.01": Response.DISAGREE, "pam13.02": Response.AGREE}


# -- every problem, with its path -----------------------------------------------------------------


BAD_CASES = [
    # (mutation, expected location, expected code)
    (lambda q: q.update(status="in-progress"), "$.entry[1].resource.status", "status"),
    (
        lambda q: q["item"][1]["answer"][0]["valueCoding"].pop("extension"),
        "$.entry[1].resource.item[1].answer[0].valueCoding",
        "no-weight",
    ),
    (
        lambda q: q["item"][0]["answer"][0]["valueCoding"]["extension"][0].update(valueDecimal=5),
        "$.entry[1].resource.item[0].answer[0].valueCoding",
        "weight-out-of-range",
    ),
    (
        lambda q: q["item"][0]["answer"][0]["valueCoding"]["extension"][0].update(valueDecimal=2.5),
        "$.entry[1].resource.item[0].answer[0].valueCoding",
        "weight-out-of-range",
    ),
    (
        lambda q: q["item"][0]["answer"].append(q["item"][1]["answer"][0]),
        "$.entry[1].resource.item[0].answer",
        "multiple-answers",
    ),
    (lambda q: q["item"][1].update(linkId="pam1"), "$.entry[1].resource.item[1]", "duplicate-item"),
    (
        lambda q: q["item"][1].update(linkId="mystery"),
        "$.entry[1].resource.item[1].linkId",
        "unknown-item",
    ),
    (
        lambda q: q["item"][0].update(answer=[{"valueInteger": 3}]),
        "$.entry[1].resource.item[0].answer[0]",
        "answer-type",
    ),
    (lambda q: q.update(authored="2025-02-30"), "$.entry[1].resource.authored", "date"),
    (lambda q: q.update(authored="2025-02"), "$.entry[1].resource.authored", "date"),
    (lambda q: q.pop("authored"), "$.entry[1].resource.authored", "no-date"),
    (lambda q: q.pop("subject"), "$.entry[1].resource.subject", "no-subject"),
    (
        lambda q: q.update(subject={"reference": "urn:uuid:00000000-0000-4000-8000-000000000099"}),
        "$.entry[1].resource.subject.reference",
        "unresolved-reference",
    ),
    (
        lambda q: q.update(
            subject={"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9434765910"}}
        ),
        "$.entry[1].resource.subject.identifier.value",
        "nhs-number",
    ),
    (
        lambda q: q.update(questionnaire="https://pamlib.org/fhir/Questionnaire/PAM-13|9"),
        "$.entry[1].resource.questionnaire",
        "questionnaire-version",
    ),
]


@pytest.mark.parametrize(("mutate", "where", "code"), BAD_CASES)
def test_problems_have_json_paths_and_good_records_are_kept(
    mutate: Any, where: str, code: str, host: PluginHost
) -> None:
    good = foreign_qr()
    bad = copy.deepcopy(good)
    mutate(bad)
    source = bundle_of(good, bad, good | {"id": "third"})
    assessments, rejects, counts = read_fhir(
        source, mapping=mapping(), instruments=host.instruments()
    )
    assert (counts.n_read, counts.n_valid, counts.n_rejected) == (3, 2, 1)
    assert len(assessments) == 2
    (reject,) = rejects
    assert (reject.location, reject.code) == (where, code)
    assert "9434765919" not in reject.message
    assert "9434765910" not in reject.message
    assert "9434765919" not in repr(reject)
    with pytest.raises(FormatError) as info:
        read_fhir(source, mapping=mapping(), strict=True, instruments=host.instruments())
    assert info.value.problems[0].where == where


def test_every_problem_of_a_record_is_reported(host: PluginHost) -> None:
    qr = foreign_qr()
    qr["status"] = "stopped"
    qr["item"][0]["answer"][0]["valueCoding"]["extension"][0]["valueDecimal"] = 9
    _, (reject,), _ = read_fhir(qr, mapping=mapping(), instruments=host.instruments())
    assert reject.location == "$.status"
    assert "@ $.item[0].answer[0].valueCoding" in reject.message


def test_referenced_patient_with_a_bad_nhs_number(host: PluginHost) -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9434765910"}],
    }
    qr = foreign_qr(subject={"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"})
    _, (reject,), counts = read_fhir(
        bundle_of(patient, qr), mapping=mapping(), instruments=host.instruments()
    )
    assert reject.location == "$.entry[0].resource.identifier[0].value"
    assert reject.code == "nhs-number"
    assert counts.other_resources == {"Bundle": 1, "Patient": 1}


def test_server_references_stand_for_the_patient(host: PluginHost) -> None:
    qr = foreign_qr(subject={"reference": "Patient/123"})
    (a,), _, _ = read_fhir(qr, mapping=mapping(), instruments=host.instruments())
    assert a.patient == Patient("Patient/123")


def test_anonymous_subjects_only_when_the_mapping_says_so(host: PluginHost) -> None:
    qr = foreign_qr()
    del qr["subject"]
    assert read_fhir(qr, mapping=mapping(), instruments=host.instruments())[2].n_rejected == 1
    (a,), _, _ = read_fhir(
        qr, mapping=mapping(missing_subject="anonymous"), instruments=host.instruments()
    )
    assert a.patient.id == f"anonymous:{a.id}"


def test_ignored_link_ids(host: PluginHost) -> None:
    qr = foreign_qr()
    qr["item"].append({"linkId": "raw-total", "answer": [{"valueDecimal": 7}]})
    assert read_fhir(qr, mapping=mapping(), instruments=host.instruments())[2].n_rejected == 1
    assert (
        read_fhir(qr, mapping=mapping(ignore=["raw-total"]), instruments=host.instruments())[
            2
        ].n_valid
        == 1
    )


def test_nested_groups_are_walked(host: PluginHost) -> None:
    qr = foreign_qr()
    qr["item"] = [{"linkId": "group", "item": qr["item"]}]
    (a,), rejects, _ = read_fhir(qr, mapping=mapping(), instruments=host.instruments())
    assert rejects == []
    assert a.n_answered == 2


def test_assessment_id_falls_back_to_resource_id_then_content(host: PluginHost) -> None:
    qr = foreign_qr()
    (a,), _, _ = read_fhir(qr, mapping=mapping(), instruments=host.instruments())
    (b,), _, _ = read_fhir(copy.deepcopy(qr), mapping=mapping(), instruments=host.instruments())
    assert a.id == b.id
    assert a.id.startswith("qr-")
    (c,), _, _ = read_fhir(
        qr | {"id": "server-id"}, mapping=mapping(), instruments=host.instruments()
    )
    assert c.id == "server-id"


# -- files: JSON, NDJSON, garbage ------------------------------------------------------------


def test_a_resource_type_pamlib_does_not_know_is_counted_without_its_text(
    tmp_path: Path, host: PluginHost
) -> None:
    """The counts of other resources are logged: a ``resourceType`` that is not a type pamlib
    knows (it may hold anything, an NHS number say) is counted under a name of pamlib's."""
    lines = [
        json.dumps({"resourceType": "Patient9434765919"}),
        json.dumps({"resourceType": "Observation", "status": "final"}),
        json.dumps(foreign_qr()),
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, _, counts = read_fhir(path, mapping=mapping(), instruments=host.instruments())
    assert counts.other_resources == {"Observation": 1, "another resourceType": 1}


def test_ndjson_with_bad_lines_reconciles(tmp_path: Path, host: PluginHost) -> None:
    good = json.dumps(foreign_qr())
    lines = [
        good,
        "{not json",
        "",
        json.dumps({"hello": 1}),
        json.dumps({"resourceType": "Observation", "status": "final"}),
        json.dumps(foreign_qr(id="second")),
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, rejects, counts = read_fhir(path, mapping=mapping(), instruments=host.instruments())
    assert (counts.n_read, counts.n_valid, counts.n_rejected) == (4, 2, 2)
    assert counts.other_resources == {"Observation": 1}
    assert [(r.location, r.code) for r in rejects] == [
        ("line 2", "json"),
        ("line 4, $", "not-a-resource"),
    ]
    assert all(r.source == str(path) for r in rejects)
    with pytest.raises(FormatError):
        read_fhir(path, mapping=mapping(), strict=True, instruments=host.instruments())


def test_a_byte_order_mark_starting_any_ndjson_line_is_dropped(
    tmp_path: Path, host: PluginHost
) -> None:
    """Each NDJSON line is a JSON text of its own (RFC 8259 section 8.1 lets a parser ignore a
    byte order mark at its start): files with one pasted together read as they would apart,
    and a line of nothing but the mark is blank, as a line of spaces is."""
    bom = "\ufeff"
    lines = [json.dumps(foreign_qr()), bom, bom + json.dumps(foreign_qr(id="second")), bom + " "]
    path = tmp_path / "pasted.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read, rejects, counts = read_fhir(path, mapping=mapping(), instruments=host.instruments())
    assert (counts.n_read, counts.n_valid, counts.n_rejected) == (2, 2, 0)
    assert rejects == []
    assert not any(bom in a.id for a in read)


def test_ndjson_problem_paths_carry_the_line(tmp_path: Path, host: PluginHost) -> None:
    bad = foreign_qr()
    bad["item"][0]["answer"][0]["valueCoding"]["extension"][0]["valueDecimal"] = 7
    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps(foreign_qr()) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    _, (reject,), _ = read_fhir(path, mapping=mapping(), instruments=host.instruments())
    assert reject.location == "line 2, $.item[0].answer[0].valueCoding"


def test_not_json_at_all(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "in.json"
    path.write_text('{"resourceType": ', encoding="utf-8")
    _, (reject,), counts = read_fhir(path, instruments=host.instruments())
    assert (counts.n_read, counts.n_rejected) == (1, 1)
    assert reject.code == "json"
    assert reject.location.startswith("line 1 column")


def test_missing_file_is_a_format_error(tmp_path: Path, host: PluginHost) -> None:
    with pytest.raises(FormatError, match="cannot read"):
        read_fhir(tmp_path / "absent.json", instruments=host.instruments())


def test_json_array_of_resources(host: PluginHost) -> None:
    items = [questionnaire_response(sample(id=f"A{i}")) for i in range(3)]
    assessments, rejects, counts = read_fhir(
        json.dumps([*items, 42]), instruments=host.instruments()
    )
    assert len(assessments) == 3
    assert [(r.location, r.code) for r in rejects] == [("$[3]", "not-a-resource")]
    assert counts.n_read == 4


def test_questionnaires_in_the_input_are_counted_not_read(host: PluginHost) -> None:
    source = bundle_of(questionnaire("PAM-13", host=host), questionnaire_response(sample()))
    _, _, counts = read_fhir(source, instruments=host.instruments())
    assert counts.other_resources == {"Bundle": 1, "Questionnaire": 1}
    assert counts.n_read == 1


@given(st.lists(st.sampled_from(["good", "bad", "junk", "other"]), max_size=12))
def test_counts_always_reconcile(kinds: list[str]) -> None:
    resources: list[Any] = []
    for i, kind in enumerate(kinds):
        if kind == "good":
            resources.append(questionnaire_response(sample(id=f"A{i}")))
        elif kind == "bad":
            resources.append(questionnaire_response(sample(id=f"A{i}")) | {"status": "stopped"})
        elif kind == "junk":
            resources.append({"no": "type"})
        else:
            resources.append({"resourceType": "Observation"})
    _, rejects, counts = read_fhir(bundle_of(*resources))
    assert counts.n_read == counts.n_valid + counts.n_rejected == len(kinds) - kinds.count("other")
    assert counts.n_rejected == len(rejects) == kinds.count("bad") + kinds.count("junk")


# -- mapping files ---------------------------------------------------------------------------------


def test_mapping_problems_are_all_reported(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[[questionnaire]]\nurl = "u"\ninstrument = "PAM-13"\ncolour = 1\n'
        '[questionnaire.answers]\nX = "maybe"\n'
        '[[questionnaire]]\ninstrument = ""\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as info:
        read_fhir(questionnaire_response(sample()), mapping=path, instruments=host.instruments())
    text = str(info.value)
    for where in (
        "m.toml: questionnaire[0].colour",
        "m.toml: questionnaire[0].answers.X",
        "m.toml: questionnaire[1].url",
        "m.toml: questionnaire[1].instrument",
    ):
        assert where in text


def test_mapping_must_fit_the_instruments(host: PluginHost) -> None:
    """Well-formed, but naming items and categories the instruments do not have."""
    entries = [
        {"url": "u", "instrument": "PAM-13", "items": {"q1": "pam13.99"}, "answers": {"X": 7}},
        {"url": "v", "instrument": "NOPE"},
    ]
    with pytest.raises(ConfigurationError) as info:
        read_fhir(
            questionnaire_response(sample()),
            mapping=parse_mapping({"questionnaire": entries}),
            instruments=host.instruments(),
        )
    text = str(info.value)
    assert "questionnaire[0].items.q1" in text
    assert "questionnaire[0].answers.X" in text
    assert "questionnaire[1].instrument" in text


def test_mapping_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[[questionnaire]\n", encoding="utf-8")
    from pamlib.fhir import load_mapping

    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_mapping(path)


def test_round_trip_through_an_own_bundle_keeps_patients_linked(host: PluginHost) -> None:
    p = Patient("P9", nhs_number="9434765919")
    items = [
        sample(id="A1", patient=p),
        sample(id="A2", patient=p),
        sample(id="A3", patient=Patient("Q")),
    ]
    back, _, _ = read_fhir(to_bundle(items), instruments=host.instruments())
    assert [a.patient for a in back] == [p, p, Patient("Q")]


def test_content_hash_ids_do_not_depend_on_the_patient(host: PluginHost) -> None:
    """An assessment id made from content must not be derivable from an identifier."""
    qr = foreign_qr()
    other = foreign_qr(subject={"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9990000018"}})
    (a,), _, _ = read_fhir(qr, mapping=mapping(), instruments=host.instruments())
    (b,), _, _ = read_fhir(other, mapping=mapping(), instruments=host.instruments())
    assert a.id == b.id


def test_rows_do_not_show_identifiers(host: PluginHost) -> None:
    from pamlib.fhir._reader import FhirReader

    (chunk,) = FhirReader(host.instruments()).read(questionnaire_response(sample()))
    text = repr(chunk)
    assert "9434765919" not in text
    assert "P1" not in text.replace("PAM", "")
    assert "<redacted>" in text


def test_ndjson_subjects_may_come_later_in_the_file(tmp_path: Path, host: PluginHost) -> None:
    """pamlib's NDJSON in reverse order: each response is read once its Patient is known."""
    from pamlib.fhir._bundle import Assembler, BundleSettings
    from pamlib.fhir._response import ResponseRow

    assembler = Assembler(BundleSettings(style="ndjson"))
    items = [sample(id="A1"), sample(id="A2", patient=Patient("Q", nhs_number="9990000018"))]
    resources = [r for a in items for r in assembler.entries(ResponseRow.from_assessment(a))]
    path = tmp_path / "reversed.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in reversed(resources)), encoding="utf-8")
    back, rejects, counts = read_fhir(path, instruments=host.instruments())
    assert rejects == []
    assert sorted(a.id for a in back) == ["A1", "A2"]
    assert {a.id: a.patient for a in back} == {a.id: a.patient for a in items}
    assert counts.other_resources == {"Patient": 2}


def test_unresolvable_subjects_in_ndjson_are_reported_at_the_end(
    tmp_path: Path, host: PluginHost
) -> None:
    qr = questionnaire_response(sample())
    del qr["contained"]
    qr["subject"] = {"reference": "urn:uuid:5d0c4a4e-6f7b-4a5e-9f43-1d2c3b4a5e6f"}
    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps(qr) + "\n" + json.dumps(foreign_qr()) + "\n", encoding="utf-8")
    _, rejects, counts = read_fhir(path, mapping=mapping(), instruments=host.instruments())
    assert (counts.n_read, counts.n_valid) == (2, 1)
    assert [(r.location, r.code) for r in rejects] == [
        ("line 1, $.subject.reference", "unresolved-reference")
    ]


def test_bundles_as_ndjson_lines(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "bundles.ndjson"
    bundles = [to_bundle([sample(id=f"A{i}")]) for i in range(3)]
    path.write_text("".join(json.dumps(b) + "\n" for b in bundles), encoding="utf-8")
    back, rejects, counts = read_fhir(path, instruments=host.instruments())
    assert rejects == []
    assert [a.id for a in back] == ["A0", "A1", "A2"]
    assert counts.other_resources == {"Bundle": 3, "Patient": 3}


def test_waiting_responses_are_bounded(
    tmp_path: Path, host: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing to wait for, responses citing server Patients are read in bounded memory."""
    from pamlib.fhir import _reader as reader

    monkeypatch.setattr(reader, "_MAX_WAITING", 2)
    path = tmp_path / "server.ndjson"
    lines = [json.dumps(foreign_qr(subject={"reference": f"Patient/{i}"})) for i in range(5)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    back, rejects, counts = read_fhir(path, mapping=mapping(), instruments=host.instruments())
    assert rejects == []
    assert counts.n_valid == 5
    assert sorted(str(a.patient.id) for a in back) == [f"Patient/{i}" for i in range(5)]
