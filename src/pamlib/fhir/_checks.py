"""pamlib's own checks of FHIR R4 JSON — what structural model libraries leave out.

Model libraries check shapes and primitive formats; they accept any status string, do not
follow references, and know nothing of NHS numbers. :func:`check` adds, with a JSON path for
each problem:

- JSON rules of FHIR: no ``null``, no empty strings, objects or arrays, no control characters,
  ids of at most 64 letters, digits, ``-`` and ``.``; every extension has a ``url`` and either a
  value or nested extensions, not both;
- required codes from their value sets: Bundle ``type``, request ``method``, the ``status`` of
  QuestionnaireResponse, Observation and Questionnaire, Questionnaire item ``type``;
- Bundles: ``fullUrl``\\s unique, ``urn:uuid:`` ones valid UUIDs, every ``urn:uuid:`` reference
  resolving to an entry, a ``request`` exactly in transactions and batches;
- contained references (``#id``) resolving inside their resource;
- NHS numbers: ten digits with a valid modulus-11 check digit, wherever an identifier of the
  NHS number system is (a Patient's, a response's ``subject.identifier``, …);
- a response's or Observation's ``subject`` is a Reference (an object);
- dates and dateTimes as FHIR writes them, and real calendar dates;
- demonstration, unlicensed or raw-only Observations are never ``final``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from pamlib.errors import Problem
from pamlib.fhir.codes import NHS_NUMBER_SYSTEM, TAG_SYSTEM, UCUM
from pamlib.identity import is_valid_nhs_number

BUNDLE_TYPES = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
RESPONSE_STATUSES = frozenset(
    {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
)
OBSERVATION_STATUSES = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
PUBLICATION_STATUSES = frozenset({"draft", "active", "retired", "unknown"})
ITEM_TYPES = frozenset(
    {
        "group",
        "display",
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "url",
        "choice",
        "open-choice",
        "attachment",
        "reference",
        "quantity",
    }
)

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
_NAME = re.compile(r"[A-Z][A-Za-z0-9_]{0,254}\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_YEAR = r"\d{4}"
# ASCII: \d would also take other scripts' digits, which FHIR's patterns do not
_DATE = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?\Z", re.ASCII)
_DATETIME = re.compile(
    rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?\Z",
    re.ASCII,
)
_VALUE = re.compile(r"value[A-Z]")


def _is_value_key(key: str) -> bool:
    return _VALUE.match(key) is not None


def _real_date(text: str) -> bool:
    if len(text) < 10:
        return True  # a partial date (year or year-month) is a valid FHIR date
    try:
        dt.date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def check(data: Mapping[str, Any], path: str = "$") -> list[Problem]:
    """Every problem pamlib finds in a resource or Bundle (empty when it is sound).

    >>> nhs = {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765910"}
    >>> [str(p) for p in check({"resourceType": "Patient", "identifier": [nhs]})]
    ["the NHS number's check digit is wrong (modulus 11) @ $.identifier[0].value"]
    """
    problems: list[Problem] = []
    _json_rules(data, path, problems)
    _resource(data, path, problems)
    return problems


# -- generic JSON rules ---------------------------------------------------------------------


# A path is built only when there is a problem to report: ``where`` is a chain of
# (parent, step) pairs, turned into ``$.entry[0].resource…`` by :func:`_render`.
_Where = tuple[object, str] | str


def _render(where: _Where) -> str:
    steps: list[str] = []
    node: object = where
    while isinstance(node, tuple):
        node, step = node
        steps.append(step)
    return str(node) + "".join(reversed(steps))


def _json_rules(value: object, where: _Where, problems: list[Problem]) -> None:
    kind = type(value)
    if kind is str:
        assert isinstance(value, str)  # noqa: S101 - for the type checker
        if not value:
            problems.append(Problem(_render(where), "empty", "FHIR JSON has no empty strings"))
        elif _CONTROL.search(value):
            problems.append(
                Problem(_render(where), "control-character", "strings hold no control codes")
            )
    elif kind is dict:
        assert isinstance(value, dict)  # noqa: S101 - for the type checker
        if not value:
            problems.append(Problem(_render(where), "empty", "FHIR JSON has no empty objects"))
        for key, item in value.items():
            if type(item) is str and item and not _CONTROL.search(item):
                continue  # the common case, without a call
            _json_rules(item, (where, f".{key}"), problems)
        extensions = value.get("extension")
        if type(extensions) is list:
            for i, ext in enumerate(extensions):
                _extension(ext, ((where, ".extension"), f"[{i}]"), problems)
    elif kind is list:
        assert isinstance(value, list)  # noqa: S101
        if not value:
            problems.append(Problem(_render(where), "empty", "FHIR JSON has no empty arrays"))
        for i, item in enumerate(value):
            _json_rules(item, (where, f"[{i}]"), problems)
    elif value is None:
        problems.append(Problem(_render(where), "null", "FHIR JSON has no null values"))
    elif kind in (bool, int, float):
        return
    elif isinstance(value, Mapping):
        _json_rules(dict(value), where, problems)
    else:
        problems.append(Problem(_render(where), "type", "not a JSON value"))


def _extension(ext: object, where: _Where, problems: list[Problem]) -> None:
    if not isinstance(ext, Mapping):
        problems.append(Problem(_render(where), "type", "an extension is an object"))
        return
    if not isinstance(ext.get("url"), str):
        problems.append(Problem(f"{_render(where)}.url", "required", "an extension needs a url"))
    values = [k for k in ext if _is_value_key(k)]
    nested = "extension" in ext
    if len(values) > 1:
        problems.append(Problem(_render(where), "ext-1", "an extension has at most one value[x]"))
    if bool(values) == nested:
        problems.append(
            Problem(_render(where), "ext-1", "an extension has either a value or nested extensions")
        )


# -- resources -------------------------------------------------------------------------------


def _code(
    resource: Mapping[str, Any],
    key: str,
    allowed: frozenset[str],
    path: str,
    problems: list[Problem],
) -> None:
    value = resource.get(key)
    if value is None:
        problems.append(Problem(f"{path}.{key}", "required", f"{key} is required"))
    elif value not in allowed:
        problems.append(Problem(f"{path}.{key}", "code", f"{key} is not a code of its value set"))


def _datetime(
    value: object, path: str, problems: list[Problem], *, date_only: bool = False
) -> None:
    if value is None:
        return
    pattern = _DATE if date_only else _DATETIME
    if not isinstance(value, str) or not pattern.match(value) or not _real_date(value):
        kind = "date" if date_only else "dateTime"
        problems.append(Problem(path, "date", f"not a FHIR {kind}"))


def _resource(resource: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        problems.append(Problem(f"{path}.resourceType", "required", "resourceType is required"))
        return
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not _ID.match(rid)):
        problems.append(Problem(f"{path}.id", "id", "an id is 1-64 letters, digits, '-' or '.'"))
    contained = resource.get("contained", [])
    contained_ids = set()
    if isinstance(contained, list):
        for i, inner in enumerate(contained):
            if isinstance(inner, Mapping):
                _resource(inner, f"{path}.contained[{i}]", problems)
                if isinstance(inner.get("id"), str):
                    contained_ids.add(inner["id"])
    for where, ref in _references(resource, path, skip_contained=True):
        if ref.startswith("#") and ref[1:] not in contained_ids:
            problems.append(Problem(where, "unresolved-reference", "no contained resource"))
    for where, identifier in _identifiers(resource, path):
        _nhs_number(identifier.get("value"), f"{where}.value", problems)
    subject = resource.get("subject")
    as_object = subject is None or isinstance(subject, Mapping)
    if kind in ("QuestionnaireResponse", "Observation") and not as_object:
        problems.append(
            Problem(f"{path}.subject", "reference", "subject is a Reference (an object)")
        )
    check_kind = _CHECKS.get(kind)
    if check_kind is not None:
        check_kind(resource, path, problems)


def _identifiers(value: object, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, identifier) of every identifier of the NHS number system in a resource, its
    contained resources and a Bundle's entries aside (they are checked as resources)."""
    if isinstance(value, Mapping):
        if value.get("system") == NHS_NUMBER_SYSTEM and "value" in value:
            yield path, value
        for key, item in value.items():
            if key not in ("contained", "entry") and isinstance(item, Mapping | list):
                yield from _identifiers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, Mapping | list):
                yield from _identifiers(item, f"{path}[{i}]")


def _nhs_number(value: object, where: str, problems: list[Problem]) -> None:
    if not isinstance(value, str) or len(value) != 10 or not value.isdigit():
        problems.append(Problem(where, "nhs-number", "an NHS number is exactly 10 digits"))
    elif not is_valid_nhs_number(value):
        problems.append(
            Problem(where, "nhs-number", "the NHS number's check digit is wrong (modulus 11)")
        )


def _references(
    value: object, where: _Where, *, skip_contained: bool = False
) -> Iterator[tuple[str, str]]:
    """(path, reference) of every ``Reference.reference`` under ``value``."""
    if type(value) is dict:
        assert isinstance(value, dict)  # noqa: S101 - for the type checker
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                if key == "reference":
                    yield _render((where, ".reference")), item
            elif kind is dict or kind is list:
                if skip_contained and key in ("contained", "entry"):
                    continue
                yield from _references(item, (where, f".{key}"))
    elif type(value) is list:
        assert isinstance(value, list)  # noqa: S101
        for i, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                yield from _references(item, (where, f"[{i}]"))


def _bundle(bundle: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    _code(bundle, "type", BUNDLE_TYPES, path, problems)
    kind = bundle.get("type")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        problems.append(Problem(f"{path}.entry", "type", "entry must be a list"))
        return
    full_urls: dict[str, str] = {}
    for i, entry in enumerate(entries):
        here = f"{path}.entry[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(Problem(here, "type", "an entry is an object"))
            continue
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            if full_url in full_urls:
                problems.append(Problem(f"{here}.fullUrl", "duplicate", "fullUrl used twice"))
            full_urls[full_url] = here
            if full_url.startswith("urn:uuid:"):
                try:
                    uuid.UUID(full_url[9:])
                except ValueError:
                    problems.append(Problem(f"{here}.fullUrl", "uuid", "not a valid urn:uuid"))
        request = entry.get("request")
        if kind in ("transaction", "batch"):
            if not isinstance(request, Mapping):
                problems.append(Problem(f"{here}.request", "required", f"a {kind} needs requests"))
            else:
                _code(request, "method", HTTP_METHODS, f"{here}.request", problems)
                if not isinstance(request.get("url"), str):
                    problems.append(Problem(f"{here}.request.url", "required", "url is required"))
                if "ifNoneExist" in request and request.get("method") != "POST":
                    problems.append(
                        Problem(f"{here}.request.ifNoneExist", "conditional", "only for POST")
                    )
        elif request is not None:
            problems.append(
                Problem(f"{here}.request", "bdl-3", "request only in transactions and batches")
            )
        resource = entry.get("resource")
        if isinstance(resource, Mapping):
            _resource(resource, f"{here}.resource", problems)
    for i, entry in enumerate(entries):
        if isinstance(entry, Mapping):
            problems.extend(check_reference_targets(entry, f"{path}.entry[{i}]", full_urls))


def check_reference_targets(
    entry: Mapping[str, Any], path: str, full_urls: Mapping[str, str]
) -> list[Problem]:
    """Problems for ``urn:uuid:`` references under ``entry`` that match no ``fullUrl``."""
    return [
        Problem(where, "unresolved-reference", "no entry in the Bundle has this fullUrl")
        for where, ref in _references(entry.get("resource"), f"{path}.resource")
        if ref.startswith("urn:uuid:") and ref not in full_urls
    ]


def _response(qr: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    _code(qr, "status", RESPONSE_STATUSES, path, problems)
    _datetime(qr.get("authored"), f"{path}.authored", problems)
    identifier = qr.get("identifier")
    if identifier is not None and not isinstance(identifier, Mapping):
        problems.append(Problem(f"{path}.identifier", "cardinality", "R4 allows one identifier"))
    _response_items(qr.get("item"), f"{path}.item", problems)


def _response_items(items: object, path: str, problems: list[Problem]) -> None:
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            continue
        if not isinstance(item.get("linkId"), str):
            problems.append(Problem(f"{here}.linkId", "required", "an item needs a linkId"))
        answers = item.get("answer")
        if isinstance(answers, list):
            for k, answer in enumerate(answers):
                if not isinstance(answer, Mapping):
                    continue
                values = [key for key in answer if _is_value_key(key)]
                if len(values) > 1:
                    problems.append(
                        Problem(f"{here}.answer[{k}]", "value", "an answer has one value[x]")
                    )
                if "item" in answer and "item" in item:
                    problems.append(
                        Problem(here, "qrs-1", "nested items under both the item and an answer")
                    )
                _response_items(answer.get("item"), f"{here}.answer[{k}].item", problems)
        _response_items(item.get("item"), f"{here}.item", problems)


def _observation(obs: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    _code(obs, "status", OBSERVATION_STATUSES, path, problems)
    if not isinstance(obs.get("code"), Mapping):
        problems.append(Problem(f"{path}.code", "required", "an Observation needs a code"))
    _datetime(obs.get("effectiveDateTime"), f"{path}.effectiveDateTime", problems)
    values = [key for key in obs if _is_value_key(key)]
    if len(values) > 1:
        problems.append(Problem(path, "value", "an Observation has at most one value[x]"))
    if values and "dataAbsentReason" in obs:
        problems.append(Problem(path, "obs-6", "dataAbsentReason only when there is no value"))
    quantity = obs.get("valueQuantity")
    if isinstance(quantity, Mapping) and "code" in quantity and quantity.get("system") != UCUM:
        problems.append(Problem(f"{path}.valueQuantity.system", "ucum", "a unit code needs UCUM"))
    meta = obs.get("meta")
    tags = meta.get("tag", []) if isinstance(meta, Mapping) else []
    unlicensed = any(
        isinstance(t, Mapping)
        and t.get("system") == TAG_SYSTEM
        and t.get("code") in ("demo", "unlicensed", "raw-only")
        for t in (tags if isinstance(tags, list) else [])
    )
    if unlicensed and obs.get("status") == "final":
        problems.append(
            Problem(
                f"{path}.status",
                "demo-final",
                "a demonstration, unlicensed or raw-only result is never final",
            )
        )


def _questionnaire(q: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    _code(q, "status", PUBLICATION_STATUSES, path, problems)
    name = q.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        problems.append(Problem(f"{path}.name", "que-0", "name must be machine-friendly"))
    seen: set[str] = set()
    _questionnaire_items(q.get("item"), f"{path}.item", seen, problems)


def _questionnaire_items(items: object, path: str, seen: set[str], problems: list[Problem]) -> None:
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            continue
        link_id = item.get("linkId")
        if not isinstance(link_id, str):
            problems.append(Problem(f"{here}.linkId", "required", "an item needs a linkId"))
        elif link_id in seen:
            problems.append(Problem(f"{here}.linkId", "que-2", "linkIds must be unique"))
        else:
            seen.add(link_id)
        _code(item, "type", ITEM_TYPES, here, problems)
        options = item.get("answerOption")
        if options is not None:
            if item.get("type") not in ("choice", "open-choice"):
                problems.append(
                    Problem(f"{here}.answerOption", "que-5", "options only on choice items")
                )
            if isinstance(options, list):
                for k, option in enumerate(options):
                    if isinstance(option, Mapping):
                        n = sum(1 for key in option if _is_value_key(key))
                        if n != 1:
                            problems.append(
                                Problem(f"{here}.answerOption[{k}]", "value", "one value[x]")
                            )
        _questionnaire_items(item.get("item"), f"{here}.item", seen, problems)


_CHECKS = {
    "Bundle": _bundle,
    "QuestionnaireResponse": _response,
    "Observation": _observation,
    "Questionnaire": _questionnaire,
}
