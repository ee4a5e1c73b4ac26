"""What the service does, without HTTP: start-up checks, submissions, queries.

Everything here is synchronous and thread-safe (the web layer runs it in a thread pool):
pamlib's host, providers and tailoring engine are built once at start-up and only read
afterwards; each request parses with a parser of its own; the database serialises what must
be serialised.

Errors a caller should see are :class:`ApiError`\\s: a status, a stable code, a message and
located problems — never a value from the request, so no identifier can leak into a body or a
log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import Engine as Database
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import pamlib
from pamlib.errors import (
    LicenceError,
    PamlibError,
    Problem,
    ValidationError,
)
from pamlib.fhir import Assembler, BundleSettings, ResponseParser, ResponseRow
from pamlib.identity import is_valid_nhs_number, normalise_nhs_number
from pamlib.pathways import Pathway
from pamlib.plugins import PluginHost
from pamlib.reporting import CohortReport, ReportConfig, summary_json
from pamlib.results import ScoreResult
from pamlib.scoring import ScoringProvider
from pamlib.tables.scored import (
    IDENTITY_COLUMNS,
    RECOMMENDATION_TYPES,
    STANDARD_TYPES,
    ScoredTable,
    scored_schema,
)
from pamlib.tailoring import Engine, build_engine
from pamlib_service import db
from pamlib_service.config import Settings, StartupError, Token, Tokens, load_tokens
from pamlib_service.logs import log_event
from pamlib_service.models import MAX_TEXT, Submission

__all__ = ["ApiError", "Service"]

#: Where a not-scored reason's code lives in the answer's OperationOutcome.
REASON_SYSTEM = "https://pamlib.org/fhir/CodeSystem/not-scored-reason"
#: The site's pathway ids, as codes of the CarePlan's activities.
PATHWAY_SYSTEM = "https://pamlib.org/fhir/CodeSystem/pathway"
#: Activities that are not a pathway (the reassessment).
ACTIVITY_SYSTEM = "https://pamlib.org/fhir/CodeSystem/care-activity"
#: One per tailoring rule that fired, on the CarePlan: the id of the rule.
RULE_EXTENSION = "https://pamlib.org/fhir/StructureDefinition/tailoring-rule"
#: Columns of a scored row that an assessment attribute may not take over.
_RESERVED = frozenset(
    {*STANDARD_TYPES, *RECOMMENDATION_TYPES, *IDENTITY_COLUMNS, "site", "language", "mode"}
)
#: The deepest nesting of arrays and objects accepted: pamlib's own reader's limit (a FHIR
#: response nests about ten levels). Deeper documents would exhaust the interpreter's recursion
#: limit wherever the document is walked again (hashing it, storing it as JSON).
MAX_DEPTH = 64
#: At most this many located problems are listed for a body's values.
MAX_PROBLEMS = 20
#: Member names shown in a problem's path; any other name is shown as ``*``, so that no
#: request text that could be an identifier is echoed.
_ELEMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class ApiError(Exception):
    """A request that cannot be carried out: HTTP ``status``, stable ``code``, words, and
    every problem with where it is, and any ``headers`` the status calls for
    (``Accept-Encoding`` with a 415). Nothing in it comes from the request's values."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: Iterable[Problem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = tuple(problems)
        self.headers = dict(headers or {})


@attrs.frozen
class Parsed:
    """One QuestionnaireResponse read and checked: what it is about and how it is keyed. Its
    repr shows the content hash only: the assessment's shows its id, which may be a patient's
    (an identifier value a clinic chose), and a repr ends up in debuggers and error reports."""

    document: dict[str, Any] = attrs.field(repr=False)
    assessment: pamlib.Assessment = attrs.field(repr=False)
    patient_key: str = attrs.field(repr=False)
    content_sha256: str
    identifier: tuple[str, str] | None = attrs.field(repr=False)


def _digest(document: object) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _text_problem(value: str, where: str, what: str) -> Problem | None:
    """Why ``value`` cannot be stored as a key, or None: too long, a NUL (PostgreSQL text
    cannot hold one), or half a surrogate pair (no database encoding can)."""
    if len(value) > MAX_TEXT:
        return Problem(where, "too-long", f"{what} is longer than {MAX_TEXT} characters")
    if "\x00" in value:
        return Problem(where, "nul", f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return Problem(where, "not-unicode", f"{what} is not Unicode text")
    return None


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if _ELEMENT_NAME.fullmatch(key) else f"{path}.*"


def _value_problems(document: object) -> list[Problem]:
    """The values of a parsed body that cannot be stored, located: a number out of range
    (``1e999`` parses as infinity, which JSON columns refuse) and a NUL in a string or member
    name (PostgreSQL text cannot hold one; FHIR strings may hold no control character).

    Walks iteratively, and first raises a 400 :class:`ApiError` for nesting deeper than
    :data:`MAX_DEPTH`: hashing or storing such a document would recurse too deep.
    """
    problems: list[Problem] = []
    stack: list[tuple[object, str, int]] = [(document, "$", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict):
            children = [(v, _member(path, k)) for k, v in value.items()]
            names: Iterable[str] = value.keys()
        elif isinstance(value, list):
            children, names = [(v, f"{path}[{i}]") for i, v in enumerate(value)], ()
        else:
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(Problem(path, "number-range", "a number is out of range"))
            elif isinstance(value, str) and "\x00" in value:
                problems.append(Problem(path, "nul", "a string contains a NUL character"))
            continue
        if depth > MAX_DEPTH:
            problem = Problem(path, "too-deep", f"nested more than {MAX_DEPTH} levels deep")
            raise ApiError(400, "too-deep", "the body is nested too deeply", [problem])
        if any("\x00" in name for name in names):
            problems.append(Problem(path, "nul", "a member name contains a NUL character"))
        stack.extend((child, at, depth + 1) for child, at in reversed(children))
    return problems[:MAX_PROBLEMS]


def _identifier(document: Mapping[str, Any]) -> tuple[str, str] | Problem:
    """The (system, value) that keys a submission; R4 has one identifier, R5 a list."""
    identifier = document.get("identifier")
    where = "$.identifier"
    if isinstance(identifier, list):
        candidates = [(c, f"$.identifier[{i}]") for i, c in enumerate(identifier)]
    else:
        candidates = [(identifier, where)]
    for candidate, here in candidates:
        if not isinstance(candidate, Mapping):
            continue
        value, system = candidate.get("value"), candidate.get("system", "")
        if value is not None and not isinstance(value, str):
            # A number or an object is an identifier given wrongly, not one missing: say so.
            return Problem(f"{here}.value", "type", "the identifier's value must be a string")
        if not isinstance(value, str) or not value.strip():
            continue
        if not isinstance(system, str):
            return Problem(f"{here}.system", "type", "the identifier's system must be a URI")
        for text, at, what in ((system, "system", "the system"), (value, "value", "the value")):
            problem = _text_problem(text, f"{here}.{at}", f"the identifier's {what[4:]}")
            if problem is not None:
                return problem
        return system, value
    return Problem(
        where,
        "no-identifier",
        "a stored response needs an identifier (system and value): it is what makes "
        "resubmission safe",
    )


def patient_key(patient: pamlib.Patient) -> str:
    """pamlib's patient key: the patient id, else ``nhs:`` and the normalised NHS number."""
    if patient.id:
        return patient.id
    return f"nhs:{patient.nhs_number}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def scored_row(assessment: pamlib.Assessment, result: ScoreResult) -> dict[str, Any]:
    """The assessment's row of a scored table, as JSON values (what ``pamlib score`` writes,
    with the site, language and the assessment's attributes as extra columns)."""
    row: dict[str, Any] = {
        "assessment_id": assessment.id,
        "patient_id": assessment.patient.id,
        "nhs_number": assessment.patient.nhs_number,
        "assessed_on": assessment.assessed_on.isoformat(),
        "instrument": assessment.instrument.id,
        "status": str(result.status),
        "n_answered": result.n_answered,
        "raw_score": result.raw_score,
        "theta": _finite(result.theta),
        "theta_se": _finite(result.theta_se),
        "score": _finite(result.score),
        "score_se": _finite(result.score_se),
        "level": None if result.level is None else int(result.level),
        "cutpoint_set": result.cutpoint_set,
        "flags": sorted(str(f) for f in result.flags),
        "provider": result.provider,
        "provider_version": result.provider_version,
        "calibration_id": result.calibration_id,
        "calibration_sha256": result.calibration_sha256,
        "demo": result.demo,
        "reason": result.reason_code,
        "site": assessment.site,
        "language": assessment.language,
    }
    for name, value in assessment.attributes.items():
        if name not in _RESERVED:
            row[name] = value
    return row


def _table(rows: Sequence[Mapping[str, Any]], keys: Sequence[object]) -> ScoredTable:
    """A scored table of every row: none is left out.

    A scored table holds each assessment id once, but two stored submissions may carry one
    (another identifier system, perhaps another clinic's patient). Each was acknowledged as a
    submission of its own, so each counts: a repeated id is told apart by the row's ``keys``
    entry (its stored id) after a NUL, which no stored assessment id holds (:func:`_real_id`
    undoes it). The first keeps its id, so ties still order by assessment id as in pamlib.
    """
    import pyarrow as pa

    if not rows:
        return ScoredTable.from_arrow(scored_schema().empty_table())
    seen: set[str] = set()
    kept = []
    for row, key in zip(rows, keys, strict=True):
        assessment_id = str(row["assessment_id"])
        unique = f"{assessment_id}\x00{key}" if assessment_id in seen else assessment_id
        seen.add(assessment_id)
        kept.append({**row, "assessment_id": unique})
    return ScoredTable.from_arrow(pa.Table.from_pylist(kept))


def _real_id(table_id: str) -> str:
    """The stored assessment id of a :func:`_table` row's id."""
    return table_id.partition("\x00")[0]


def _bundle(assessment: pamlib.Assessment, result: ScoreResult) -> dict[str, Any]:
    """The answer: a ``collection`` Bundle with the Patient, the response and its
    Observations; a response that was not scored gets an OperationOutcome saying why."""
    assembler = Assembler(BundleSettings(style="collection"))
    entries = assembler.entries(ResponseRow.from_assessment(assessment), result)
    if not result.scored:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "details": {
                        "coding": [{"system": REASON_SYSTEM, "code": result.reason_code or ""}],
                        "text": f"not scored: {result.reason or result.reason_code}",
                    },
                }
            ],
        }
        entries.append({"resource": outcome})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def care_plan(
    entries: Sequence[Mapping[str, Any]],
    pathways: Sequence[str],
    rules_fired: Sequence[str],
    reassess_by: dt.date | None,
    catalogue: Mapping[str, Pathway],
) -> dict[str, Any] | None:
    """The tailored pathways as a proposed ``CarePlan`` entry, or None when there is nothing to
    propose.

    A CarePlan because that is where a FHIR client looks for what is planned for a patient
    (``CarePlan?subject=...``), and what ``PlanDefinition/$apply`` gives back: ``intent``
    ``proposal`` and ``status`` ``draft``, since rules suggest and a clinician decides. Each
    pathway is an activity coded with its id (and the site's own concept, if the pathway has
    one); the reassessment is an activity due by its date; ``supportingInfo`` points at the
    response and its Observations, and an extension per rule says which rules fired.
    """
    if not pathways and reassess_by is None:
        return None
    by_kind: dict[str, list[dict[str, str]]] = {}
    for entry in entries:
        kind = entry["resource"]["resourceType"]
        by_kind.setdefault(kind, []).append({"reference": str(entry["fullUrl"])})
    activities = []
    for pid in pathways:
        pathway = catalogue.get(pid)
        coding = [{"system": PATHWAY_SYSTEM, "code": pid}]
        if pathway is not None:
            coding[0]["display"] = pathway.name
            if pathway.concept is not None:
                concept = {"system": pathway.concept.system, "code": pathway.concept.code}
                if pathway.concept.display:
                    concept["display"] = pathway.concept.display
                coding.append(concept)
        detail: dict[str, Any] = {"code": {"coding": coding}, "status": "not-started"}
        if pathway is not None:
            detail["code"]["text"] = pathway.name
            if pathway.description:
                detail["description"] = pathway.description
        activities.append({"detail": detail})
    if reassess_by is not None:
        reassess = {"system": ACTIVITY_SYSTEM, "code": "reassessment", "display": "Reassessment"}
        detail = {
            "code": {"coding": [reassess], "text": "Reassess activation"},
            "status": "scheduled",
            "scheduledPeriod": {"end": reassess_by.isoformat()},
        }
        activities.append({"detail": detail})
    (response,) = by_kind["QuestionnaireResponse"]
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(uuid.uuid4()),
        "extension": [{"url": RULE_EXTENSION, "valueString": rule} for rule in rules_fired],
        "status": "draft",
        "intent": "proposal",
        "title": "Support tailored to patient activation",
        "subject": by_kind["Patient"][0],
        "supportingInfo": [response, *by_kind.get("Observation", [])],
        "activity": activities,
    }
    if not plan["extension"]:
        del plan["extension"]
    return {"fullUrl": f"urn:uuid:{plan['id']}", "resource": plan}


def _not_pam(report: CohortReport) -> dict[str, Any]:
    """Whether a report's rows are not PAM scores and why, in the cohort summary's words: an
    answer holding scores or dates made from them carries this, so a reader cannot take
    demonstration, unlicensed or raw results for the PAM."""
    return {"not_pam": report.not_pam, "not_pam_reasons": list(report.not_pam_reasons)}


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


class _ConstantError(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's parser takes them, JSON has none."""


def _reject_constant(name: str) -> float:
    raise _ConstantError(name)


#: What :mod:`json` says of a syntax error, shown when it is one of these fixed phrases (its
#: pure-Python scanner may add the offending character, which is request text).
_JSON_PHRASES = frozenset(
    {
        "Expecting value",
        "Expecting property name enclosed in double quotes",
        "Expecting ':' delimiter",
        "Expecting ',' delimiter",
        "Extra data",
        "Unterminated string starting at",
        "Invalid control character at",
        "Invalid \\escape",
        "Invalid \\uXXXX escape",
    }
)


def _not_json(exc: Exception, offset: int) -> Problem:
    """Why the body is no JSON document, and where (``offset``: bytes skipped before it): a
    fixed phrase and a position, quoting nothing of the body."""
    if isinstance(exc, json.JSONDecodeError):
        phrase = exc.msg if exc.msg in _JSON_PHRASES else "Invalid syntax"
        phrase = phrase.removesuffix(" at").removesuffix(" starting").lower()
        return Problem("$", "json", f"not JSON: {phrase} at line {exc.lineno}, column {exc.colno}")
    if isinstance(exc, UnicodeDecodeError):
        return Problem("$", "json", f"not UTF-8 text: byte {exc.start + offset + 1} is invalid")
    if isinstance(exc, _ConstantError):
        return Problem("$", "json", "NaN and Infinity are not JSON numbers")
    if isinstance(exc, RecursionError):
        return Problem("$", "too-deep", f"nested more than {MAX_DEPTH} levels deep")
    return Problem("$", "json", "a number has too many digits")  # int's digit limit


class _RepeatedMemberError(Exception):
    """An object of the body names one member twice."""


def _members_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _RepeatedMemberError
    return found


class Service:
    """pamlib, the tokens and the database, set up once; one method per endpoint."""

    def __init__(
        self,
        settings: Settings,
        *,
        host: PluginHost,
        tokens: Tokens,
        providers: Mapping[str, ScoringProvider],
        engine: Engine,
        database: Database,
    ) -> None:
        self.settings = settings
        self.host = host
        self.tokens = tokens
        self.providers = dict(providers)
        self.engine = engine
        self.database = database
        self.sessions: sessionmaker[Session] = db.session_factory(database)

    # -- start-up ----------------------------------------------------------------------------

    @classmethod
    def start(cls, settings: Settings, *, host: PluginHost | None = None) -> Service:
        """Check everything a request will need, or raise :class:`StartupError` with the
        messages the ``pamlib`` command line gives for the same problem."""
        tokens = load_tokens(settings.tokens_file)
        try:
            host = host if host is not None else PluginHost()
            calibration = None
            if settings.calibration is not None:
                if not settings.calibration.is_file():
                    raise StartupError(
                        f"pamlib: error: no calibration file {settings.calibration.name}"
                    )
                calibration = pamlib.load_calibration(settings.calibration)
            instruments = host.instruments()
            providers = {
                name: pamlib.select_provider(
                    settings.provider, instruments.get(name), calibration=calibration, host=host
                )
                for name in settings.instruments
            }
            for path in settings.rules:
                if not path.is_file():
                    raise StartupError(f"pamlib: error: no rules file {path}")
            engine = build_engine(settings.rules, host=host)
            host.scoring_providers()  # every registry built now, so every failure is known
            if host.errors:  # a plugin the site relies on may be among them: refuse
                raise StartupError("\n".join(f"pamlib: error: {e}" for e in host.errors))
        except PamlibError as exc:
            raise StartupError(f"pamlib: error: {exc}") from None
        database = db.make_engine(settings.database_url)
        try:
            db.migrate(database)
        except Exception as exc:
            database.dispose()
            raise StartupError(
                f"pamlib-service: error: cannot migrate the database ({type(exc).__name__})"
            ) from None
        service = cls(
            settings,
            host=host,
            tokens=tokens,
            providers=providers,
            engine=engine,
            database=database,
        )
        log_event(
            "started",
            instruments=sorted(providers),
            providers=sorted({p.id for p in providers.values()}),
            database=database.dialect.name,
        )
        return service

    def close(self) -> None:
        self.database.dispose()

    def ready(self) -> bool:
        return db.ping(self.database)

    # -- who may do what ---------------------------------------------------------------------

    def authorise(self, header: str | None, role: str) -> Token:
        """The token of ``Authorization: Bearer <token>`` if it has ``role``; else 401 or 403."""
        scheme, _, secret = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "unauthenticated", "a bearer token is needed")
        token = self.tokens.find(secret.strip())
        if token is None:
            raise ApiError(401, "unauthenticated", "the bearer token is not known")
        if role not in token.roles:
            raise ApiError(403, "forbidden", f"the token does not have the '{role}' role")
        return token

    # -- reading a response ------------------------------------------------------------------

    def parse(self, body: bytes, token: Token, *, keyed: bool) -> Parsed:
        """The body as a checked QuestionnaireResponse of the token's site, or an ApiError
        listing every problem (``keyed``: an identifier is required, for storing)."""
        unmarked = body.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark, as Windows writes
        try:
            document = json.loads(
                unmarked.decode("utf-8"),
                parse_constant=_reject_constant,
                object_pairs_hook=_members_once,
            )
        except _RepeatedMemberError:
            # FHIR's JSON allows each member once; with two, which one counts would be a guess
            problem = Problem("$", "duplicate-member", "an object has the same member twice")
            raise ApiError(
                400, "invalid-json", "the body is not valid FHIR JSON", [problem]
            ) from None
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            problem = _not_json(exc, len(body) - len(unmarked))
            raise ApiError(
                400, "invalid-json", "the body is not a JSON document", [problem]
            ) from None
        unstorable = _value_problems(document)
        if not isinstance(document, dict) or document.get("resourceType") != (
            "QuestionnaireResponse"
        ):
            problem = Problem("$.resourceType", "resource-type", "expected a QuestionnaireResponse")
            raise ApiError(422, "invalid", "not a QuestionnaireResponse", [problem])
        identifier = _identifier(document) if keyed else None
        problems = list(unstorable)
        found = {(p.where, p.code) for p in problems}
        if isinstance(identifier, Problem) and (identifier.where, identifier.code) not in found:
            problems.append(identifier)
        parser = ResponseParser(self.host.instruments())  # one per request: it keeps caches
        try:
            row = parser.parse(document)
        except RecursionError:
            row = [Problem("$", "too-deep", "nested too deeply")]
        if isinstance(row, list):
            raise ApiError(422, "invalid", "the response cannot be used", [*problems, *row])
        try:
            assessment = row.to_assessment()
        except ValidationError as exc:
            raise ApiError(
                422, "invalid", "the response cannot be used", [*problems, *exc.problems]
            ) from None
        if assessment.instrument.id not in self.providers:
            problems.append(
                Problem(
                    "$.questionnaire", "instrument-not-served", "this service does not score it"
                )
            )
        key = patient_key(assessment.patient)
        for text, where, what in (
            (assessment.id, "$.identifier", "the assessment id"),
            (key, "$.subject", "the patient key"),
            (assessment.site or "", "$.extension", "the site"),
        ):
            bad = _text_problem(text, where, what)
            if bad is not None:
                problems.append(bad)
        if problems:
            raise ApiError(422, "invalid", "the response cannot be used", problems)
        if assessment.site is None:
            assessment = attrs.evolve(assessment, site=token.site)
        elif assessment.site != token.site:
            raise ApiError(403, "other-site", "the response names a site other than the token's")
        assert not isinstance(identifier, Problem)  # noqa: S101 - reported above
        return Parsed(document, assessment, key, _digest(document), identifier)

    def _score(self, assessment: pamlib.Assessment) -> ScoreResult:
        provider = self.providers[assessment.instrument.id]
        try:
            return pamlib.score(assessment, provider=provider, host=self.host)
        except LicenceError:
            log_event("licence-refused", level=40, instrument=assessment.instrument.id)
            raise ApiError(503, "licence", "scoring is not licensed at present") from None

    # -- endpoints ---------------------------------------------------------------------------

    def score_only(self, body: bytes, token: Token) -> dict[str, Any]:
        """``POST /fhir/$score``: the answer Bundle, nothing stored."""
        parsed = self.parse(body, token, keyed=False)
        return _bundle(parsed.assessment, self._score(parsed.assessment))

    def _existing(self, site: str, identifier: tuple[str, str]) -> Submission | None:
        with self.sessions() as session:
            return session.scalars(
                select(Submission).where(
                    Submission.site == site,
                    Submission.identifier_system == identifier[0],
                    Submission.identifier_value == identifier[1],
                )
            ).first()

    @staticmethod
    def _again(existing: Submission, parsed: Parsed) -> tuple[int, dict[str, Any]]:
        if existing.content_sha256 != parsed.content_sha256:
            log_event("conflict", submission=existing.id)
            raise ApiError(
                409,
                "conflict",
                "a different response with the same identifier is stored for this site",
            )
        log_event("resubmitted", submission=existing.id)
        return 200, existing.bundle

    def submit(self, body: bytes, token: Token) -> tuple[int, dict[str, Any]]:
        """``POST /fhir/QuestionnaireResponse``: (status, Bundle). Stores in one transaction;
        the unique key, not the check before it, is what keeps duplicates out."""
        parsed = self.parse(body, token, keyed=True)
        assert parsed.identifier is not None  # noqa: S101 - keyed
        existing = self.lookup(token.site, parsed.identifier)
        if existing is not None:
            return self._again(existing, parsed)
        assessment = parsed.assessment
        result = self._score(assessment)
        row = scored_row(assessment, result)
        bundle = _bundle(assessment, result)
        try:
            with self.sessions.begin() as session:
                previous = session.execute(
                    select(Submission.id, Submission.scored_row)
                    .where(
                        Submission.site == token.site, Submission.patient_key == parsed.patient_key
                    )
                    .order_by(Submission.id)
                ).all()
                earlier = [p for p in previous if p.scored_row["assessment_id"] != assessment.id]
                table = _table(
                    [*(p.scored_row for p in earlier), row], [*(p.id for p in earlier), "new"]
                )
                tailored = pamlib.tailor(table, self.engine).to_arrow()
                last = tailored.slice(len(tailored) - 1).to_pylist()[0]
                pathways = list(last["recommended_pathways"] or [])
                rules_fired = list(last["recommendation_rules"] or [])
                reassess_by = last["reassess_by"]
                plan = care_plan(
                    bundle["entry"],
                    pathways,
                    rules_fired,
                    reassess_by,
                    self.engine.pathways,
                )
                answer = {**bundle, "entry": [*bundle["entry"], *([plan] if plan else [])]}
                submission = Submission(
                    site=token.site,
                    identifier_system=parsed.identifier[0],
                    identifier_value=parsed.identifier[1],
                    content_sha256=parsed.content_sha256,
                    assessment_id=assessment.id,
                    patient_key=parsed.patient_key,
                    instrument=assessment.instrument.id,
                    assessed_on=assessment.assessed_on,
                    status=str(result.status),
                    score=_finite(result.score),
                    level=None if result.level is None else int(result.level),
                    provider=result.provider,
                    provider_version=result.provider_version,
                    calibration_id=result.calibration_id,
                    calibration_sha256=result.calibration_sha256,
                    cutpoint_set=result.cutpoint_set,
                    reason_code=result.reason_code,
                    answers={k: int(v) for k, v in assessment.responses.items()},
                    pathways=pathways,
                    rules_fired=rules_fired,
                    reassess_by=reassess_by,
                    scored_row=row,
                    response=parsed.document,
                    bundle=answer,
                    created_at=dt.datetime.now(dt.UTC),
                )
                session.add(submission)
                session.flush()
                stored_id = submission.id
        except IntegrityError:
            existing = self.lookup(token.site, parsed.identifier)
            if existing is None:  # another constraint: a bug, not a duplicate
                raise
            return self._again(existing, parsed)
        log_event("stored", submission=stored_id, status=str(result.status))
        return 201, answer

    #: How an existing submission is found; a test replaces it to prove the constraint alone
    #: keeps concurrent duplicates out.
    lookup = _existing

    def _patient_rows(self, site: str, key: str) -> tuple[str, list[Submission]]:
        # A key no submission could be stored under (a NUL, too long) is no patient's: the same
        # 404 on every database, where PostgreSQL would refuse to compare a NUL at all.
        if _text_problem(key, "key", "the key") is not None:
            raise ApiError(404, "not-found", "no patient with that key at this site")
        candidates = [key]
        if not key.startswith("nhs:") and is_valid_nhs_number(key):
            candidates.append(f"nhs:{normalise_nhs_number(key)}")
        with self.sessions() as session:
            for candidate in candidates:
                rows = list(
                    session.scalars(
                        select(Submission)
                        .where(Submission.site == site, Submission.patient_key == candidate)
                        .order_by(Submission.assessed_on, Submission.id)
                    ).all()
                )
                if rows:
                    return candidate, rows
        raise ApiError(404, "not-found", "no patient with that key at this site")

    def trajectory(self, key: str, token: Token) -> dict[str, Any]:
        """``GET /patients/{key}/trajectory``: pamlib's trajectory, and every assessment."""
        found, rows = self._patient_rows(token.site, key)
        report = pamlib.build_report(_table([r.scored_row for r in rows], [r.id for r in rows]))
        trajectory = report.trajectories.for_patient(found)

        def ref(value: Any) -> dict[str, Any] | None:
            if value is None:
                return None
            return {
                "assessment_id": _real_id(value.assessment_id),
                "assessed_on": value.assessed_on.isoformat(),
                "score": value.score,
                "level": value.level,
                "flags": list(value.flags),
            }

        return {
            "patient": found,
            "n_assessments": trajectory.n_assessments,
            "baseline": ref(trajectory.baseline),
            "followup": ref(trajectory.followup),
            "change": trajectory.change,
            "classification": None
            if trajectory.classification is None
            else str(trajectory.classification),
            "transition": None if trajectory.transition is None else list(trajectory.transition),
            "demo": report.demo,
            **_not_pam(report),
            "assessments": [
                {
                    "assessment_id": r.assessment_id,
                    "assessed_on": r.assessed_on.isoformat(),
                    "status": r.status,
                    "score": r.score,
                    "level": r.level,
                    "flags": list(r.scored_row.get("flags") or []),
                    "reason": r.reason_code,
                    "pathways": r.pathways,
                    "reassess_by": _date(r.reassess_by),
                }
                for r in rows
            ],
        }

    def overdue(self, on: dt.date, token: Token) -> dict[str, Any]:
        """``GET /reassessments/overdue?on=DATE``: patients whose latest scored assessment was
        due for reassessment before ``on`` (a later attempt that was not scored is no
        reassessment)."""
        with self.sessions() as session:
            rows = session.execute(
                select(
                    Submission.id,
                    Submission.patient_key,
                    Submission.assessment_id,
                    Submission.assessed_on,
                    Submission.reassess_by,
                    Submission.scored_row,
                )
                .where(Submission.site == token.site, Submission.status == "scored")
                .order_by(Submission.assessed_on, Submission.id)
            ).all()
        latest = {r.patient_key: r for r in rows}
        due = sorted(
            (r for r in latest.values() if r.reassess_by is not None and r.reassess_by < on),
            key=lambda r: (r.reassess_by, r.patient_key),
        )
        # The dates follow from the levels of these rows: they are not the PAM's when the
        # scores are not (demonstration, unlicensed or raw totals), and the answer says so.
        considered = list(latest.values())
        table = _table([r.scored_row for r in considered], [r.id for r in considered])
        return {
            "on": on.isoformat(),
            **_not_pam(pamlib.build_report(table)),
            "n_overdue": len(due),
            "overdue": [
                {
                    "patient": r.patient_key,
                    "assessment_id": r.assessment_id,
                    "assessed_on": r.assessed_on.isoformat(),
                    "reassess_by": r.reassess_by.isoformat(),
                    "days_overdue": (on - r.reassess_by).days,
                }
                for r in due
            ],
        }

    def cohort(self, token: Token) -> dict[str, Any]:
        """``GET /reports/cohort``: the JSON summary of the token's site, always suppressed."""
        with self.sessions() as session:
            rows = session.execute(
                select(Submission.id, Submission.scored_row)
                .where(Submission.site == token.site)
                .order_by(Submission.id)
            ).all()
        table = _table([r.scored_row for r in rows], [r.id for r in rows])
        report = pamlib.build_report(table, ReportConfig(publish=True))
        return summary_json(report)
