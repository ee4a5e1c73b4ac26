"""Fixtures: the service in-process with three tokens, on a temporary SQLite file and on a
fresh database of a throwaway PostgreSQL server (the ``database_url`` fixture is parametrised
over both). Where PostgreSQL cannot be started, its tests skip with the reason."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pamlib_service import Settings, create_app
from pamlib_service.testing import PostgresServer, PostgresUnavailableError
from starlette.testclient import TestClient

import pamlib
from pamlib.fhir import questionnaire_response
from pamlib.plugins import PluginHost

#: Tokens by name: North may do everything, one North token may only submit, South is another site.
TOKENS = {
    "north": ("north-token-0123456789", {"site": "North", "roles": ["submit", "read", "report"]}),
    "north-submit": ("north-submit-0123456789", {"site": "North", "roles": ["submit"]}),
    "south": ("south-token-0123456789", {"site": "South", "roles": ["submit", "read", "report"]}),
}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


@pytest.fixture(scope="session")
def host() -> PluginHost:
    """pamlib's built-in plugins only, so answers do not depend on what else is installed."""
    return PluginHost(load_entry_points=False, disabled=())


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": dict(TOKENS.values())}), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, in a temporary directory; skips if it cannot
    start (no server package, no account to run it as, ...)."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailableError as exc:
        server.close()
        pytest.skip(f"PostgreSQL cannot be started here: {exc}")
    try:
        yield server
    finally:
        server.close()


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: a SQLite file, or a database of the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"test_{next(_databases)}")


@pytest.fixture
def settings(database_url: str, tokens_file: Path) -> Settings:
    return Settings(
        database_url=database_url,
        tokens_file=tokens_file,
        provider="demo",
    )


@pytest.fixture
def client(settings: Settings, host: PluginHost) -> Iterator[TestClient]:
    with TestClient(create_app(settings, host=host)) as test_client:
        yield test_client


def response(
    assessment_id: str = "A1",
    *,
    patient_id: str | None = "P1",
    nhs_number: str | None = None,
    answers: dict[str, int] | None = None,
    on: dt.date = dt.date(2025, 3, 1),
    site: str | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A QuestionnaireResponse as pamlib's writer makes it (synthetic answers)."""
    pam13 = pamlib.instruments.BUILTIN_INSTRUMENTS[0]
    assessment = pamlib.Assessment(
        assessment_id,
        pamlib.Patient(patient_id, nhs_number=nhs_number),
        pam13,
        on,
        answers if answers is not None else dict.fromkeys(pam13.items, 3),
        site=site,
        attributes=attributes or {},
    )
    return questionnaire_response(assessment)


Auth = Callable[[str], dict[str, str]]
MakeResponse = Callable[..., dict[str, Any]]


@pytest.fixture(name="auth")
def _auth() -> Auth:
    """``auth("north")``: the Authorization header of a token."""
    return auth


@pytest.fixture(name="make_response")
def _make_response() -> MakeResponse:
    """``make_response("A1", patient_id=..., ...)``: a QuestionnaireResponse."""
    return response
