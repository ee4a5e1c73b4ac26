"""pamlib's own FHIR checks catch what the R4B models let through."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from pamlib.fhir import check, questionnaire, questionnaire_response, to_bundle
from pamlib.plugins import PluginHost
from pamlib.results import Flag
from tests.fhir_support import validate_r4b
from tests.test_fhir_out import licensed, sample


def bundle() -> dict[str, Any]:
    return to_bundle([sample()], [licensed()])


def entry(b: dict[str, Any], i: int) -> dict[str, Any]:
    resource: dict[str, Any] = b["entry"][i]["resource"]
    return resource


Mutation = Callable[[dict[str, Any]], object]

CASES: list[tuple[str, Mutation, str, str, bool]] = [
    # (name, mutation of a transaction Bundle, where, code, do the R4B models catch it?)
    (
        "response status",
        lambda b: entry(b, 1).update(status="done"),
        "$.entry[1].resource.status",
        "code",
        False,
    ),
    (
        "observation status",
        lambda b: entry(b, 2).update(status="finished"),
        "$.entry[2].resource.status",
        "code",
        False,
    ),
    ("bundle type", lambda b: b.update(type="pile"), "$.type", "code", False),
    (
        "request method",
        lambda b: b["entry"][0]["request"].update(method="SEND"),
        "$.entry[0].request.method",
        "code",
        False,
    ),
    (
        "dangling reference",
        lambda b: entry(b, 2)["derivedFrom"][0].update(
            reference="urn:uuid:5d0c4a4e-6f7b-4a5e-9f43-1d2c3b4a5e6f"
        ),
        "$.entry[2].resource.derivedFrom[0].reference",
        "unresolved-reference",
        False,
    ),
    (
        "duplicate fullUrl",
        lambda b: b["entry"][1].update(fullUrl=b["entry"][0]["fullUrl"]),
        "$.entry[1].fullUrl",
        "duplicate",
        False,
    ),
    (
        "bad urn:uuid",
        lambda b: b["entry"][0].update(fullUrl="urn:uuid:not-a-uuid"),
        "$.entry[0].fullUrl",
        "uuid",
        False,
    ),
    (
        "nhs check digit",
        lambda b: entry(b, 0)["identifier"][0].update(value="9434765910"),
        "$.entry[0].resource.identifier[0].value",
        "nhs-number",
        False,
    ),
    (
        "nhs length",
        lambda b: entry(b, 0)["identifier"][0].update(value="943476591"),
        "$.entry[0].resource.identifier[0].value",
        "nhs-number",
        False,
    ),
    (
        "demo scored final",
        lambda b: entry(b, 2).update(
            meta={"tag": [{"system": "https://pamlib.org/fhir/CodeSystem/tag", "code": "demo"}]}
        ),
        "$.entry[2].resource.status",
        "demo-final",
        False,
    ),
    (
        "request outside a transaction",
        lambda b: b.update(type="collection"),
        "$.entry[0].request",
        "bdl-3",
        False,
    ),
    (
        "missing request",
        lambda b: b["entry"][0].pop("request"),
        "$.entry[0].request",
        "required",
        False,
    ),
    (
        "ifNoneExist on PUT",
        lambda b: b["entry"][0]["request"].update(method="PUT"),
        "$.entry[0].request.ifNoneExist",
        "conditional",
        False,
    ),
    (
        "null",
        lambda b: entry(b, 1).update(language=None),
        "$.entry[1].resource.language",
        "null",
        True,
    ),
    (
        "empty string",
        lambda b: entry(b, 0)["identifier"][1].update(value=""),
        "$.entry[0].resource.identifier[1].value",
        "empty",
        True,
    ),
    (
        "control character",
        lambda b: entry(b, 0)["identifier"][1].update(value="a\x01b"),
        "$.entry[0].resource.identifier[1].value",
        "control-character",
        False,
    ),
    (
        "empty array",
        lambda b: entry(b, 1).update(item=[]),
        "$.entry[1].resource.item",
        "empty",
        True,
    ),
    (
        "extension value and nesting",
        lambda b: entry(b, 2)["extension"][0].update(valueString="x"),
        "$.entry[2].resource.extension[0]",
        "ext-1",
        True,
    ),
    (
        "impossible date",
        lambda b: entry(b, 1).update(authored="2025-02-30"),
        "$.entry[1].resource.authored",
        "date",
        True,
    ),
    (
        "bad dateTime",
        lambda b: entry(b, 2).update(effectiveDateTime="2025-03-01T10:00"),
        "$.entry[2].resource.effectiveDateTime",
        "date",
        True,
    ),
    (
        "two answers values",
        lambda b: entry(b, 1)["item"][0]["answer"][0].update(valueInteger=3),
        "$.entry[1].resource.item[0].answer[0]",
        "value",
        True,
    ),
    (
        "id too long",
        lambda b: entry(b, 1).update(id="x" * 65),
        "$.entry[1].resource.id",
        "id",
        True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_checks_find_problems_with_their_path(
    case: tuple[str, Mutation, str, str, bool], host: PluginHost
) -> None:
    _, mutate, where, code, models_catch = case
    b = bundle()
    assert check(b) == []
    bad = copy.deepcopy(b)
    mutate(bad)
    found = [(p.where, p.code) for p in check(bad)]
    assert (where, code) in found
    if not models_catch:
        # Documents why pamlib checks these itself: the model library accepts them.
        validate_r4b(bad)


def test_nhs_numbers_never_appear_in_problems(host: PluginHost) -> None:
    b = bundle()
    entry(b, 0)["identifier"][0]["value"] = "9434765910"
    assert all("9434765910" not in str(p) for p in check(b))


def test_an_nhs_number_is_checked_wherever_it_is_an_identifier(host: PluginHost) -> None:
    """A response may name its subject by identifier alone, with no Patient in the file:
    ``pamlib score`` refuses a wrong check digit there, and so does the check."""
    from pamlib.fhir.codes import NHS_NUMBER_SYSTEM

    b = bundle()
    entry(b, 1)["subject"] = {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9434765910"}}
    found = [(p.where, p.code) for p in check(b)]
    assert ("$.entry[1].resource.subject.identifier.value", "nhs-number") in found
    assert all("9434765910" not in str(p) for p in check(b))
    entry(b, 1)["subject"]["identifier"]["value"] = "9434765919"
    assert check(b) == []


def test_a_subject_that_is_not_a_reference_is_a_problem(host: PluginHost) -> None:
    b = bundle()
    entry(b, 1)["subject"] = "Patient/1"
    assert ("$.entry[1].resource.subject", "reference") in [(p.where, p.code) for p in check(b)]


def test_questionnaire_checks(host: PluginHost) -> None:
    q = questionnaire("PAM-13", host=host)
    assert check(q) == []
    q["item"][1]["linkId"] = q["item"][0]["linkId"]
    q["item"][2]["type"] = "string"
    q["status"] = "live"
    q["name"] = "not machine friendly"
    found = {(p.where, p.code) for p in check(q)}
    assert found >= {
        ("$.item[1].linkId", "que-2"),
        ("$.item[2].answerOption", "que-5"),
        ("$.status", "code"),
        ("$.name", "que-0"),
    }


def test_contained_references_resolve(host: PluginHost) -> None:
    qr = questionnaire_response(sample())
    assert check(qr) == []
    qr["subject"] = {"reference": "#someone"}
    assert [(p.where, p.code) for p in check(qr)] == [
        ("$.subject.reference", "unresolved-reference")
    ]


def test_raw_only_never_final(host: PluginHost) -> None:
    from pamlib.scoring.raw_sum import RawSumProvider

    a = sample()
    b = to_bundle([a], [RawSumProvider().score(a)])
    raw = entry(b, 2)
    assert Flag.RAW_ONLY.value in {t["code"] for t in raw["meta"]["tag"]}
    raw["status"] = "final"
    assert ("$.entry[2].resource.status", "demo-final") in [(p.where, p.code) for p in check(b)]
