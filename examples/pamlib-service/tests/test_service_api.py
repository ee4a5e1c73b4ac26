"""Every endpoint, each denial, idempotency and concurrency, against a temporary SQLite file."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pamlib_service.models import MAX_TEXT, Submission
from pamlib_service.service import Service
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

import pamlib

Auth = Callable[[str], dict[str, str]]
MakeResponse = Callable[..., dict[str, Any]]

#: The score Observation's code: the demo provider's score is not a PAM score, so pamlib codes
#: it in its own system, never with LOINC 88175-5 (which a PAM score has).
SCORE_CODE = "score"
PATHWAY = "https://pamlib.org/fhir/CodeSystem/pathway"
PAM13 = pamlib.instruments.BUILTIN_INSTRUMENTS[0]


def service_of(client: TestClient) -> Service:
    """The running service (for looking in its database)."""
    app: Any = client.app
    found = app.state.service
    assert isinstance(found, Service)
    return found


def count(client: TestClient) -> int:
    with service_of(client).sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Submission)) or 0)


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def code_of(observation: dict[str, Any]) -> str:
    return str(observation["code"]["coding"][0]["code"])


def test_submit_scores_tailors_and_stores_in_one_row(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A1", attributes={"condition": "COPD"})
    answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert answer.status_code == 201
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    assert len(resources(bundle, "QuestionnaireResponse")) == 1
    observations = resources(bundle, "Observation")
    score = next(o for o in observations if code_of(o) == SCORE_CODE)
    assert score["valueQuantity"]["value"] == 60.7  # the demo provider on all-3 answers
    assert any(code_of(o) == "activation-level" for o in observations)
    with service_of(client).sessions() as session:
        row = session.scalars(select(Submission)).one()
    assert (row.site, row.status, row.score, row.level) == ("North", "scored", 60.7, 3)
    assert row.provider == "demo"
    assert row.calibration_sha256
    assert row.rules_fired
    assert row.pathways
    assert row.reassess_by == dt.date(2025, 9, 1)
    assert row.answers == dict.fromkeys(PAM13.items, 3)
    assert row.scored_row["condition"] == "COPD"


def validate_r4b(resource: dict[str, Any]) -> None:
    """Validate with the ``fhir.resources`` R4B models (skips if the library is missing)."""
    models = pytest.importorskip("fhir.resources.R4B")
    models.get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_the_answer_proposes_the_tailored_pathways_as_a_care_plan(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A1", attributes={"condition": "COPD"})
    bundle = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north")).json()
    (plan,) = resources(bundle, "CarePlan")
    with service_of(client).sessions() as session:
        row = session.scalars(select(Submission)).one()
    assert (plan["status"], plan["intent"]) == ("draft", "proposal")
    activities = [a["detail"] for a in plan["activity"]]
    codes = [c["code"] for a in activities for c in a["code"]["coding"] if c["system"] == PATHWAY]
    assert codes == row.pathways
    assert activities[-1]["scheduledPeriod"] == {"end": "2025-09-01"}  # the reassessment
    assert [e["valueString"] for e in plan["extension"]] == row.rules_fired
    # Every reference points at an entry of the same Bundle.
    urls = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    assert urls[plan["subject"]["reference"]] == "Patient"
    kinds = [urls[r["reference"]] for r in plan["supportingInfo"]]
    assert kinds == ["QuestionnaireResponse", "Observation", "Observation"]
    validate_r4b(plan)
    validate_r4b(bundle)
    again = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert resources(again.json(), "CarePlan") == [plan]


def test_resubmission_answers_200_with_the_stored_bundle_and_stores_nothing(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A1")
    first = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    again = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert count(client) == 1


def test_same_identifier_with_other_content_is_409_and_stores_nothing(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    client.post("/fhir/QuestionnaireResponse", json=make_response("A1"), headers=auth("north"))
    changed = make_response("A1", answers=dict.fromkeys(PAM13.items, 4))
    answer = client.post("/fhir/QuestionnaireResponse", json=changed, headers=auth("north"))
    assert answer.status_code == 409
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert count(client) == 1
    with service_of(client).sessions() as session:
        assert session.scalars(select(Submission.score)).one() == 60.7


def test_the_same_identifier_at_another_site_is_another_submission(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A1")
    north = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    south = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("south"))
    assert (north.status_code, south.status_code) == (201, 201)
    assert count(client) == 2


@pytest.mark.parametrize("check_first", [True, False], ids=["with-lookup", "constraint-only"])
def test_concurrent_duplicates_store_exactly_one(
    client: TestClient, auth: Auth, make_response: MakeResponse, check_first: bool
) -> None:
    service = service_of(client)
    if not check_first:  # every request goes as far as the INSERT: the constraint decides
        service.lookup = _after_failure(service)  # type: ignore[method-assign]
    qr = make_response("A1")
    start = threading.Barrier(8)

    def post(_: int) -> int:
        start.wait()
        answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
        return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(pool.map(post, range(8)))
    assert statuses == Counter({201: 1, 200: 7})
    assert count(client) == 1


def _after_failure(service: Service) -> Any:
    """A lookup that finds nothing before the insert, and the stored row after it failed."""
    seen: set[int] = set()
    real = Service._existing

    def lookup(site: str, identifier: tuple[str, str]) -> Any:
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            return None
        seen.discard(me)
        return real(service, site, identifier)

    return lookup


def test_a_response_too_sparse_to_score_is_stored_with_its_reason(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A2", answers={"pam13.01": 4, "pam13.02": 3})
    answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert answer.status_code == 201
    bundle = answer.json()
    assert not [o for o in resources(bundle, "Observation") if code_of(o) == SCORE_CODE]
    (outcome,) = resources(bundle, "OperationOutcome")
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "too-few-answered"
    with service_of(client).sessions() as session:
        row = session.scalars(select(Submission)).one()
    assert (row.status, row.score, row.reason_code) == ("not-scored", None, "too-few-answered")


def test_score_endpoint_answers_the_bundle_and_stores_nothing(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A1")
    del qr["identifier"]  # a form renderer's response need not have one yet
    answer = client.post("/fhir/$score", json=qr, headers=auth("north-submit"))
    assert answer.status_code == 200
    assert any(code_of(o) == SCORE_CODE for o in resources(answer.json(), "Observation"))
    assert count(client) == 0


def test_a_stored_response_needs_an_identifier(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A1")
    del qr["identifier"]
    answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert answer.status_code == 422
    issue = answer.json()["issue"][0]
    assert (issue["expression"], issue["details"]["coding"][0]["code"]) == (
        ["$.identifier"],
        "no-identifier",
    )


def test_trajectory_links_baseline_and_followup(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    later = dict.fromkeys(PAM13.items, 4)
    for qr in (make_response("A1"), make_response("A2", answers=later, on=dt.date(2025, 9, 1))):
        client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    body = client.get("/patients/P1/trajectory", headers=auth("north")).json()
    assert body["n_assessments"] == 2
    assert (body["baseline"]["score"], body["followup"]["score"]) == (60.7, 100.0)
    assert (body["change"], body["classification"], body["transition"]) == (
        39.3,
        "improved",
        [3, 4],
    )
    assert [a["assessment_id"] for a in body["assessments"]] == ["A1", "A2"]


def test_a_patient_known_by_nhs_number_only(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A1", patient_id=None, nhs_number="9434765919")
    client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    for key in ("nhs:9434765919", "9434765919", "943 476 5919"):
        answer = client.get(f"/patients/{key}/trajectory", headers=auth("north"))
        assert answer.status_code == 200, key
        assert answer.json()["patient"] == "nhs:9434765919"


def test_overdue_lists_patients_whose_reassessment_date_has_passed(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    client.post("/fhir/QuestionnaireResponse", json=make_response("A1"), headers=auth("north"))
    before = client.get("/reassessments/overdue?on=2025-08-31", headers=auth("north")).json()
    after = client.get("/reassessments/overdue?on=2025-09-11", headers=auth("north")).json()
    assert before["overdue"] == []
    assert after["overdue"] == [
        {
            "patient": "P1",
            "assessment_id": "A1",
            "assessed_on": "2025-03-01",
            "reassess_by": "2025-09-01",
            "days_overdue": 10,
        }
    ]
    bad = client.get("/reassessments/overdue?on=2025-13-01", headers=auth("north"))
    assert bad.status_code == 422
    assert bad.json()["problems"] == [
        {"where": "on", "code": "date", "message": "expected a date YYYY-MM-DD"}
    ]


def test_cohort_report_covers_the_tokens_site_only_and_is_suppressed(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    for n in range(12):  # ten at level 3, two at level 4: a small number to suppress
        answers = dict.fromkeys(PAM13.items, 4 if n < 2 else 3)
        qr = make_response(f"N{n}", patient_id=f"PN{n}", answers=answers)
        client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    qr = make_response("S0", patient_id="PS0")
    client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("south"))
    summary = client.get("/reports/cohort", headers=auth("north")).json()
    assert summary["published"] is True
    assert summary["demo"] is True
    assert (summary["n_patients"], summary["n_assessments"]) == (12, 12)
    # 2 is below the threshold, and 10 would give it away (12 - 10): both are suppressed
    assert summary["levels_baseline"]["4"] == summary["levels_baseline"]["3"] == "*"


def test_no_stored_submission_is_left_out_for_repeating_another_ones_assessment_id(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    for n in range(10):
        qr = make_response(f"A{n}", patient_id=f"P{n}")
        client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    for n in range(10):  # enough in each quarter that the published counts are not suppressed
        qr = make_response(f"B{n}", patient_id=f"R{n}", on=dt.date(2025, 9, 1))
        client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    # Another clinic's identifier system: the same assessment id, another patient, and P1's
    # own id again, six months later. Each is acknowledged as a submission of its own.
    for patient, on in (("PX", dt.date(2025, 3, 1)), ("P1", dt.date(2025, 9, 1))):
        qr = make_response("A1", patient_id=patient, on=on)
        qr["identifier"]["system"] = f"urn:other-clinic:{patient}"
        answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
        assert answer.status_code == 201
    summary = client.get("/reports/cohort", headers=auth("north")).json()
    assert (summary["n_patients"], summary["n_assessments"]) == (21, 22)
    trajectory = client.get("/patients/P1/trajectory", headers=auth("north")).json()
    assert trajectory["n_assessments"] == len(trajectory["assessments"]) == 2
    assert trajectory["baseline"]["assessment_id"] == "A1"
    assert trajectory["followup"]["assessment_id"] == "A1"  # the stored id, not the table's
    assert trajectory["followup"]["assessed_on"] == "2025-09-01"


def test_cohort_report_of_a_site_with_nothing_stored(client: TestClient, auth: Auth) -> None:
    summary = client.get("/reports/cohort", headers=auth("south")).json()
    assert summary["n_assessments"] == 0


def test_a_database_outage_is_503_to_retry_not_500(
    client: TestClient, auth: Auth, make_response: MakeResponse, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("the server restarted"))

    monkeypatch.setattr(service_of(client), "submit", down)
    answer = client.post("/fhir/QuestionnaireResponse", json=make_response(), headers=auth("north"))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


# -- who may see what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/fhir/QuestionnaireResponse"),
        ("POST", "/fhir/$score"),
        ("GET", "/patients/P1/trajectory"),
        ("GET", "/reassessments/overdue"),
        ("GET", "/reports/cohort"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-known-token-at-all"}, {"Authorization": "Basic eDp5"}],
    ids=["no-token", "unknown-token", "not-bearer"],
)
def test_no_token_or_an_unknown_one_is_401(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    answer = client.request(method, path, headers=headers, json={})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "path", ["/patients/P1/trajectory", "/reassessments/overdue", "/reports/cohort"]
)
def test_a_missing_role_is_403(client: TestClient, auth: Auth, path: str) -> None:
    answer = client.get(path, headers=auth("north-submit"))
    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden"


def test_another_sites_patient_is_404(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    client.post("/fhir/QuestionnaireResponse", json=make_response("A1"), headers=auth("south"))
    assert client.get("/patients/P1/trajectory", headers=auth("south")).status_code == 200
    answer = client.get("/patients/P1/trajectory", headers=auth("north"))
    assert answer.status_code == 404
    unknown = client.get("/patients/nobody/trajectory", headers=auth("north"))
    assert answer.json() == unknown.json()  # nothing tells "elsewhere" from "nowhere"


@pytest.mark.parametrize("path", ["/fhir/QuestionnaireResponse", "/fhir/$score"])
def test_a_response_naming_another_site_is_403(
    client: TestClient, auth: Auth, make_response: MakeResponse, path: str
) -> None:
    answer = client.post(path, json=make_response("A1", site="South"), headers=auth("north"))
    assert answer.status_code == 403
    assert count(client) == 0
    own = client.post(path, json=make_response("A1", site="North"), headers=auth("north"))
    assert own.status_code in (200, 201)


def test_a_body_too_large_is_413(client: TestClient, auth: Auth) -> None:
    body = b"[" + b" " * 1_100_000 + b"]"
    answer = client.post("/fhir/QuestionnaireResponse", content=body, headers=auth("north"))
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        (b"{not json", 400, "$"),
        (b"\xff\xfe", 400, "$"),
        (b'{"a": NaN}', 400, "$"),
        (b"[]", 422, "$.resourceType"),
        (b'{"resourceType": "Observation"}', 422, "$.resourceType"),
    ],
)
def test_bodies_that_are_not_a_response(
    client: TestClient, auth: Auth, body: bytes, status: int, where: str
) -> None:
    answer = client.post("/fhir/QuestionnaireResponse", content=body, headers=auth("north"))
    assert answer.status_code == status
    assert answer.json()["issue"][0]["expression"] == [where]


def test_every_problem_of_a_response_is_located(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = copy.deepcopy(make_response("A1"))
    qr["authored"] = "2025-13-01"
    qr["item"][0]["answer"][0]["valueCoding"]["code"] = "7"
    answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert answer.status_code == 422
    where = {i["expression"][0] for i in answer.json()["issue"]}
    assert where == {"$.authored", "$.item[0].answer[0].valueCoding"}


def located(outcome: dict[str, Any]) -> list[tuple[str, str]]:
    """Where and what each issue of an OperationOutcome is."""
    return [(i["expression"][0], i["details"]["coding"][0]["code"]) for i in outcome["issue"]]


def _nested(qr: dict[str, Any], depth: int) -> str:
    """``qr`` with a member ``x`` holding lists nested ``depth`` deep (``qr`` itself is one
    level more)."""
    return json.dumps(qr)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("path", ["/fhir/QuestionnaireResponse", "/fhir/$score"])
@pytest.mark.parametrize("depth", [64, 980])  # 980: within json.loads, beyond what hashing takes
def test_a_body_nested_too_deep_is_400_located_never_500(
    client: TestClient, auth: Auth, make_response: MakeResponse, path: str, depth: int
) -> None:
    body = _nested(make_response("A1"), depth)
    answer = client.post(path, content=body, headers=auth("north"))
    assert answer.status_code == 400, answer.text
    (issue,) = answer.json()["issue"]
    assert issue["details"]["coding"] == [{"code": "too-deep"}]
    assert issue["expression"] == ["$.x" + "[0]" * 63]  # the container at depth 65
    assert count(client) == 0


def test_a_body_nested_as_deep_as_allowed_is_stored(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    body = _nested(make_response("A1"), 63)
    answer = client.post("/fhir/QuestionnaireResponse", content=body, headers=auth("north"))
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("path", ["/fhir/QuestionnaireResponse", "/fhir/$score"])
def test_numbers_out_of_range_and_nul_characters_are_422_located_never_500(
    client: TestClient, auth: Auth, make_response: MakeResponse, path: str
) -> None:
    qr = make_response("A1")
    qr["x"] = "INF"
    qr["contained"][0]["text"] = "a\x00b"
    qr["Jane\x00Smith"] = 1  # a member name that is no element's is not echoed
    body = json.dumps(qr).replace('"x": "INF"', '"x": [1e999, -1e999, 1.5]')
    answer = client.post(path, content=body, headers=auth("north"))
    assert answer.status_code == 422, answer.text
    assert set(located(answer.json())) == {
        ("$.x[0]", "number-range"),
        ("$.x[1]", "number-range"),
        ("$.contained[0].text", "nul"),
        ("$", "nul"),
    }
    assert "Jane" not in answer.text
    assert count(client) == 0


def test_a_nul_in_the_identifier_is_one_located_problem(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    qr = make_response("A\x001")
    answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert answer.status_code == 422
    assert located(answer.json()).count(("$.identifier.value", "nul")) == 1


@pytest.mark.parametrize("key", ["a%00b", "a" * (MAX_TEXT + 1)])
def test_a_key_no_patient_can_have_is_404_on_every_database(
    client: TestClient, auth: Auth, key: str
) -> None:
    answer = client.get(f"/patients/{key}/trajectory", headers=auth("north"))
    assert answer.status_code == 404
    assert answer.json()["error"] == "not-found"


def test_a_client_hanging_up_mid_body_is_no_server_failure(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Content-Length 100, two bytes sent, then gone (the ASGI server says ``http.disconnect``)."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"{}", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    async def hang_up() -> None:
        await client.app(scope, receive, send)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/fhir/$score",
        "raw_path": b"/fhir/$score",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", b"Bearer north-token-0123456789"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    assert client.portal is not None
    with caplog.at_level(logging.INFO, logger="pamlib_service"):
        client.portal.call(hang_up)
    events = {r.getMessage(): r for r in caplog.records if r.name == "pamlib_service"}
    assert events["client-disconnected"].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    request = events["request"].__dict__["fields"]
    assert (request["path"], request["status"]) == ("/fhir/$score", 499)
    assert sent[0]["status"] == 499


def test_no_route_and_a_wrong_method_are_the_json_error(client: TestClient, auth: Auth) -> None:
    """Starlette's own 404 and 405 answer as every other error does: JSON with a stable code
    (an OperationOutcome under /fhir), the ``Allow`` header kept."""
    missing = client.get("/patient/9434765919/trajectory", headers=auth("north"))
    assert missing.status_code == 404
    assert missing.json() == {"error": "not-found", "message": "no such endpoint", "problems": []}
    wrong = client.get("/fhir/QuestionnaireResponse", headers=auth("north"))
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.headers["content-type"].startswith("application/fhir+json")
    outcome = wrong.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["text"] == "the endpoint does not take this method"


@pytest.mark.parametrize("kind", ["text/plain", "application/xml", "text/csv; charset=utf-8"])
def test_a_body_that_says_it_is_not_json_is_415(
    client: TestClient, auth: Auth, make_response: MakeResponse, kind: str
) -> None:
    qr = make_response("A1")
    headers = {**auth("north"), "content-type": kind}
    answer = client.post("/fhir/$score", content=json.dumps(qr), headers=headers)
    assert answer.status_code == 415
    assert answer.json()["issue"][0]["expression"] == ["Content-Type"]
    for accepted in ("application/json", "application/fhir+json; charset=utf-8"):
        headers = {**auth("north"), "content-type": accepted}
        assert client.post("/fhir/$score", content=json.dumps(qr), headers=headers).is_success
    unsaid = client.post("/fhir/$score", content=json.dumps(qr).encode(), headers=auth("north"))
    assert unsaid.is_success, "no Content-Type is taken as JSON"


def test_a_member_given_twice_is_400_and_a_byte_order_mark_is_read(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    """FHIR's JSON names each member once: a body naming one twice (which would count?) is
    refused. A UTF-8 byte-order mark, as Windows tools write, is not part of the document."""
    text = json.dumps(make_response("A1"))
    twice = '{"resourceType": "Patient", ' + text[1:]
    answer = client.post("/fhir/$score", content=twice.encode(), headers=auth("north"))
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["details"]["coding"] == [{"code": "duplicate-member"}]
    marked = b"\xef\xbb\xbf" + text.encode()
    assert client.post("/fhir/$score", content=marked, headers=auth("north")).is_success
