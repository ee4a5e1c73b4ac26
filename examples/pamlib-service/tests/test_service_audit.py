"""Faults found by a reliability and privacy audit, each pinned by the test that found it: request
text kept in logs through the HTTP method, bodies read in a charset or content coding other than
the one they declared, syntax errors that did not say where, a wrongly typed identifier reported
as a missing one, answers without the not-PAM label, a repeated query date, and a site name the
database cannot store accepted at start-up.

They concern HTTP handling, labelling and start-up, not the database: they run on SQLite only.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from pamlib_service import Settings, create_app
from pamlib_service.config import StartupError, load_tokens
from pamlib_service.logs import AccessLogFilter, JsonFormatter
from pamlib_service.models import Submission
from starlette.testclient import TestClient

import pamlib
from pamlib.plugins import PluginHost
from pamlib.scoring import demo_calibration

Auth = Callable[[str], dict[str, str]]
MakeResponse = Callable[..., dict[str, Any]]

NHS = "9434765919"
PAM13 = pamlib.instruments.BUILTIN_INSTRUMENTS[0]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only (see the module's docstring)."""
    return f"sqlite:///{tmp_path / 'service.db'}"


def issue(answer: Any) -> tuple[str, str, str]:
    """(where, code, text) of an OperationOutcome's only issue."""
    (only,) = answer.json()["issue"]
    return only["expression"][0], only["details"]["coding"][0]["code"], only["details"]["text"]


def stored(client: TestClient) -> int:
    service = client.app.state.service  # type: ignore[attr-defined]
    with service.sessions() as session:
        return len(session.query(Submission).all())


# -- the HTTP method is request text too ----------------------------------------------------------


def test_a_method_http_does_not_define_is_not_logged_as_sent(
    client: TestClient, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    """A client may send any token as a method (``h11`` and ``httptools`` pass it on): the
    access log kept it verbatim, so an identifier typed there was logged."""
    with caplog.at_level(logging.INFO, logger="pamlib_service"):
        answer = client.request(f"GET{NHS}", "/reports/cohort", headers=auth("north"))
        client.get("/reports/cohort", headers=auth("north"))
    assert answer.status_code == 405
    logged = [JsonFormatter().format(r) for r in caplog.records]
    assert not [line for line in logged if NHS in line]
    methods = [r.__dict__["fields"]["method"] for r in caplog.records if r.msg == "request"]
    assert methods == ["_OTHER", "GET"]


def test_uvicorns_access_log_does_not_show_such_a_method_either(client: TestClient) -> None:
    (installed,) = [
        f for f in logging.getLogger("uvicorn.access").filters if isinstance(f, AccessLogFilter)
    ]
    for method, shown in ((f"PATCH{NHS}", "_OTHER"), ("DELETE", "DELETE")):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", method, "/reports/cohort", "1.1", 405),
            None,
        )
        assert installed.filter(record)
        assert record.getMessage() == f'127.0.0.1:5000 - "{shown} /reports/cohort HTTP/1.1" 405'


# -- a body is read as it says it is, or refused --------------------------------------------------


def test_a_body_declaring_a_charset_other_than_utf8_is_415_not_read_garbled(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    """The declared charset was ignored and the bytes read as UTF-8: Latin-1 text whose bytes
    happen to be UTF-8 (``Ã©`` is C3 A9, UTF-8 ``é``) was stored changed, without a word."""
    qr = make_response("A1")
    qr["contained"][0]["name"] = [{"text": "Ã©"}]
    body = json.dumps(qr, ensure_ascii=False).encode("latin-1")
    for declared in ("iso-8859-1", '"windows-1252"', "UTF-16"):
        headers = {**auth("north"), "content-type": f"application/fhir+json; charset={declared}"}
        answer = client.post("/fhir/QuestionnaireResponse", content=body, headers=headers)
        assert answer.status_code == 415, answer.text
        assert issue(answer)[:2] == ("Content-Type", "charset")
    assert stored(client) == 0
    utf8 = json.dumps(qr).encode()
    for declared in ("utf-8", "UTF-8", '"utf-8"', "utf8"):
        headers = {**auth("north"), "content-type": f"application/fhir+json;charset={declared}"}
        assert client.post("/fhir/$score", content=utf8, headers=headers).status_code == 200


def test_a_compressed_body_is_415_with_accept_encoding(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    """``Content-Encoding`` was ignored: a gzip body was "not a JSON document" (400), and one
    wrongly labelled gzip was read as it came. RFC 9110 (15.5.16): 415, saying what is taken."""
    body = json.dumps(make_response("A1")).encode()
    headers = {**auth("north"), "content-encoding": "gzip"}
    answer = client.post("/fhir/$score", content=gzip.compress(body), headers=headers)
    assert answer.status_code == 415
    assert answer.headers["accept-encoding"] == "identity"
    assert issue(answer)[:2] == ("Content-Encoding", "content-encoding")
    assert client.post("/fhir/$score", content=body, headers=headers).status_code == 415
    headers["content-encoding"] = "identity"
    assert client.post("/fhir/$score", content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"resourceType": "QuestionnaireResponse",\n "status": }', "line 2, column 12"),
        (b'{"a": "' + NHS.encode() + b'\xe9"}', "byte 18"),
        (b"\xef\xbb\xbf" + b'["\xff"]', "byte 6"),  # counted in the body as sent
        (b'{"a": NaN}', "NaN"),
        (b'{"a": ' + b"9" * 5000 + b"}", "digits"),
    ],
    ids=["syntax", "not-utf8", "not-utf8-after-bom", "nan", "huge-integer"],
)
def test_a_body_that_is_not_json_says_why_and_where_quoting_nothing(
    client: TestClient, auth: Auth, body: bytes, words: str
) -> None:
    """The problem had no words at all ("the body is not a JSON document" for everything): a
    client could not tell a stray comma from an encoding fault, nor find either."""
    answer = client.post("/fhir/QuestionnaireResponse", content=body, headers=auth("north"))
    assert answer.status_code == 400
    where, code, text = issue(answer)
    assert (where, code) == ("$", "json")
    assert words in text
    assert NHS not in answer.text


def test_far_too_deep_a_body_is_called_too_deep(client: TestClient, auth: Auth) -> None:
    body = b"[" * 100_000 + b"]" * 100_000  # beyond json's own recursion
    answer = client.post("/fhir/$score", content=body, headers=auth("north"))
    assert answer.status_code == 400
    assert issue(answer)[:2] == ("$", "too-deep")


# -- identifiers and labels -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [12345, {"text": "A1"}, True])
def test_an_identifier_value_of_the_wrong_type_is_located_as_such(
    client: TestClient, auth: Auth, make_response: MakeResponse, value: object
) -> None:
    """A number as the identifier's value was reported as no identifier at all, at
    ``$.identifier``: the client looked for a missing member that was there."""
    qr = make_response("A1")
    qr["identifier"]["value"] = value
    answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
    assert answer.status_code == 422
    codes = {
        (i["expression"][0], i["details"]["coding"][0]["code"]) for i in answer.json()["issue"]
    }
    assert ("$.identifier.value", "type") in codes
    assert ("$.identifier", "no-identifier") not in codes


def _unlicensed(tmp_path: Path) -> dict[str, Any]:
    """A calibration without a licence and not marked demo: research measures, not the PAM."""
    document = demo_calibration(PAM13).to_document()
    document.update(id="research-calibration", demo=False)
    path = tmp_path / "research.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return {"provider": "rasch", "calibration": path}


@pytest.mark.parametrize(("provider", "reason"), [("raw-sum", "raw-only"), ("rasch", "unlicensed")])
def test_trajectories_and_overdue_lists_say_when_results_are_not_the_pam(
    settings: Settings,
    host: PluginHost,
    tmp_path: Path,
    *,
    auth: Auth,
    make_response: MakeResponse,
    provider: str,
    reason: str,
) -> None:
    """Only ``demo`` was said: scores from an unlicensed calibration (or raw totals) came out of
    the trajectory as ``"demo": false`` and nothing else, read as PAM scores; the overdue list,
    whose dates follow from those levels, said nothing at all."""
    chosen = _unlicensed(tmp_path) if provider == "rasch" else {"provider": provider}
    with TestClient(create_app(attrs.evolve(settings, **chosen), host=host)) as client:
        for n, on in enumerate(("2025-01-06", "2025-07-07")):
            qr = make_response(f"A{n}", on=dt.date.fromisoformat(on))
            posted = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
            assert posted.status_code == 201
        trajectory = client.get("/patients/P1/trajectory", headers=auth("north")).json()
        overdue = client.get("/reassessments/overdue?on=2027-01-01", headers=auth("north")).json()
    assert (trajectory["demo"], trajectory["not_pam"]) == (False, True)
    assert trajectory["not_pam_reasons"] == [reason]
    assert all(reason in a["flags"] for a in trajectory["assessments"])
    assert (overdue["not_pam"], overdue["not_pam_reasons"], overdue["n_overdue"]) == (
        True,
        [reason],
        1,
    )


def test_demo_answers_keep_their_label_and_add_the_reason(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    client.post("/fhir/QuestionnaireResponse", json=make_response("A1"), headers=auth("north"))
    trajectory = client.get("/patients/P1/trajectory", headers=auth("north")).json()
    assert (trajectory["demo"], trajectory["not_pam_reasons"]) == (True, ["demo"])
    overdue = client.get("/reassessments/overdue", headers=auth("north")).json()
    assert overdue["not_pam_reasons"] == ["demo"]


# -- queries and start-up -------------------------------------------------------------------------


def test_a_date_given_twice_is_422_not_one_of_them_silently(client: TestClient, auth: Auth) -> None:
    path = "/reassessments/overdue?on=2025-01-01&on=2030-01-01"
    answer = client.get(path, headers=auth("north"))
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        {"where": "on", "code": "repeated", "message": "give the date once"}
    ]


@pytest.mark.parametrize("site", ["N" * 129, "North\x00", "North\nSouth"])
def test_a_site_the_database_cannot_hold_is_refused_at_start_up(tmp_path: Path, site: str) -> None:
    """Accepted, such a site made every submission of its tokens fail on PostgreSQL (a value
    too long for the column, or a NUL): a ``500`` per request instead of one refusal to start."""
    assert Submission.__table__.c.site.type.length == 128  # type: ignore[attr-defined]
    path = tmp_path / "tokens.json"
    entry = {"site": site, "roles": ["submit"]}
    path.write_text(json.dumps({"tokens": {"a-token-0123456789": entry}}), encoding="utf-8")
    with pytest.raises(StartupError, match="token 1: 'site' must be printable text"):
        load_tokens(path)
    path.write_text(json.dumps({"tokens": {"a-token-0123456789": {**entry, "site": "N" * 128}}}))
    assert len(load_tokens(path).tokens) == 1


def test_a_parsed_response_shows_no_identifier_in_its_repr(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    """``Parsed`` hid the document, the key and the identifier, but showed the assessment, whose
    repr names the assessment id: the identifier value the clinic gave the response."""
    service = client.app.state.service  # type: ignore[attr-defined]
    token = service.authorise(auth("north")["Authorization"], "submit")
    qr = make_response("ASSESS-SECRET", patient_id=None, nhs_number=NHS)
    parsed = service.parse(json.dumps(qr).encode(), token, keyed=True)
    assert parsed.assessment.id == "ASSESS-SECRET"
    assert "ASSESS-SECRET" not in repr(parsed)
    assert NHS not in repr(parsed)
