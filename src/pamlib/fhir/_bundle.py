"""Assessments and their results as a ``transaction`` or ``collection`` Bundle, or NDJSON.

Per assessment: the ``Patient`` (once per patient per output), the ``QuestionnaireResponse`` and
the Observations its result calls for (see :mod:`pamlib.fhir.observations`). In a Bundle every
reference is a ``urn:uuid:`` ``fullUrl`` inside it; in a transaction the Patient is a
conditional create on its NHS number (else its pseudonymous id) and the response a conditional
create on its assessment id, so sending the same file twice does not duplicate them. NDJSON
gives each resource an ``id`` and references ``Type/id`` between lines.

Resource UUIDs are version-5 UUIDs of ``Type/assessment-id`` in a *namespace*: give a fixed one
for reproducible output (keep it private to the site — with a published namespace anyone could
confirm a guessed assessment id); by default each output draws a random one. No UUID is ever
derived from an NHS number or a patient id: a patient's UUID comes from the first of their
assessments in the output.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import attrs

from pamlib.assessment import Assessment
from pamlib.errors import FormatError, Problem, ValidationError
from pamlib.fhir._patient import conditional_query, patient_resource
from pamlib.fhir._response import ResponseRow, response_resource
from pamlib.fhir.codes import ASSESSMENT_ID_SYSTEM, NHS_NUMBER_SYSTEM, PATIENT_ID_SYSTEM
from pamlib.fhir.observations import (
    level_observation,
    raw_total_observation,
    score_observation,
)
from pamlib.results import ScoreResult

#: ``transaction`` and ``collection`` make Bundle entries; ``ndjson`` makes bare resources.
OutputStyle = Literal["transaction", "collection", "ndjson"]
_STYLES: dict[str, OutputStyle] = {
    "transaction": "transaction",
    "collection": "collection",
    "ndjson": "ndjson",
}


#: What a FHIR string cannot hold: control codes but tab, line feed and carriage return (as
#: :func:`~pamlib.fhir.check` finds them), and half a surrogate pair, which UTF-8 cannot encode.
_NOT_FHIR_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
#: FHIR strings are at most 1 MiB (1,048,576 characters).
_MAX_STRING = 1 << 20
#: A FHIR ``code``: no leading, trailing or doubled whitespace.
_CODE = re.compile(r"[^\s]+(?: [^\s]+)*\Z")
#: Names that write NDJSON; read back line by line only under such a name.
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def _style(value: str) -> OutputStyle:
    style = _STYLES.get(value)
    if style is None:
        raise ValueError(f"bundle type must be one of {', '.join(_STYLES)}")
    return style


@attrs.frozen
class BundleSettings:
    """How FHIR output is made; every field has a default that is safe to use."""

    style: OutputStyle = attrs.field(default="transaction", converter=_style)
    #: Namespace of the resource UUIDs; ``None`` draws a random one per output. A secret of
    #: the site's (with it, a guessed assessment id can be confirmed): the repr hides it.
    namespace: uuid.UUID | None = attrs.field(
        default=None, repr=lambda v: "None" if v is None else "<hidden>"
    )
    #: Add SNOMED CT 962851000000103 to level Observations (UK systems).
    snomed_level: bool = False
    #: Write a ``raw-total`` Observation for results with raw totals but no 0–100 score.
    raw_totals: bool = True
    patient_id_system: str = PATIENT_ID_SYSTEM
    assessment_id_system: str = ASSESSMENT_ID_SYSTEM


class Assembler:
    """Turns rows and results into Bundle entries (or NDJSON resources), one row at a time.

    Remembers the patients it has written so each appears once per output. ``check_text``
    (what every file pamlib writes uses) refuses text that FHIR strings cannot hold; without
    it the entries keep any text, as Python data that pamlib reads back as it was.
    """

    def __init__(self, settings: BundleSettings | None = None, *, check_text: bool = False) -> None:
        self.settings = settings or BundleSettings()
        self.check_text = check_text
        self.namespace = self.settings.namespace or uuid.uuid4()
        self._patients: dict[tuple[str | None, str | None], str] = {}
        self._used: set[str] = set()

    def _uuid(self, kind: str, assessment_id: str) -> str:
        name = f"{kind}/{assessment_id}"
        value = str(uuid.uuid5(self.namespace, name))
        n = 1
        while value in self._used:  # a repeated assessment id still gets distinct resources
            n += 1
            value = str(uuid.uuid5(self.namespace, f"{name}#{n}"))
        self._used.add(value)
        return value

    def _ref(self, kind: str, uid: str) -> dict[str, str]:
        if self.settings.style == "ndjson":
            return {"reference": f"{kind}/{uid}"}
        return {"reference": f"urn:uuid:{uid}"}

    def _id(self, uid: str) -> str | None:
        """Resources carry their UUID as ``id`` except in a transaction (the server assigns)."""
        return None if self.settings.style == "transaction" else uid

    def _entry(
        self, resource: dict[str, Any], uid: str, if_none_exist: str | None = None
    ) -> dict[str, Any]:
        style = self.settings.style
        if style == "ndjson":
            return resource
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{uid}", "resource": resource}
        if style == "transaction":
            request = {"method": "POST", "url": resource["resourceType"]}
            if if_none_exist:
                request["ifNoneExist"] = if_none_exist
            entry["request"] = request
        return entry

    def entries(self, row: ResponseRow, result: ScoreResult | None = None) -> list[dict[str, Any]]:
        """Entries for one assessment: its Patient (first time only), response, Observations.

        A number of the result that is not finite (JSON has no ``NaN`` or ``Infinity``) and,
        with ``check_text``, text a FHIR string cannot hold (a control code, half a surrogate
        pair, more than 1 MiB, an empty attribute name) are a
        :class:`~pamlib.errors.FormatError` at the row's location naming the field, never the
        value: written, they would make a file that is not JSON, or that servers refuse.
        """
        s = self.settings
        problems = list(_row_problems(row)) if self.check_text else []
        if result is not None:
            problems.extend(_result_problems(result, row.location, self.check_text))
        if problems:
            raise FormatError("cannot write this assessment as FHIR", problems)
        out: list[dict[str, Any]] = []
        if not row.patient_id and not row.nhs_number:
            raise FormatError(
                "a FHIR Patient needs an identifier",
                [
                    Problem(
                        row.location,
                        "no-patient-identifier",
                        "this assessment has no patient_id, and its NHS number is written only "
                        "when asked for (pamlib score --keep-nhs-number)",
                    )
                ],
            )
        key = (row.patient_id, row.nhs_number)
        patient_uid = self._patients.get(key)
        if patient_uid is None:
            patient_uid = self._patients[key] = self._uuid("Patient", row.assessment_id)
            patient = patient_resource(
                row.patient_id,
                row.nhs_number,
                patient_id_system=s.patient_id_system,
                resource_id=self._id(patient_uid),
            )
            condition = (
                conditional_query(NHS_NUMBER_SYSTEM, row.nhs_number)
                if row.nhs_number
                else conditional_query(s.patient_id_system, str(row.patient_id))
            )
            out.append(self._entry(patient, patient_uid, condition))
        subject = self._ref("Patient", patient_uid)
        qr_uid = self._uuid("QuestionnaireResponse", row.assessment_id)
        qr = response_resource(
            row,
            subject=subject,
            assessment_id_system=s.assessment_id_system,
            resource_id=self._id(qr_uid),
        )
        out.append(
            self._entry(qr, qr_uid, conditional_query(s.assessment_id_system, row.assessment_id))
        )
        if result is None:
            return out
        response = self._ref("QuestionnaireResponse", qr_uid)
        effective = row.assessed_on.isoformat()
        score_uid = self._uuid("Observation/score", row.assessment_id)
        score = score_observation(
            result,
            subject=subject,
            response=response,
            effective=effective,
            resource_id=self._id(score_uid),
        )
        score_ref = None
        if score is not None:
            out.append(self._entry(score, score_uid))
            score_ref = self._ref("Observation", score_uid)
        if result.level is not None:
            level_uid = self._uuid("Observation/level", row.assessment_id)
            level = level_observation(
                result,
                subject=subject,
                response=response,
                score=score_ref,
                effective=effective,
                snomed=s.snomed_level,
                resource_id=self._id(level_uid),
            )
            if level is not None:
                out.append(self._entry(level, level_uid))
        if s.raw_totals and result.score is None:
            raw_uid = self._uuid("Observation/raw", row.assessment_id)
            raw = raw_total_observation(
                result,
                subject=subject,
                response=response,
                effective=effective,
                resource_id=self._id(raw_uid),
            )
            if raw is not None:
                out.append(self._entry(raw, raw_uid))
        return out


def _text_problem(where: str, field: str, value: str, *, empty: bool = False) -> Problem | None:
    """The problem with one text value of the output, if any; it names the field only."""
    if not value and empty:
        return Problem(where, "fhir-string", f"the {field} is empty (FHIR has no empty strings)")
    if _NOT_FHIR_TEXT.search(value):
        return Problem(
            where,
            "fhir-string",
            f"the {field} holds a control character or half a surrogate pair, which FHIR "
            "strings cannot",
        )
    if len(value) > _MAX_STRING:
        return Problem(where, "fhir-string", f"the {field} is longer than FHIR's 1 MiB limit")
    return None


def _row_problems(row: ResponseRow) -> Iterator[Problem]:
    where = row.location or "assessment"
    texts = [
        ("assessment id", row.assessment_id, True),
        ("patient id", row.patient_id or "", False),
        ("NHS number", row.nhs_number or "", False),
        ("site", row.site or "", False),
        ("language", row.language or "", False),
    ]
    texts += [("name of an attribute", name, True) for name in row.attributes]
    texts += [("value of an attribute", value, False) for value in row.attributes.values()]
    for field, value, needed in texts:
        problem = _text_problem(where, field, value, empty=needed)
        if problem is not None:
            yield problem
    if row.language and not _CODE.match(row.language):
        yield Problem(
            where, "fhir-code", "the language is not a FHIR code (spaces only single and inside)"
        )


def _result_problems(result: ScoreResult, where: str, check_text: bool) -> Iterator[Problem]:
    where = where or "result"
    texts = (
        ("provider", result.provider),
        ("provider version", result.provider_version),
        ("calibration id", result.calibration_id or ""),
        ("calibration hash", result.calibration_sha256 or ""),
        ("cut-point set", result.cutpoint_set or ""),
    )
    for field, value in texts if check_text else ():
        problem = _text_problem(where, field, value)
        if problem is not None:
            yield problem
    numbers = (
        ("score", result.score),
        ("score's standard error", result.score_se),
        ("theta", result.theta),
        ("theta's standard error", result.theta_se),
    )
    for field, number in numbers if result.scored else ():  # a result not scored writes none
        if number is not None and not math.isfinite(number):
            yield Problem(
                where, "not-finite", f"the {field} is not a finite number, which JSON cannot hold"
            )


def _entries(
    assessments: Iterable[Assessment],
    results: Iterable[ScoreResult],
    settings: BundleSettings,
    *,
    check_text: bool = False,
) -> list[dict[str, Any]]:
    """Every entry (or NDJSON resource), after checking the results match the assessments."""
    assessments = list(assessments)
    what = "NDJSON" if settings.style == "ndjson" else "a Bundle"
    problems: list[Problem] = []
    ids: set[str] = set()
    for i, a in enumerate(assessments):
        if a.id in ids:
            problems.append(Problem(f"assessments[{i}]", "duplicate-id", "assessment id repeated"))
        ids.add(a.id)
    by_id: dict[str, ScoreResult] = {}
    for i, r in enumerate(results):
        if r.assessment_id not in ids:
            problems.append(
                Problem(f"results[{i}]", "unknown-assessment", "no assessment with this id")
            )
        by_id[r.assessment_id] = r
    if problems:
        raise ValidationError(f"cannot make {what}", problems)
    assembler = Assembler(settings, check_text=check_text)
    return [
        entry
        for i, a in enumerate(assessments)
        for entry in assembler.entries(
            attrs.evolve(ResponseRow.from_assessment(a), location=f"assessments[{i}]"),
            by_id.get(a.id),
        )
    ]


def dumps(entry: Any) -> str:
    """One entry or resource as compact JSON: UTF-8 text as it is, and never ``NaN`` or
    ``Infinity``, which are not JSON (a ``ValueError``; :meth:`Assembler.entries` refuses such
    numbers first, with their row)."""
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def to_bundle(
    assessments: Iterable[Assessment],
    results: Iterable[ScoreResult] = (),
    *,
    bundle_type: Literal["transaction", "collection"] = "transaction",
    namespace: uuid.UUID | None = None,
    snomed_level: bool = False,
    raw_totals: bool = True,
    patient_id_system: str = PATIENT_ID_SYSTEM,
    assessment_id_system: str = ASSESSMENT_ID_SYSTEM,
) -> dict[str, Any]:
    """One Bundle with every assessment, its patient and the Observations of its result.

    ``results`` are matched to assessments by ``assessment_id``; a result for an assessment
    not given, a repeated assessment id, or a result's number that is not finite (JSON cannot
    hold it) is a :class:`~pamlib.errors.ValidationError`. Text is kept as given: the files
    :func:`write_fhir` writes are where text FHIR strings cannot hold is refused.
    """
    settings = BundleSettings(
        style=bundle_type,
        namespace=namespace,
        snomed_level=snomed_level,
        raw_totals=raw_totals,
        patient_id_system=patient_id_system,
        assessment_id_system=assessment_id_system,
    )
    entries = _entries(assessments, results, settings)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type}
    if entries:
        bundle["entry"] = entries
    return bundle


def write_fhir(
    target: str | os.PathLike[str] | IO[bytes],
    assessments: Iterable[Assessment],
    results: Iterable[ScoreResult] = (),
    *,
    settings: BundleSettings | None = None,
) -> int:
    """Write assessments and their results to ``target``; return the number of entries written.

    The counterpart of :func:`~pamlib.fhir.read_fhir`, with :func:`to_bundle`'s checks and
    ``settings.style`` choosing a ``transaction`` or ``collection`` Bundle or ``ndjson``;
    without ``settings``, a ``.ndjson``/``.jsonl`` name gets NDJSON and any other a
    transaction Bundle. :func:`~pamlib.fhir.read_fhir` reads a file by its name, so a style the
    name would not read back as (a Bundle in ``out.ndjson``, NDJSON in ``out.json``) is a
    :class:`~pamlib.errors.FormatError` before anything is written. A path appears only when
    complete (nothing is left under its name if writing fails); an open binary stream is
    written and left open; ``"-"`` is standard output.
    """
    from pamlib.formats.guard import AtomicTarget

    name = os.fspath(target) if isinstance(target, str | os.PathLike) and target != "-" else ""
    ndjson_name = name.lower().endswith(NDJSON_SUFFIXES)
    if settings is None:
        settings = BundleSettings(style="ndjson" if ndjson_name else "transaction")
    elif name and (settings.style == "ndjson") != ndjson_name:
        kind = "NDJSON" if settings.style == "ndjson" else "a Bundle"
        raise FormatError(
            "cannot write FHIR output",
            [
                Problem(
                    Path(name).name,
                    "fhir-style",
                    f"{kind} under this name would not read back: NDJSON is read line by line "
                    "only from a .ndjson or .jsonl name, and any other name as one JSON document",
                )
            ],
        )
    entries = _entries(assessments, results, settings, check_text=True)
    lines = [dumps(e) for e in entries]
    if settings.style == "ndjson":
        text = "".join(line + "\n" for line in lines)
    else:
        head = f'{{"resourceType":"Bundle","type":"{settings.style}"'
        text = head + (',"entry":[\n' + ",\n".join(lines) + "\n]}\n" if lines else "}\n")
    out = AtomicTarget(sys.stdout.buffer if target == "-" else target)
    try:
        out.stream.write(text.encode("utf-8"))
    except BaseException:
        out.discard()
        raise
    out.commit()
    return len(entries)
