"""Which columns may name a group in a report: never one that identifies a patient.

A report shows each group's value as a heading (HTML) and as ``groups[].group`` (JSON), so
grouping by a column publishes its values. A column is refused when

* its **name** is an identifier's: ``patient_id``, ``assessment_id``, ``nhs_number`` and the
  other names of :data:`IDENTIFIER_COLUMNS`, or a name holding one of the words of
  :data:`IDENTIFIER_WORDS` (``home_address``, ``year_of_birth``, ``patient_nhs``, …). Names are
  compared in lower case with spaces, dots and dashes read as ``_``; or
* its **values** behave like identifiers whatever the name: more than half of the groups hold
  a single patient, and at least :data:`MIN_SINGLETON_GROUPS` groups do (``--group-by ref``
  where ``ref`` is a pass-through hospital number).

Both checks apply whether or not the report is published: the HTML and JSON always show the
group names, and row-level data belongs only in the per-patient CSV, written on request.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

from pamlib.errors import ConfigurationError

#: Column names (normalised) that identify a person or an assessment.
IDENTIFIER_COLUMNS = frozenset(
    {
        "patient_id",
        "patientid",
        "patient_number",
        "patient_no",
        "patient_ref",
        "patient_name",
        "person_id",
        "subject_id",
        "local_patient_id",
        "assessment_id",
        "nhs_number",
        "nhs_no",
        "nhsnumber",
        "nhsno",
        "chi",
        "chi_number",
        "mrn",
        "hospital_number",
        "hospital_no",
        "hosp_no",
        "pas_number",
        "pas_id",
        "medical_record_number",
        "ni_number",
        "national_insurance_number",
        "ssn",
        "uprn",
        "name",
        "full_name",
        "fullname",
        "first_name",
        "firstname",
        "given_name",
        "middle_name",
        "last_name",
        "lastname",
        "family_name",
        "forename",
        "forenames",
        "surname",
        "initials",
        "dob",
        "date_of_birth",
        "birth_date",
        "birthdate",
        "birthday",
        "address",
        "street",
        "postcode",
        "post_code",
        "zip",
        "zip_code",
        "zipcode",
        "email",
        "phone",
        "telephone",
        "mobile",
    }
)
#: Words that make any column name an identifier's (``home_address``, ``year_of_birth``).
IDENTIFIER_WORDS = frozenset(
    {
        "nhs",
        "mrn",
        "dob",
        "birth",
        "address",
        "postcode",
        "email",
        "phone",
        "telephone",
        "mobile",
        "surname",
        "forename",
    }
)
#: Fewer groups of one patient than this never make a column look like an identifier.
MIN_SINGLETON_GROUPS = 5

_SEPARATORS = re.compile(r"[^0-9a-z]+")


class IdentifyingColumnError(ConfigurationError):
    """Grouping by this column would publish patient identifiers; the value is never quoted."""


def _normalise(name: str) -> str:
    return _SEPARATORS.sub("_", name.casefold()).strip("_")


def is_identifier_name(name: str) -> bool:
    """Whether a column of this name identifies a person or an assessment.

    >>> is_identifier_name("NHS Number"), is_identifier_name("date-of-birth")
    (True, True)
    >>> is_identifier_name("site"), is_identifier_name("practice_id")
    (False, False)
    """
    normalised = _normalise(name)
    return normalised in IDENTIFIER_COLUMNS or bool(
        IDENTIFIER_WORDS.intersection(normalised.split("_"))
    )


def check_name(name: str) -> None:
    """Raise :class:`IdentifyingColumnError` if ``name`` is an identifier column's."""
    if is_identifier_name(name):
        raise IdentifyingColumnError(
            f"cannot group by {name!r}: it identifies patients, and group names are shown in "
            "the report; group by a column such as site or instrument"
        )


def check_groups(
    name: str, group: NDArray[np.int64], n_groups: int, *, use: str = "group by"
) -> None:
    """Raise :class:`IdentifyingColumnError` when the values of column ``name`` (``group``
    holds each patient's value as an index into ``n_groups`` distinct values) mostly belong to
    one patient each. ``use`` says what the report would do with them."""
    sizes = np.bincount(group, minlength=n_groups)
    singletons = int((sizes == 1).sum())
    if singletons >= MIN_SINGLETON_GROUPS and 2 * singletons > n_groups:
        raise IdentifyingColumnError(
            f"cannot {use} {name!r}: {singletons} of its {n_groups} values belong to one "
            "patient each, so it looks like an identifier and the report would show its values"
        )
