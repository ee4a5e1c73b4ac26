"""``QuestionnaireResponse`` out of an assessment, and back in from any renderer.

Out: ``questionnaire`` is the instrument's ``url|version``; one item per answered item (an
unanswered item is left out, as renderers do); each answer a ``valueCoding`` from
:data:`~pamlib.fhir.codes.ANSWER_SYSTEM` — categories carry their ``ordinalValue`` weight, *not
applicable* is the code ``NA`` with no weight. The assessment id is the ``identifier``; mode,
site and attributes ride in one pamlib extension so the round trip loses nothing.

In: the instrument comes from the ``questionnaire`` URL (pamlib's own, a mapped foreign one, or
the one the caller names). Each answer's category comes, in this order, from the mapping's
answer codes, pamlib's own answer codes, an ``ordinalValue``/``itemWeight`` extension on the
answer, or the weight of the matching option in a Questionnaire supplied with the data. Every
problem is collected with its JSON path; a response with any problem is not used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from pamlib.assessment import Assessment, Mode
from pamlib.errors import Problem
from pamlib.fhir._patient import patient_identity, patient_resource, reference_identity
from pamlib.fhir._questionnaires import answer_coding, questionnaire_canonical
from pamlib.fhir.codes import (
    ANSWER_SYSTEM,
    ASSESSMENT_ID_SYSTEM,
    EXT_ASSESSMENT,
    NA_CODE,
    PATIENT_ID_SYSTEM,
    QUESTIONNAIRE_BASE,
    WEIGHT_EXTENSIONS,
)
from pamlib.fhir.mapping import FhirMapping, QuestionnaireMapping
from pamlib.identity import Patient
from pamlib.instruments import Instrument, InstrumentRegistry

_UNKNOWN_MODE = Mode.UNKNOWN.value
_MODES = frozenset(m.value for m in Mode)
#: pamlib's own answer codes and their column codes.
_PAMLIB_CODES: dict[str, int] = {str(c): c for c in range(1, 10)} | {NA_CODE: -1}
#: Statuses of a response whose answers may be scored.
USABLE_STATUSES = frozenset({"completed", "amended"})
#: A date, or a dateTime whose time is a possible one: hours 00-23, a leap second allowed,
#: zones -14:00 to +14:00 (FHIR R4's pattern). Seconds and the zone, which FHIR requires, may
#: be missing: only the date is read, and it is certain without them; a time that cannot be
#: (``T25:99``) says the value is wrong somewhere.
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:\.\d+)?)?"
    r"(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?)?\Z",
    re.ASCII,
)
_RELATIVE_PATIENT = re.compile(r"(?:.*/)?(Patient/[A-Za-z0-9\-.]{1,64})(?:/_history/.*)?\Z")


def _frozen(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class ResponseRow:
    """One assessment as the FHIR layer sees it: plain values, codes in item order. The repr
    shows neither identifier nor an attribute's value (attribute names only), as
    :class:`~pamlib.assessment.Assessment`'s does not.

    The meeting point of the object API (:class:`~pamlib.assessment.Assessment`) and the
    columnar one (:class:`~pamlib.formats.base.RecordBatch`).
    """

    instrument: Instrument = attrs.field(repr=lambda i: repr(i.id))
    assessment_id: str
    patient_id: str | None = attrs.field(repr=lambda v: "None" if v is None else "<redacted>")
    nhs_number: str | None = attrs.field(repr=lambda v: "None" if v is None else "<redacted>")
    assessed_on: dt.date
    codes: tuple[int, ...]
    site: str | None = None
    mode: str = Mode.UNKNOWN.value
    language: str | None = None
    #: Shown in the repr by name only: a pass-through value may be a name or a date of birth.
    attributes: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen, repr=lambda v: repr(sorted(v))
    )
    location: str = ""

    @classmethod
    def from_assessment(cls, assessment: Assessment) -> ResponseRow:
        return cls(
            instrument=assessment.instrument,
            assessment_id=assessment.id,
            patient_id=assessment.patient.id,
            nhs_number=assessment.patient.nhs_number,
            assessed_on=assessment.assessed_on,
            codes=tuple(int(c) for c in assessment.codes()),
            site=assessment.site,
            mode=str(assessment.mode),
            language=assessment.language,
            attributes=assessment.attributes,
        )

    def to_assessment(self) -> Assessment:
        """The :class:`~pamlib.assessment.Assessment` (raises ``ValidationError`` if invalid)."""
        responses = {
            item: code for item, code in zip(self.instrument.items, self.codes, strict=True) if code
        }
        return Assessment(
            id=self.assessment_id,
            patient=Patient(self.patient_id, nhs_number=self.nhs_number),
            instrument=self.instrument,
            assessed_on=self.assessed_on,
            responses=responses,
            mode=Mode(self.mode),
            language=self.language or "en",
            site=self.site,
            attributes=self.attributes,
        )


# -- out -------------------------------------------------------------------------------------


def _assessment_extension(row: ResponseRow) -> dict[str, Any] | None:
    parts: list[dict[str, Any]] = []
    if row.mode != Mode.UNKNOWN.value:
        parts.append({"url": "mode", "valueCode": row.mode})
    if row.site:
        parts.append({"url": "site", "valueString": row.site})
    for name, value in row.attributes.items():
        pair: list[dict[str, Any]] = [{"url": "name", "valueString": name}]
        if value:  # FHIR has no empty strings: an empty value is written as no value
            pair.append({"url": "value", "valueString": value})
        parts.append({"url": "attribute", "extension": pair})
    return {"url": EXT_ASSESSMENT, "extension": parts} if parts else None


def response_resource(
    row: ResponseRow,
    *,
    subject: Mapping[str, Any] | None,
    assessment_id_system: str = ASSESSMENT_ID_SYSTEM,
    resource_id: str | None = None,
    contained: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The QuestionnaireResponse for ``row`` with the given ``subject`` reference."""
    resource: dict[str, Any] = {"resourceType": "QuestionnaireResponse"}
    if resource_id is not None:
        resource["id"] = resource_id
    if row.language:
        resource["language"] = row.language
    contained = list(contained)
    if contained:
        resource["contained"] = contained
    extension = _assessment_extension(row)
    if extension is not None:
        resource["extension"] = [extension]
    resource["identifier"] = {"system": assessment_id_system, "value": row.assessment_id}
    resource["questionnaire"] = questionnaire_canonical(row.instrument)
    resource["status"] = "completed"
    if subject is not None:
        resource["subject"] = dict(subject)
    resource["authored"] = row.assessed_on.isoformat()
    items = [
        {"linkId": item_id, "answer": [{"valueCoding": answer_coding(code)}]}
        for item_id, code in zip(row.instrument.items, row.codes, strict=True)
        if code
    ]
    if items:
        resource["item"] = items
    return resource


def questionnaire_response(
    assessment: Assessment,
    *,
    assessment_id_system: str = ASSESSMENT_ID_SYSTEM,
    patient_id_system: str = PATIENT_ID_SYSTEM,
) -> dict[str, Any]:
    """A stand-alone QuestionnaireResponse: the patient is a contained resource.

    >>> import datetime as dt
    >>> from pamlib import Assessment, Patient
    >>> from pamlib.instruments import BUILTIN_INSTRUMENTS
    >>> a = Assessment("A1", Patient("P1"), BUILTIN_INSTRUMENTS[0], dt.date(2025, 3, 1),
    ...                {"pam13.01": 3, "pam13.02": -1})
    >>> qr = questionnaire_response(a)
    >>> qr["questionnaire"], qr["subject"], qr["authored"]
    ('https://pamlib.org/fhir/Questionnaire/PAM-13|1', {'reference': '#patient'}, '2025-03-01')
    >>> [(i["linkId"], i["answer"][0]["valueCoding"]["code"]) for i in qr["item"]]
    [('pam13.01', '3'), ('pam13.02', 'NA')]
    """
    row = ResponseRow.from_assessment(assessment)
    patient = patient_resource(
        row.patient_id, row.nhs_number, patient_id_system=patient_id_system, resource_id="patient"
    )
    return response_resource(
        row,
        subject={"reference": "#patient"},
        assessment_id_system=assessment_id_system,
        contained=[patient],
    )


# -- in --------------------------------------------------------------------------------------

CodingKey = tuple[str | None, str]


def _weight(element: Mapping[str, Any]) -> float | None:
    """The ``ordinalValue``/``itemWeight`` of a Coding or answer option, if it has one."""
    extensions = element.get("extension")
    if not isinstance(extensions, list):
        return None
    for ext in extensions:
        if isinstance(ext, Mapping) and ext.get("url") in WEIGHT_EXTENSIONS:
            value = ext.get("valueDecimal", ext.get("valueInteger"))
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    return float(value)
                except OverflowError:  # an integer too large for a float: no category
                    return math.inf
    return None


def weights_of_questionnaire(questionnaire: Mapping[str, Any]) -> dict[str, dict[CodingKey, float]]:
    """``{linkId: {(system, code): weight}}`` for every weighted answer option, nested included.

    The weight may sit on the option (R4) or on its ``valueCoding``.
    """
    out: dict[str, dict[CodingKey, float]] = {}

    def walk(items: object) -> None:
        if not isinstance(items, list):
            return
        for item in items:
            if not isinstance(item, Mapping):
                continue
            link_id = item.get("linkId")
            options = item.get("answerOption")
            if isinstance(link_id, str) and isinstance(options, list):
                weights = out.setdefault(link_id, {})
                for option in options:
                    if not isinstance(option, Mapping):
                        continue
                    coding = option.get("valueCoding")
                    if not isinstance(coding, Mapping) or not isinstance(coding.get("code"), str):
                        continue
                    if not isinstance(coding.get("system"), str | None):
                        continue
                    w = _weight(option)
                    if w is None:
                        w = _weight(coding)
                    if w is not None:
                        weights[(coding.get("system"), coding["code"])] = w
            walk(item.get("item"))

    walk(questionnaire.get("item"))
    return out


def _unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8. JSON may escape half a surrogate pair
    (``\\ud800``), which Python reads into a string that no file can hold."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _digest(value: object) -> str:
    """SHA-256 (hex) of a JSON value written in one canonical way."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@attrs.frozen
class AssessmentId:
    """A response's assessment id; ``where`` it was found (the response itself when the id is
    ``generated`` from its content)."""

    value: str
    where: str
    generated: bool = False


@attrs.frozen
class _Target:
    """How to read responses to one questionnaire (resolved once per canonical URL)."""

    instrument: Instrument
    columns: Mapping[str, int]
    ignore: frozenset[str] = frozenset()
    answers: Mapping[CodingKey, int] = attrs.field(factory=dict)
    weights: Mapping[str, Mapping[CodingKey, float]] = attrs.field(factory=dict)
    weight_offset: int = 0
    anonymous: bool = False


#: Resolves a subject reference to (patient id, NHS number, problems), or None if unknown.
SubjectResolver = Callable[[str], "tuple[str | None, str | None, list[Problem]] | None"]


def _split_canonical(value: str) -> tuple[str, str | None]:
    url, _, version = value.partition("|")
    return url, version or None


@attrs.define
class _Draft:
    """What one response has produced so far."""

    target: _Target
    codes: list[int]
    problems: list[Problem]
    seen: set[int] = attrs.field(factory=set)


class ResponseParser:
    """Turns QuestionnaireResponse dicts into :class:`ResponseRow` or a list of problems.

    ``instrument`` and ``link_ids`` apply to responses whose questionnaire is neither pamlib's
    nor in ``mapping`` (``link_ids`` maps a linkId to an item id; unmapped linkIds are taken as
    item ids). ``questionnaires`` supply answer weights by canonical URL.
    """

    def __init__(
        self,
        instruments: InstrumentRegistry,
        *,
        mapping: FhirMapping | None = None,
        instrument: str | None = None,
        link_ids: Mapping[str, str] | None = None,
        questionnaires: Iterable[Mapping[str, Any]] = (),
        resolve_subject: SubjectResolver | None = None,
        assessment_id_system: str = ASSESSMENT_ID_SYSTEM,
        patient_id_system: str = PATIENT_ID_SYSTEM,
    ) -> None:
        self.instruments = instruments
        self.mapping = mapping or FhirMapping()
        self.mapping.check(instruments)
        self.default_instrument = instruments.get(instrument) if instrument else None
        self.link_ids = dict(link_ids or {})
        self.resolve_subject = resolve_subject
        self.assessment_id_system = assessment_id_system
        self.patient_id_system = patient_id_system
        self._weights: dict[str, dict[str, dict[CodingKey, float]]] = {}
        self._targets: dict[str, _Target | Problem] = {}
        # NHS numbers already checked in this read (they repeat across a patient's responses).
        self._nhs_checked: dict[str, str | Problem] = {}
        self._dates: dict[str, dt.date] = {}
        self._final = True
        for q in questionnaires:
            self.add_questionnaire(q)

    def add_questionnaire(self, questionnaire: Mapping[str, Any]) -> None:
        """Make a Questionnaire's option weights available to responses that cite it."""
        url = questionnaire.get("url")
        if not isinstance(url, str):
            return
        weights = weights_of_questionnaire(questionnaire)
        self._weights[url] = weights
        version = questionnaire.get("version")
        if isinstance(version, str):
            self._weights[f"{url}|{version}"] = weights
        self._targets.clear()

    # -- questionnaire → instrument --------------------------------------------------------

    def _target(self, canonical: str | None, path: str) -> _Target | Problem:
        key = canonical or ""
        found = self._targets.get(key)
        if found is None:
            found = self._targets[key] = self._resolve(canonical, f"{path}.questionnaire")
        if isinstance(found, Problem):
            found = attrs.evolve(found, where=f"{path}.questionnaire")
        return found

    def _resolve(self, canonical: str | None, where: str) -> _Target | Problem:
        if canonical is None:
            if self.default_instrument is None:
                return Problem(where, "no-questionnaire", "the response names no questionnaire")
            return self._default_target(None)
        url, version = _split_canonical(canonical)
        weights = self._weights.get(canonical) or self._weights.get(url) or {}
        prefix = QUESTIONNAIRE_BASE + "/"
        if url.startswith(prefix) and url[len(prefix) :] in self.instruments:
            instrument = self.instruments.get(url[len(prefix) :])
            if version is not None and version != instrument.version:
                # the version asked for is the document's text: not repeated in the message
                message = (
                    f"the {instrument.id} version asked for is not the installed version "
                    f"{instrument.version}"
                )
                return Problem(where, "questionnaire-version", message)
            columns = {item: i for i, item in enumerate(instrument.items)}
            return _Target(instrument, columns, weights=weights)
        mapped = self.mapping.find(url, version)
        if mapped is not None:
            return self._mapped_target(mapped, weights)
        if self.default_instrument is not None:
            return self._default_target(weights)
        return Problem(
            where,
            "unknown-questionnaire",
            "the questionnaire is neither pamlib's nor in the mapping (pass a mapping, or name "
            "the instrument)",
        )

    def _default_target(self, weights: Mapping[str, Mapping[CodingKey, float]] | None) -> _Target:
        instrument = self.default_instrument
        assert instrument is not None  # noqa: S101 - callers check
        index = {item: i for i, item in enumerate(instrument.items)}
        columns = dict(index)
        for link_id, item_id in self.link_ids.items():
            if item_id in index:
                columns[link_id] = index[item_id]
        return _Target(instrument, columns, weights=weights or {})

    def _mapped_target(
        self, mapped: QuestionnaireMapping, weights: Mapping[str, Mapping[CodingKey, float]]
    ) -> _Target:
        instrument = self.instruments.get(mapped.instrument)
        index = {item: i for i, item in enumerate(instrument.items)}
        columns = {link_id: index[item_id] for link_id, item_id in mapped.items.items()}
        answers = {(mapped.answer_system, code): v for code, v in mapped.answers.items()}
        return _Target(
            instrument,
            columns,
            ignore=mapped.ignore,
            answers=answers,
            weights=weights,
            weight_offset=mapped.weight_offset,
            anonymous=mapped.missing_subject == "anonymous",
        )

    # -- one response ----------------------------------------------------------------------

    def parse(
        self,
        qr: Mapping[str, Any],
        path: str = "$",
        *,
        final: bool = True,
        assessment_id: str | None = None,
    ) -> ResponseRow | list[Problem]:
        """A row, or every problem found (each with its JSON path under ``path``).

        Not ``final``: a server reference (``Patient/123``) that does not resolve yet is
        reported as unresolved, because a later part of the input may hold the Patient.
        ``assessment_id``, when given, replaces the one :meth:`assessment_id` would find (a
        reader that tells repeats apart has already worked it out).
        """
        problems: list[Problem] = []
        self._final = final
        status = qr.get("status")
        if type(status) is not str or status not in USABLE_STATUSES:
            problems.append(
                Problem(
                    f"{path}.status",
                    "status",
                    "only completed or amended responses are scored, not " + _status_of(status),
                )
            )
        contained = self._contained(qr)
        canonical = qr.get("questionnaire")
        if isinstance(canonical, str) and canonical.startswith("#"):
            inner = contained.get(canonical[1:], (0, None))[1]
            if inner is not None and inner.get("resourceType") == "Questionnaire":
                self.add_questionnaire(inner)
                url, version = inner.get("url"), inner.get("version")
                canonical = (
                    (f"{url}|{version}" if isinstance(version, str) else url)
                    if isinstance(url, str)
                    else None
                )
            else:
                canonical = None
        elif canonical is not None and not isinstance(canonical, str):
            problems.append(Problem(f"{path}.questionnaire", "type", "expected a canonical URL"))
            canonical = None
        target = self._target(canonical, path)
        if isinstance(target, Problem):
            problems.append(target)
            return problems

        if assessment_id is None:
            assessment_id = self.assessment_id(qr, path).value
        draft = _Draft(target, [0] * target.instrument.n_items, problems)
        pid, nhs = self._subject(qr, path, contained, draft, assessment_id)
        assessed_on = self._date(qr, path, problems)
        self._items(qr.get("item"), f"{path}.item", draft)
        mode, site, attributes = self._assessment_extension(qr, path, problems)
        language = qr.get("language")
        if not isinstance(language, str):
            language = None
        if not (
            assessment_id.isascii()
            and (pid is None or pid.isascii())
            and (site is None or site.isascii())
            and (language is None or language.isascii())
            and not attributes
        ):  # the usual case: a few isascii(); anything else is checked for surrogates
            texts = {
                "the assessment id": assessment_id,
                "the patient id": pid or "",
                "the site": site or "",
                "the language": language or "",
                "an attribute": "".join([*attributes, *attributes.values()]),
            }
            for what, text in texts.items():
                if not _unicode(text):
                    message = f"{what} is not Unicode text (an unpaired surrogate escape)"
                    problems.append(Problem(path, "encoding", message))
        if problems:
            return problems
        assert assessed_on is not None  # noqa: S101 - a problem was recorded otherwise
        return ResponseRow(
            instrument=target.instrument,
            assessment_id=assessment_id,
            patient_id=pid,
            nhs_number=nhs,
            assessed_on=assessed_on,
            codes=tuple(draft.codes),
            site=site,
            mode=mode,
            language=language,
            attributes=attributes,
            location=path,
        )

    @staticmethod
    def _contained(resource: Mapping[str, Any]) -> dict[str, tuple[int, dict[str, Any] | None]]:
        """Contained resources by id, with their index; ``None`` for an id that more than one
        has (a reference to it could mean either, so it resolves to neither)."""
        contained = resource.get("contained")
        if type(contained) is not list:
            return {}
        found: dict[str, tuple[int, dict[str, Any] | None]] = {}
        for i, c in enumerate(contained):
            if type(c) is dict and type(c.get("id")) is str:
                found[c["id"]] = (i, None) if c["id"] in found else (i, c)
        return found

    def assessment_id(self, qr: Mapping[str, Any], path: str = "$") -> AssessmentId:
        """The response's assessment id and where it comes from.

        In order: the ``identifier`` (the one in the assessment id system, else the first with a
        value), the resource ``id``, else ``qr-`` and 16 hex digits of the SHA-256 of the
        response without ``subject`` and ``contained`` (``generated``).
        """
        identifier = qr.get("identifier")
        if type(identifier) is dict:  # R4: one identifier; the usual case
            value = identifier.get("value")
            if type(value) is str and value.strip():
                return AssessmentId(value, f"{path}.identifier.value")
        if isinstance(identifier, list):
            candidates: list[tuple[object, str]] = [
                (c, f"{path}.identifier[{k}].value") for k, c in enumerate(identifier)
            ]
        else:
            candidates = [(identifier, f"{path}.identifier.value")]
        values = [
            (c.get("system"), c["value"], where)
            for c, where in candidates
            if isinstance(c, Mapping) and isinstance(c.get("value"), str) and c["value"].strip()
        ]
        for system, value, where in values:
            if system == self.assessment_id_system:
                return AssessmentId(value, where)
        if values:
            return AssessmentId(values[0][1], values[0][2])
        rid = qr.get("id")
        if isinstance(rid, str) and rid.strip():
            return AssessmentId(rid, f"{path}.id")
        # Who it is about stays out of the hash: an id must not be derivable from an identifier.
        content = {k: v for k, v in qr.items() if k not in ("subject", "contained")}
        return AssessmentId(f"qr-{_digest(content)[:16]}", path, generated=True)

    def _subject(
        self,
        qr: Mapping[str, Any],
        path: str,
        contained: Mapping[str, tuple[int, dict[str, Any] | None]],
        draft: _Draft,
        assessment_id: str,
    ) -> tuple[str | None, str | None]:
        problems, target = draft.problems, draft.target
        where = f"{path}.subject"
        subject = qr.get("subject")
        if subject is None:
            if target.anonymous:
                return f"anonymous:{assessment_id}", None
            problems.append(Problem(where, "no-subject", "the response has no subject"))
            return None, None
        if not isinstance(subject, Mapping):
            problems.append(Problem(where, "type", "subject must be a Reference"))
            return None, None
        reference = subject.get("reference")
        if isinstance(reference, str):
            if reference.startswith("#"):
                index, patient = contained.get(reference[1:], (-1, None))
                if patient is None and index >= 0:
                    problems.append(
                        Problem(
                            f"{where}.reference",
                            "ambiguous-reference",
                            "more than one contained resource has this id",
                        )
                    )
                    return None, None
                if patient is None or patient.get("resourceType") != "Patient":
                    problems.append(
                        Problem(
                            f"{where}.reference",
                            "unresolved-reference",
                            "no contained Patient",
                        )
                    )
                    return None, None
                pid, nhs, found = patient_identity(
                    patient,
                    f"{path}.contained[{index}]",
                    patient_id_system=self.patient_id_system,
                    cache=self._nhs_checked,
                )
                problems.extend(found)
                return pid, nhs
            resolved = self.resolve_subject(reference) if self.resolve_subject else None
            if resolved is not None:
                pid, nhs, found = resolved
                # A problem of the reference itself (ambiguous) has no place of its own.
                problems.extend(
                    p if p.where else attrs.evolve(p, where=f"{where}.reference") for p in found
                )
                return pid, nhs
            match = _RELATIVE_PATIENT.match(reference)
            if match and self._final:
                return reference_identity(match.group(1))
            problems.append(
                Problem(
                    f"{where}.reference",
                    "unresolved-reference",
                    "the subject reference does not resolve to a Patient in this input",
                )
            )
            return None, None
        identifier = subject.get("identifier")
        if isinstance(identifier, Mapping):
            pid, nhs, found = patient_identity(
                {"identifier": [identifier]}, where, patient_id_system=self.patient_id_system
            )
            for p in found:
                problems.append(
                    attrs.evolve(p, where=p.where.replace(".identifier[0]", ".identifier"))
                )
            return pid, nhs
        problems.append(
            Problem(where, "no-subject", "the subject has neither a reference nor an identifier")
        )
        return None, None

    def _date(self, qr: Mapping[str, Any], path: str, problems: list[Problem]) -> dt.date | None:
        authored = qr.get("authored")
        if not isinstance(authored, str):
            problems.append(Problem(f"{path}.authored", "no-date", "the response has no date"))
            return None
        day = self._day(authored)
        if day is None:
            # The value is not quoted: a date beside a patient's answers may identify them.
            problems.append(Problem(f"{path}.authored", "date", _date_problem(authored)))
        return day

    def _day(self, authored: str) -> dt.date | None:
        """The calendar date ``authored`` starts with, or None when it is no full date, or its
        time is not a valid FHIR time: a time read past (``T25:99``) would date the
        assessment from a value that is wrong somewhere."""
        known = self._dates.get(authored)
        if known is not None:
            return known
        match = _DATE.match(authored)
        if match is None:
            return None
        try:
            day = dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
        if len(self._dates) < 100_000:  # many responses share a date (or a time stamp)
            self._dates[authored] = day
        return day

    def _items(self, items: object, where: str, draft: _Draft) -> None:
        # The hot path of reading. An answer in pamlib's own answer system is taken inline;
        # anything else goes through _item, and paths are formatted only for problems.
        if items is None:
            return
        if type(items) is not list:
            draft.problems.append(Problem(where, "type", "item must be a list"))
            return
        target = draft.target
        if target.answers:  # a mapping's answer codes: every item the careful way
            for i, item in enumerate(items):
                self._item(item, f"{where}[{i}]", draft)
            return
        columns, seen, codes = target.columns, draft.seen, draft.codes
        top = target.instrument.n_categories
        # Names bound once, and subscripts rather than get(): this loop runs for every answer of
        # every response. A missing key (KeyError) or an array or object where a string is
        # looked up (TypeError, unhashable) leaves the item to _item, which says what is wrong.
        pamlib_codes, answer_system, dict_, list_ = _PAMLIB_CODES, ANSWER_SYSTEM, dict, list
        for i, item in enumerate(items):
            try:
                if type(item) is dict_ and "item" not in item:
                    answers = item["answer"]
                    if type(answers) is list_ and len(answers) == 1:
                        answer = answers[0]
                        if type(answer) is dict_ and "item" not in answer:
                            coding = answer["valueCoding"]
                            if type(coding) is dict_ and coding["system"] == answer_system:
                                # Keys are strings: no other JSON value equals one.
                                code = pamlib_codes[coding["code"]]
                                column = columns[item["linkId"]]
                                if code <= top and column not in seen:
                                    seen.add(column)
                                    codes[column] = code
                                    continue
            except (KeyError, TypeError):
                pass
            self._item(item, f"{where}[{i}]", draft)

    def _item(self, item: object, here: str, draft: _Draft) -> None:
        """One item the fast path did not take: a group, a foreign answer, or a problem."""
        if type(item) is not dict:
            draft.problems.append(Problem(here, "type", "an item must be an object"))
            return
        link_id = item.get("linkId")
        if type(link_id) is not str:
            draft.problems.append(Problem(f"{here}.linkId", "required", "an item needs a linkId"))
            return
        answers = item.get("answer")
        # An empty list (or null) is no answer; any other value that is not a list (``{}``,
        # ``""``, ``0``, ``false`` too) is an answer of the wrong type, never silently none.
        if answers or (answers is not None and type(answers) is not list):
            self._answer(link_id, answers, here, draft)
            if type(answers) is list:
                for k, answer in enumerate(answers):
                    if type(answer) is dict and "item" in answer:
                        self._items(answer["item"], f"{here}.answer[{k}].item", draft)
        if "item" in item:
            self._items(item["item"], f"{here}.item", draft)

    def _answer(self, link_id: str, answers: object, here: str, draft: _Draft) -> None:
        target, problems = draft.target, draft.problems
        column = target.columns.get(link_id)
        if column is None:
            if link_id not in target.ignore:
                problems.append(
                    Problem(
                        f"{here}.linkId",
                        "unknown-item",
                        f"the linkId is not an item of {target.instrument.id} "
                        "and is not mapped or ignored",
                    )
                )
            return
        if column in draft.seen:
            # a linkId found among the instrument's or the mapping's, never a value of the
            # document's own: safe to name
            problems.append(Problem(here, "duplicate-item", f"item {link_id!r} is answered twice"))
            return
        draft.seen.add(column)
        if not isinstance(answers, list):
            problems.append(Problem(f"{here}.answer", "type", "answer must be a list"))
            return
        if len(answers) > 1:
            problems.append(
                Problem(f"{here}.answer", "multiple-answers", "a PAM item takes one answer")
            )
            return
        answer = answers[0]
        where = f"{here}.answer[0]"
        coding = answer.get("valueCoding") if isinstance(answer, dict) else None
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            problems.append(Problem(where, "answer-type", "expected a valueCoding with a code"))
            return
        if not isinstance(coding.get("system"), str | None):
            problems.append(Problem(f"{where}.valueCoding.system", "type", "expected a URI"))
            return
        code = self._code(coding, answer, link_id, target)
        if code is None:
            problems.append(
                Problem(
                    f"{where}.valueCoding",
                    "no-weight",
                    "the answer has no ordinalValue or itemWeight, and its code is not mapped",
                )
            )
        elif code == 0 or not -1 <= code <= target.instrument.n_categories:
            problems.append(
                Problem(
                    f"{where}.valueCoding",
                    "weight-out-of-range",
                    f"the answer's weight is not a category 1-{target.instrument.n_categories}",
                )
            )
        else:
            draft.codes[column] = code

    @staticmethod
    def _code(
        coding: Mapping[str, Any], answer: Mapping[str, Any], link_id: str, target: _Target
    ) -> int | None:
        """The column code of one answer; None if nothing gives it a weight; 0 if out of range."""
        system, code = coding.get("system"), coding["code"]
        if target.answers:
            mapped = target.answers.get((system, code), target.answers.get((None, code)))
            if mapped is not None:
                return mapped
        if system == ANSWER_SYSTEM:
            if code == NA_CODE:
                return -1
            # A long run of digits is out of range, and too long for int() past 4,300 digits.
            return int(code) if code.isdigit() and code.isascii() and len(code) <= 4 else 0
        weight = _weight(coding)
        if weight is None:
            weight = _weight(answer)
        if weight is None:
            options = target.weights.get(link_id)
            if options is not None:
                weight = options.get((system, code))
        if weight is None:
            return None
        weight += target.weight_offset
        return int(weight) if weight.is_integer() and weight >= 1 else 0

    @staticmethod
    def _assessment_extension(
        qr: Mapping[str, Any], path: str, problems: list[Problem]
    ) -> tuple[str, str | None, dict[str, str]]:
        mode, site = _UNKNOWN_MODE, None
        attributes: dict[str, str] = {}
        extensions = qr.get("extension")
        if type(extensions) is not list:
            return mode, site, attributes
        for e, ext in enumerate(extensions):
            if type(ext) is not dict or ext.get("url") != EXT_ASSESSMENT:
                continue
            parts = ext.get("extension")
            for p, part in enumerate(parts if type(parts) is list else []):
                url = part.get("url") if type(part) is dict else None
                if url == "site":
                    value = part.get("valueString")
                    if type(value) is str:
                        site = value
                elif url == "mode":
                    value = part.get("valueCode")
                    if type(value) is str and value in _MODES:
                        mode = value
                    else:
                        where = f"{path}.extension[{e}].extension[{p}]"
                        problems.append(Problem(where, "mode", "not a known administration mode"))
                elif url == "attribute":
                    inner = part.get("extension")
                    pair = {
                        x["url"]: x.get("valueString")
                        for x in (inner if type(inner) is list else [])
                        if type(x) is dict and type(x.get("url")) is str
                    }
                    name, value = pair.get("name"), pair.get("value")
                    if type(name) is str:
                        attributes[name] = value if type(value) is str else ""
                    else:
                        where = f"{path}.extension[{e}].extension[{p}]"
                        problems.append(Problem(where, "attribute", "an attribute needs a name"))
        return mode, site, attributes


def _date_problem(authored: str) -> str:
    """Why ``authored`` gives no date: no full date, or a time that is not a FHIR time."""
    match = _DATE.match(authored[:10])
    try:
        real = match is not None and dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        real = False
    if not real:
        return "authored must start with a full date YYYY-MM-DD"
    return "the time in authored is not a time of day (Thh:mm:ss, a zone Z or +hh:mm)"


#: The statuses FHIR R4 defines for a QuestionnaireResponse: named in messages as they are.
_FHIR_STATUSES = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})


def _status_of(status: object) -> str:
    """A status as a message names it: one FHIR defines by its code; any other text is the
    document's own (it could hold anything, an identifier included), so only its kind."""
    if not isinstance(status, str):
        return "a missing status"
    return repr(status) if status in _FHIR_STATUSES else "a status FHIR does not define"
