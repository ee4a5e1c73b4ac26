"""``Patient`` resources: written with the NHS number and/or a pseudonymous id, read back.

The NHS number goes under ``https://fhir.nhs.uk/Id/nhs-number``; the pseudonymous id under a
configurable system (default :data:`~pamlib.fhir.codes.PATIENT_ID_SYSTEM`). Problems name the
JSON path of the identifier, never its value.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pamlib.errors import Problem, ValidationError
from pamlib.fhir.codes import NHS_NUMBER_SYSTEM, PATIENT_ID_SYSTEM
from pamlib.identity import normalise_nhs_number


def patient_resource(
    patient_id: str | None,
    nhs_number: str | None,
    *,
    patient_id_system: str = PATIENT_ID_SYSTEM,
    resource_id: str | None = None,
) -> dict[str, Any]:
    """A Patient carrying only identifiers (pamlib holds nothing else about a person)."""
    identifiers: list[dict[str, str]] = []
    if nhs_number:
        identifiers.append({"system": NHS_NUMBER_SYSTEM, "value": nhs_number})
    if patient_id:
        identifiers.append({"system": patient_id_system, "value": patient_id})
    resource: dict[str, Any] = {"resourceType": "Patient"}
    if resource_id is not None:
        resource["id"] = resource_id
    resource["identifier"] = identifiers
    return resource


def search_token(system: str, value: str) -> str:
    """``system|value`` for a FHIR token search, escaped and URL-encoded.

    >>> search_token("https://fhir.nhs.uk/Id/nhs-number", "9434765919")
    'https://fhir.nhs.uk/Id/nhs-number|9434765919'
    >>> search_token("https://x.test/id", "a|b c")
    'https://x.test/id|a%5C%7Cb%20c'
    """
    escaped = "".join("\\" + ch if ch in "\\|,$" else ch for ch in value)
    return f"{system}|{quote(escaped, safe='')}"


def conditional_query(system: str, value: str) -> str:
    """The ``ifNoneExist`` query that finds a resource by one identifier."""
    return f"identifier={search_token(system, value)}"


#: The modulus-11 weights of the first nine digits, and what their ASCII codes add to a sum.
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_ASCII_ZERO = ord("0") * sum(_WEIGHTS)


def _check_nhs(value: str) -> str | Problem:
    """The normalised NHS number, or the problem with it (which never holds the value)."""
    if len(value) == 10 and value.isdigit() and value.isascii():
        # The usual case, summed over the ASCII codes in C; anything else (separators, a wrong
        # check digit) goes the way that says what is wrong.
        digits = value.encode("ascii")
        check = 11 - (sum(map(operator.mul, digits, _WEIGHTS)) - _ASCII_ZERO) % 11
        if check % 11 == digits[9] - 48:
            return value
    try:
        return normalise_nhs_number(value)
    except ValidationError as exc:
        why = exc.problems[0].message if exc.problems else "not an NHS number"
        return Problem("", "nhs-number", why)


def reference_identity(reference: str) -> tuple[str | None, str | None]:
    """(patient id, NHS number) that a relative reference ``Patient/ID`` stands for: a logical
    id that is a valid NHS number (servers such as PDS use the number as the id) is the NHS
    number, written only on request like any other, never a patient id."""
    logical = reference.rpartition("/")[2]
    if len(logical) == 10 and isinstance(_check_nhs(logical), str):
        return None, logical
    return reference, None


def patient_identity(
    patient: Mapping[str, Any],
    path: str,
    *,
    patient_id_system: str = PATIENT_ID_SYSTEM,
    reference: str | None = None,
    cache: dict[str, str | Problem] | None = None,
) -> tuple[str | None, str | None, list[Problem]]:
    """(patient id, NHS number, problems) from a Patient resource found at ``path``.

    With neither identifier, a relative ``reference`` such as ``Patient/123`` (a server's own
    pseudonymous id) stands in for the patient id. ``cache`` remembers NHS numbers already
    checked, for the length of one read.
    """
    problems: list[Problem] = []
    pid: str | None = None
    nhs: str | None = None
    identifiers = patient.get("identifier", [])
    if not isinstance(identifiers, list):
        problems.append(Problem(f"{path}.identifier", "type", "identifier must be a list"))
        identifiers = []
    for k, ident in enumerate(identifiers):
        if not isinstance(ident, Mapping):
            continue
        system, value = ident.get("system"), ident.get("value")
        if not isinstance(value, str):
            continue
        if system == NHS_NUMBER_SYSTEM and nhs is None:
            checked = cache.get(value) if cache is not None else None
            if checked is None:
                checked = _check_nhs(value)
                if cache is not None:
                    cache[value] = checked
            if isinstance(checked, str):
                nhs = checked
            else:
                problems.append(
                    Problem(f"{path}.identifier[{k}].value", checked.code, checked.message)
                )
        elif system == patient_id_system and pid is None and value.strip():
            pid = value
    if pid is None and nhs is None and not problems:
        if reference is not None and reference.startswith("Patient/"):
            pid, nhs = reference_identity(reference)
        else:
            problems.append(
                Problem(
                    f"{path}.identifier",
                    "no-patient-identifier",
                    "the patient has neither an NHS number nor an id in the configured system",
                )
            )
    return pid, nhs, problems
