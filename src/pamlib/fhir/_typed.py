"""The usual QuestionnaireResponse, decoded by msgspec straight into typed structures.

Most NDJSON lines are responses of one well-formed shape: pamlib's own answer codes, a contained
Patient or a reference to one, an identifier. msgspec checks that shape in C while it parses
(every field of the expected JSON type, no unknown field), so such a line costs no dictionaries,
no walk for the nesting check and no per-field type tests in Python. :func:`response_row` then
gives the row the dictionary path (:meth:`~pamlib.fhir._response.ResponseParser.parse`) would
give, or ``None`` whenever that path would find any problem or do anything this one does not —
a line that does not decode, a foreign answer code, an unresolved subject, a repeated id. The
reader then reads the line the usual way, which locates every problem: a response is a row by
either way or by neither, with the same values (a property test holds the two together).

Every structure is flat (no field nests a structure of its own kind), so a value that decodes
nests a few levels at most and needs no depth check. msgspec refuses what the standard library
reads differently (half a surrogate pair, ``NaN``, integers too large), so every string here is
Unicode text. Imported only when msgspec is installed, and only by the reader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Set
from typing import Literal

import msgspec

from pamlib.errors import Problem
from pamlib.fhir._patient import _check_nhs
from pamlib.fhir._response import (
    _MODES,
    _PAMLIB_CODES,
    _UNKNOWN_MODE,
    USABLE_STATUSES,
    ResponseParser,
    ResponseRow,
    _Target,
)
from pamlib.fhir.codes import EXT_ASSESSMENT, NHS_NUMBER_SYSTEM


class _Shape(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Base of the structures: an unknown field means the line is not of the usual shape."""


class _Identifier(_Shape):
    system: str | None = None
    value: str | None = None


class _Contained(_Shape):
    resourceType: str  # noqa: N815 - FHIR's names
    id: str | None = None
    identifier: list[_Identifier] | None = None


class _Weight(_Shape):
    # A weight extension on one of pamlib's own codes (ignored: the code gives the category).
    url: str
    valueDecimal: int | float | None = None  # noqa: N815
    valueInteger: int | None = None  # noqa: N815


#: pamlib's own answer codes: a Coding of the usual shape has one of them, in pamlib's system
#: (both spelled out for msgspec; a test holds them to pamlib.fhir.codes).
_OwnCode = Literal["1", "2", "3", "4", "5", "6", "7", "8", "9", "NA"]


class _Coding(_Shape):
    system: Literal["https://pamlib.org/fhir/CodeSystem/agreement"]
    code: _OwnCode
    display: str | None = None
    version: str | None = None
    userSelected: bool | None = None  # noqa: N815
    extension: list[_Weight] | None = None


class _Answer(_Shape):
    valueCoding: _Coding  # noqa: N815


class _Item(_Shape):
    linkId: str  # noqa: N815
    answer: list[_Answer] | None = None
    text: str | None = None
    definition: str | None = None


class _Reference(_Shape):
    reference: str
    display: str | None = None


class _Attribute(_Shape):
    url: str
    valueString: str | None = None  # noqa: N815


class _Part(_Shape):
    url: str
    valueString: str | None = None  # noqa: N815
    valueCode: str | None = None  # noqa: N815
    extension: list[_Attribute] | None = None


class _Extension(_Shape):
    url: str
    extension: list[_Part] | None = None


class _Meta(_Shape):
    versionId: str | None = None  # noqa: N815
    lastUpdated: str | None = None  # noqa: N815
    source: str | None = None
    profile: list[str] | None = None


class _Narrative(_Shape):
    status: str
    div: str


class _Response(_Shape):
    resourceType: str  # noqa: N815
    id: str | None = None
    meta: _Meta | None = None
    text: _Narrative | None = None
    language: str | None = None
    contained: list[_Contained] | None = None
    extension: list[_Extension] | None = None
    identifier: _Identifier | None = None
    questionnaire: str | None = None
    status: str | None = None
    subject: _Reference | None = None
    authored: str | None = None
    item: list[_Item] | None = None


class _Entry(msgspec.Struct, gc=False):
    """A Bundle's entry: its resource left as JSON text, decoded as its kind needs."""

    resource: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    fullUrl: object = None  # noqa: N815 - any JSON value, as the dictionary path reads it


class Bundle(msgspec.Struct, gc=False):
    """A Bundle whose entries are objects (any other field is skipped unread)."""

    resourceType: object = None  # noqa: N815
    entry: list[_Entry] | msgspec.UnsetType = msgspec.UNSET
    link: object = None


class _Kind(msgspec.Struct, gc=False):
    resourceType: object = None  # noqa: N815


_decode: Callable[[bytes], _Response] = msgspec.json.Decoder(_Response).decode
_decode_bundle: Callable[[bytes], Bundle] = msgspec.json.Decoder(Bundle).decode
_decode_kind: Callable[[bytes], _Kind] = msgspec.json.Decoder(_Kind).decode
_NOT_USUAL = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)

Resolve = Callable[[str], "tuple[str | None, str | None, list[Problem]] | None"]


def decode(data: bytes) -> _Response | None:
    """The line as a response of the usual shape, or ``None``."""
    try:
        qr = _decode(data)
    except _NOT_USUAL:
        return None
    return qr if qr.resourceType == "QuestionnaireResponse" else None


def decode_bundle(data: bytes) -> Bundle | None:
    """The JSON text ``data`` as a Bundle whose entries' resources are left undecoded, or
    ``None`` for any other value or shape. The skipped text is checked as JSON but not as
    UTF-8, nor are its numbers read: the caller checks the one and decodes what it uses."""
    try:
        bundle = _decode_bundle(data)
    except _NOT_USUAL:
        return None
    return bundle if bundle.resourceType == "Bundle" else None


def resource_kind(data: bytes) -> object:
    """The ``resourceType`` of the JSON object ``data`` (``None`` without one); ``NOT_OBJECT``
    for JSON text that is not an object."""
    try:
        return _decode_kind(data).resourceType
    except _NOT_USUAL:
        return NOT_OBJECT


#: What :func:`resource_kind` gives for what is not an object.
NOT_OBJECT = object()
#: A field the JSON text did not have.
UNSET = msgspec.UNSET


def response_row(
    parser: ResponseParser,
    qr: _Response,
    path: str,
    resolve: Resolve,
    seen: Set[str],
) -> ResponseRow | None:
    """The row of ``qr`` found at ``path``, or ``None`` for the dictionary path to read.

    ``resolve`` finds a referenced Patient (the reader's index); ``seen`` holds the assessment
    ids read so far (a repeat is left to the reader, which rejects it).
    """
    if qr.status not in USABLE_STATUSES:
        return None
    canonical = qr.questionnaire
    if canonical is not None and canonical.startswith("#"):
        return None  # a contained Questionnaire: added to the parser by the dictionary path
    target = parser._target(canonical, path)
    if type(target) is not _Target or target.answers:
        return None
    identifier = qr.identifier
    assessment_id = identifier.value if identifier is not None else None
    if assessment_id is None or not assessment_id.strip():
        assessment_id = qr.id
        if assessment_id is None or not assessment_id.strip():
            return None  # an id made from the content
    if assessment_id in seen:
        return None
    pid: str | None
    nhs: str | None = None
    subject = qr.subject
    if subject is None:
        if not target.anonymous:
            return None
        pid = f"anonymous:{assessment_id}"
    elif subject.reference.startswith("#"):
        found = _contained_identity(parser, qr, subject.reference[1:])
        if found is None:
            return None
        pid, nhs = found
    else:
        resolved = resolve(subject.reference)
        if resolved is None or resolved[2]:
            return None
        pid, nhs = resolved[0], resolved[1]
    authored = qr.authored
    if authored is None:
        return None
    day: dt.date | None = parser._dates.get(authored) or parser._day(authored)
    if day is None:
        return None
    codes = _codes(target, qr.item)
    if codes is None:
        return None
    mode, site = _UNKNOWN_MODE, None
    attributes: dict[str, str] = {}
    for ext in qr.extension or ():
        if ext.url != EXT_ASSESSMENT:
            continue
        for part in ext.extension or ():
            url = part.url
            if url == "site":
                if part.valueString is not None:
                    site = part.valueString
            elif url == "mode":
                if part.valueCode is None or part.valueCode not in _MODES:
                    return None
                mode = part.valueCode
            elif url == "attribute":
                pair = {x.url: x.valueString for x in part.extension or ()}
                name, value = pair.get("name"), pair.get("value")
                if name is None:
                    return None
                attributes[name] = "" if value is None else value
    return ResponseRow(
        instrument=target.instrument,
        assessment_id=assessment_id,
        patient_id=pid,
        nhs_number=nhs,
        assessed_on=day,
        codes=codes,
        site=site,
        mode=mode,
        language=qr.language,
        attributes=attributes,
        location=path,
    )


def _codes(target: _Target, items: list[_Item] | None) -> tuple[int, ...] | None:
    """The column codes of ``items``, or ``None`` if any answers an item that is not the
    instrument's, or one already answered, or is out of range, or has several answers. An item
    without an answer is left out, as the dictionary path leaves it. (A plain loop: ``map`` over
    the fields, tried, was twice as slow for thirteen items.)"""
    codes = [0] * target.instrument.n_items
    if items is None:
        return tuple(codes)
    columns, top, own = target.columns, target.instrument.n_categories, _PAMLIB_CODES
    for item in items:
        answers = item.answer
        if answers:
            if len(answers) != 1:
                return None
            code = own[answers[0].valueCoding.code]  # one of pamlib's codes (decoding checked)
            column = columns.get(item.linkId)
            # Every code is non-zero: a column already set was answered before.
            if column is None or code > top or codes[column]:
                return None
            codes[column] = code
    return tuple(codes)


def _contained_identity(
    parser: ResponseParser, qr: _Response, rid: str
) -> tuple[str | None, str | None] | None:
    """(patient id, NHS number) of the contained Patient ``rid``, or ``None`` when it is
    missing, more than one has that id, or it has any problem."""
    patient = None
    for inner in qr.contained or ():
        if inner.id == rid:
            if patient is not None:
                return None  # which of them is meant: the dictionary path reports it
            patient = inner
    if patient is None or patient.resourceType != "Patient" or patient.identifier is None:
        return None
    pid: str | None = None
    nhs: str | None = None
    cache, pid_system = parser._nhs_checked, parser.patient_id_system
    for ident in patient.identifier:
        value = ident.value
        if value is None:
            continue
        system = ident.system
        if system == NHS_NUMBER_SYSTEM and nhs is None:
            checked = cache.get(value)
            if checked is None:
                checked = cache[value] = _check_nhs(value)
            if type(checked) is not str:
                return None
            nhs = checked
        elif system == pid_system and pid is None and value.strip():
            pid = value
    if pid is None and nhs is None:
        return None
    return pid, nhs
