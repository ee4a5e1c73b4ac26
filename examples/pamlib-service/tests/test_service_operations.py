"""Start-up refusals, logs without identifiers, scores equal to ``pamlib score``, migrations
that match the models, and hostile FHIR input that never gives a 500."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamlib_service import Settings, create_app, testing
from pamlib_service.config import StartupError
from pamlib_service.db import MIGRATION_LOCK, make_engine, migrate
from pamlib_service.logs import AccessLogFilter, JsonFormatter
from pamlib_service.models import Base
from pamlib_service.testing import PostgresServer, PostgresUnavailableError
from sqlalchemy import Engine, inspect, text
from starlette.testclient import TestClient

import pamlib
import pamlib.fhir
from pamlib import hookimpl
from pamlib.cli import main as pamlib_main
from pamlib.plugins import PluginHost
from pamlib.scoring import demo_calibration
from pamlib.testing.fhir import hostile_json, mutated

Auth = Callable[[str], dict[str, str]]
MakeResponse = Callable[..., dict[str, Any]]
PAM13 = pamlib.instruments.BUILTIN_INSTRUMENTS[0]
#: A one-row PAM-13 table's item columns and answers (every item needs a column).
ITEMS = ",".join(f"q{i:02d}" for i in range(1, 14))
ANSWERS = ",".join(["3"] * 13)


def cli_error(*args: str) -> str:
    """The message ``pamlib`` prints for a failing command line."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert pamlib_main(list(args)) != 0
    return err.getvalue().strip()


def refusal(settings: Settings, host: PluginHost) -> str:
    with pytest.raises(StartupError) as caught, TestClient(create_app(settings, host=host)):
        pass
    return str(caught.value)


def test_refuses_to_start_without_a_calibration_file_as_the_cli_does(
    settings: Settings, host: PluginHost, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.json"
    message = refusal(attrs.evolve(settings, provider="rasch", calibration=missing), host)
    assert message == cli_error("score", str(tmp_path), "--calibration", str(missing))


def test_refuses_to_start_with_an_unknown_provider_as_the_cli_does(
    settings: Settings, host: PluginHost, tmp_path: Path
) -> None:
    table = tmp_path / "in.csv"
    table.write_text(f"patient_id,assessed_on,instrument,{ITEMS}\np,2025-03-01,PAM-13,{ANSWERS}\n")
    message = refusal(attrs.evolve(settings, provider="no-such-provider"), host)
    assert message == cli_error("score", str(table), "--provider", "no-such-provider")


def test_refuses_to_start_without_a_licensed_provider(settings: Settings, host: PluginHost) -> None:
    message = refusal(attrs.evolve(settings, provider=None), host)
    assert message.startswith("pamlib: error: no licensed scoring provider for PAM-13")


def test_refuses_to_start_on_a_bad_calibration(
    settings: Settings, host: PluginHost, tmp_path: Path
) -> None:
    bad = tmp_path / "calibration.json"
    bad.write_text('{"instrument": "PAM-13"}')
    table = tmp_path / "in.csv"
    table.write_text(f"patient_id,assessed_on,instrument,{ITEMS}\np,2025-03-01,PAM-13,{ANSWERS}\n")
    message = refusal(attrs.evolve(settings, provider="rasch", calibration=bad), host)
    out = str(tmp_path / "out.csv")
    assert message == cli_error("score", str(table), "-o", out, "--calibration", str(bad))


class _BrokenPlugin:
    @hookimpl
    def pamlib_register_pathways(self, register: Any) -> None:
        raise RuntimeError("broken on purpose")


def test_refuses_to_start_when_a_plugin_failed(settings: Settings) -> None:
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"broken": _BrokenPlugin()})
    message = refusal(settings, host)
    assert message.startswith("pamlib: error: ")
    assert "broken" in message


def test_refuses_to_start_without_tokens(settings: Settings, host: PluginHost) -> None:
    message = refusal(attrs.evolve(settings, tokens_file=None), host)
    assert message == "pamlib: error: PAMLIB_SERVICE_TOKENS is not set (the tokens file's path)"


def test_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "PAMLIB_SERVICE_DATABASE_URL": "postgresql+psycopg://svc@localhost/pam",
        "PAMLIB_SERVICE_PROVIDER": "rasch",
        "PAMLIB_SERVICE_CALIBRATION": "cal.json",
        "PAMLIB_SERVICE_RULES": f"a.toml{__import__('os').pathsep}b.toml",
        "PAMLIB_SERVICE_TOKENS": "tokens.json",
    }
    got = Settings.from_env(env)
    assert got.database_url == env["PAMLIB_SERVICE_DATABASE_URL"]
    assert (got.provider, got.calibration, got.tokens_file) == (
        "rasch",
        Path("cal.json"),
        Path("tokens.json"),
    )
    assert got.rules == (Path("a.toml"), Path("b.toml"))
    defaults = Settings.from_env({})
    assert defaults == Settings()
    assert defaults.database_url == "sqlite:///pamlib-service.db"


def test_the_app_uvicorn_runs_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tokens_file: Path,
    auth: Auth,
    make_response: MakeResponse,
) -> None:
    monkeypatch.setenv("PAMLIB_SERVICE_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("PAMLIB_SERVICE_TOKENS", str(tokens_file))
    monkeypatch.setenv("PAMLIB_SERVICE_PROVIDER", "demo")
    monkeypatch.setenv("PAMLIB_PLUGINS", "only-built-ins")  # an allow-list naming no plugin
    with TestClient(create_app()) as client:
        qr = make_response("A1")
        answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
        assert answer.status_code == 201


def test_without_postgresql_the_server_says_why_it_cannot_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the PostgreSQL tests skip with on a machine without the server package."""
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setattr(testing, "_SEARCH", ())
    with pytest.raises(PostgresUnavailableError, match="no initdb on PATH"):
        PostgresServer().start()


def _schema_is_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("0001",)
        ]


def test_migrations_create_exactly_the_models_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # a second start-up finds nothing to do
    _schema_is_the_models(engine)
    engine.dispose()


def test_services_starting_at_once_migrate_once_without_racing(database_url: str) -> None:
    """Four start-ups upgrading an empty database at the same moment all succeed."""
    engines = [make_engine(database_url) for _ in range(4)]
    start = threading.Barrier(len(engines))

    def upgrade(engine: Engine) -> None:
        start.wait()
        migrate(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(upgrade, engines))
        _schema_is_the_models(engines[0])
    finally:
        for engine in engines:
            engine.dispose()


def test_a_migration_waits_for_the_lock_another_start_holds(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL the upgrade waits on an advisory lock: while another process holds it,
    nothing is created; once it is released, the upgrade goes ahead."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's (SQLite has one writer anyway)")
    holder, engine = make_engine(database_url), make_engine(database_url)
    try:
        with holder.connect() as held:
            held.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            with ThreadPoolExecutor(1) as pool:
                upgrade = pool.submit(migrate, engine)
                time.sleep(1.0)
                assert not upgrade.done()
                assert not inspect(holder).has_table("submissions")
                held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                held.commit()
                upgrade.result(timeout=60)
        _schema_is_the_models(engine)
    finally:
        holder.dispose()
        engine.dispose()


# -- scores equal `pamlib score` ---------------------------------------------------------------


def test_scores_equal_pamlib_score_on_the_same_answers(
    settings: Settings,
    host: PluginHost,
    tmp_path: Path,
    auth: Auth,
    make_response: MakeResponse,
) -> None:
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps(demo_calibration(PAM13).to_document()))
    rasch = attrs.evolve(settings, provider="rasch", calibration=calibration)
    patterns = [
        dict.fromkeys(PAM13.items, 3),
        dict(zip(PAM13.items, [1, 2, 3, 4] * 4, strict=False)),
        dict.fromkeys(PAM13.items[:9], 4),
        {**dict.fromkeys(PAM13.items[:10], 2), PAM13.items[10]: -1},
        dict.fromkeys(PAM13.items[:3], 1),  # too few: not scored either way
    ]
    served: dict[str, tuple[Any, Any]] = {}
    with TestClient(create_app(rasch, host=host)) as client:
        for n, answers in enumerate(patterns):
            qr = make_response(f"A{n}", patient_id=f"P{n}", answers=answers)
            bundle = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
            body = client.get(f"/patients/P{n}/trajectory", headers=auth("north")).json()
            assert bundle.status_code == 201
            served[f"A{n}"] = (body["assessments"][0]["score"], body["assessments"][0]["level"])
    table = tmp_path / "answers.csv"
    columns = [f"q{k:02d}" for k in range(1, 14)]
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["assessment_id", "patient_id", "assessed_on", "instrument", *columns])
        for n, answers in enumerate(patterns):
            codes = [answers.get(item) for item in PAM13.items]
            cells = ["" if c is None else "N/A" if c == -1 else str(c) for c in codes]
            writer.writerow([f"A{n}", f"P{n}", "2025-03-01", "PAM-13", *cells])
    out = tmp_path / "scored.csv"
    with contextlib.redirect_stderr(io.StringIO()):
        pamlib_main(["score", str(table), "-o", str(out), "--calibration", str(calibration)])
    with out.open(newline="") as fh:
        cli = {
            r["assessment_id"]: (
                float(r["score"]) if r["score"] else None,
                int(r["level"]) if r["level"] else None,
            )
            for r in csv.DictReader(fh)
        }
    assert served == cli
    assert served["A4"] == (None, None)


# -- no identifier in logs or error bodies ------------------------------------------------------


@contextlib.contextmanager
def every_log_line() -> Iterator[list[str]]:
    """Every record logged by anyone, formatted as message, JSON line and uvicorn's format."""
    lines: list[str] = []
    formatter = JsonFormatter()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.startswith("httpx"):  # the test's own HTTP client, not the server
                return
            lines.append(record.getMessage())
            lines.append(formatter.format(record))

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


NHS = "9434765919"
PATIENT = "patient-secret-17"


def test_no_identifier_in_logs_or_error_bodies(
    client: TestClient, auth: Auth, make_response: MakeResponse
) -> None:
    bodies: list[str] = []
    with every_log_line() as lines:
        good = make_response("ASSESS-SECRET", patient_id=None, nhs_number=NHS)
        bad_nhs = make_response("ASSESS-SECRET-2", patient_id=None, nhs_number=NHS)
        bad_nhs["contained"][0]["identifier"][0]["value"] = "943 476 5910"  # check digit wrong
        other = make_response("ASSESS-SECRET-3", patient_id=PATIENT, site="South")
        conflict = make_response("ASSESS-SECRET", patient_id=None, nhs_number=NHS, answers={})
        for qr in (good, good, bad_nhs, other, conflict):
            answer = client.post("/fhir/QuestionnaireResponse", json=qr, headers=auth("north"))
            if answer.status_code >= 400:
                bodies.append(answer.text)
        for path in (f"/patients/{NHS}/trajectory", f"/patients/{PATIENT}/trajectory"):
            client.get(path, headers=auth("north"))
            bodies.append(client.get(path, headers=auth("south")).text)
        client.get(f"/patients/{NHS}/trajectory")
    assert len(bodies) == 5  # 422, 403, 409, and two 404s
    everything = "\n".join([*lines, *bodies])
    assert lines
    assert "request" in everything
    for secret in (NHS, "943 476 5910", "9434765910", PATIENT, "ASSESS-SECRET"):
        assert secret not in everything


def test_no_identifier_in_logs_from_query_strings_or_paths_matching_no_route(
    client: TestClient, auth: Auth
) -> None:
    with every_log_line() as lines:
        for path in (
            f"/reassessments/overdue?on={NHS}",
            f"/reassessments/overdue?on=2025-10-01&who={NHS}",
            f"/patient/{NHS}/trajectory",
            "/Patients/Jane Smith/trajectory",
            "/patients/Jane%2FSmith/trajectory",
            f"/patients/{NHS}/trajectory/",
        ):
            client.get(path, headers=auth("north"))
    everything = "\n".join(lines)
    for secret in (NHS, "Jane", "Smith"):
        assert secret not in everything
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    shown = {entry["path"] for entry in logged if "path" in entry}
    # The trailing slash is redirected to the route (which the client follows).
    assert shown == {"/reassessments/overdue", "/patients/{key}/trajectory", "unmatched"}


def test_uvicorns_access_log_shows_route_templates_only(client: TestClient) -> None:
    """The filter the service puts on uvicorn's access logger, for uvicorn run without
    ``--no-access-log``: its lines show the route a request matched, never the path as sent."""
    (installed,) = [
        f for f in logging.getLogger("uvicorn.access").filters if isinstance(f, AccessLogFilter)
    ]
    for sent, shown in (
        (f"/patients/{NHS}/trajectory?x=1", "/patients/{key}/trajectory"),
        (f"/patients/nhs%3A{NHS}/trajectory", "/patients/{key}/trajectory"),
        (f"/reassessments/overdue?on={NHS}", "/reassessments/overdue"),
        (f"/patient/{NHS}/trajectory", "unmatched"),
        ("/Patients/Jane%20Smith/trajectory", "unmatched"),
    ):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", sent, "1.1", 200),
            None,
        )
        assert installed.filter(record)
        assert record.getMessage() == f'127.0.0.1:5000 - "GET {shown} HTTP/1.1" 200'


# -- hostile input -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One service for every example, on each database (PostgreSQL refuses NUL characters and
    half surrogate pairs that SQLite stores: both must answer 4xx)."""
    folder = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'fuzz.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("fuzz")
    tokens = folder / "tokens.json"
    tokens.write_text(
        json.dumps({"tokens": {"fuzz-token-0123456789": {"site": "North", "roles": ["submit"]}}})
    )
    settings = Settings(database_url=url, tokens_file=tokens, provider="demo")
    host = PluginHost(load_entry_points=False, disabled=())
    with TestClient(create_app(settings, host=host)) as client:
        yield client


@st.composite
def hostile_responses(draw: st.DrawFn) -> dict[str, Any]:
    """pamlib's FHIR fuzz strategy: a valid response with up to three fields replaced, removed
    or grown (:mod:`pamlib.testing.fhir`)."""
    answers = draw(st.dictionaries(st.sampled_from(PAM13.items), st.sampled_from([-1, 1, 2, 3, 4])))
    patient = draw(st.sampled_from([pamlib.Patient("P1"), pamlib.Patient(None, nhs_number=NHS)]))
    base = pamlib.Assessment(
        draw(st.sampled_from("ABC")),
        patient,
        PAM13,
        dt.date(2025, 3, 1),
        answers,
        site=draw(st.sampled_from([None, "North", "South"])),
    )
    return draw(mutated(pamlib.fhir.questionnaire_response(base)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), path=st.sampled_from(["/fhir/QuestionnaireResponse", "/fhir/$score"]))
def test_hostile_responses_get_4xx_with_located_problems_never_500(
    fuzz_client: TestClient, data: st.DataObject, path: str
) -> None:
    resource = data.draw(hostile_responses())
    headers = {"Authorization": "Bearer fuzz-token-0123456789"}
    # Nesting far deeper than pamlib's reader allows: the service's JSON parser meets it first.
    answer = fuzz_client.post(path, content=hostile_json(resource, depth=5000), headers=headers)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.status_code in (400, 403, 409, 422)
        issues = answer.json()["issue"]
        assert issues
        if answer.status_code in (400, 422):
            assert all(i["expression"][0].startswith("$") for i in issues)
