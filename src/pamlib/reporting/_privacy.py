"""Which columns may name a group in a report: never one that identifies a patient.

A report shows each group's value as a heading (HTML) and as ``groups[].group`` (JSON), so
grouping by a column publishes its values. A column is refused when

* its **name** is an identifier's: ``patient_id``, ``assessment_id``, ``nhs_number`` and the
  other names of :data:`IDENTIFIER_COLUMNS`, or a name holding one of the words of
  :data:`IDENTIFIER_WORDS` (``home_address``, ``year_of_birth``, ``patient_nhs``, …). Names are
  compared in lower case with spaces, dots and dashes read as ``_``; or
* its **values** behave like identifiers whatever the name: more than half of the groups hold
  a single patient, and at least :data:`MIN_SINGLETON_GROUPS` groups do (``--group-by ref``
  where ``ref`` is a pass-through hospital number); or
* any of its values **is** an identifier of the table: a patient's key (its ``patient_id``,
  NHS number or pseudonym) or an assessment id, spaces around and letter case aside (``" X001"``
  names the patient ``X001`` to any reader), or quotes one as a word of at least four
  characters with a digit (``Clinic X0012 review``: see :func:`identifier_candidates`), or
  holds an NHS number anywhere in it (ten digits, spaces and dashes aside, with a valid check
  digit) (:func:`check_not_identifiers`: a column that mixes a few identifiers with other
  values passes the count above).

The values a report lists in its context (providers and their versions, calibrations, cut-point
sets) are checked the same way.

Both checks apply whether or not the report is published: the HTML and JSON always show the
group names, and row-level data belongs only in the per-patient CSV, written on request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

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


def _keys_of(value: str) -> list[str]:
    """The patient keys ``value`` would be (see ``ScoredTable.patient_keys``): itself, an NHS
    number's digits after ``nhs:``, a pseudonym after ``pseudonym:``."""
    value = value.strip()
    return [value, f"nhs:{nhs_digits(value)}", f"pseudonym:{value}"]


#: A word of a value: letters, digits, ``_``, ``.`` and ``-`` (as ids are spelt).
_WORD = re.compile(r"[\w.\-]+")
#: The fewest characters of a word looked up as an identifier quoted in a value.
MIN_QUOTED_ID = 4


def identifier_candidates(values: Iterable[str]) -> list[str]:
    """What of the values a report would show is looked up among the table's identifiers:
    each value itself, and each word in it of at least :data:`MIN_QUOTED_ID` characters with a
    digit, as an id quoted in a name is (``Clinic X0012 review`` quotes ``X0012``; dots and
    dashes at a word's ends are left off). Shorter words, and words of letters alone, are not
    looked up: ``Ward 12`` or ``North`` would too often be some patient's id by chance. Sorted,
    without repeats or blank values."""
    found: set[str] = set()
    for value in values:
        if not value.strip():
            continue
        found.add(value)
        for spelt in _WORD.findall(value):
            word = spelt.strip(".-")
            if len(word) >= MIN_QUOTED_ID and word != value and any(c.isdigit() for c in word):
                found.add(word)
    return sorted(found)


def _looks_like_nhs_number(value: str) -> bool:
    """Whether ``value`` holds an NHS number anywhere in it, whether or not the table holds it
    (see :func:`pamlib.identity.holds_nhs_number`)."""
    from pamlib.identity import holds_nhs_number

    return holds_nhs_number(value)


def _comparable(texts: Any) -> Any:
    """Arrow text as identifiers are compared: spaces around and letter case aside."""
    import pyarrow.compute as pc

    return pc.utf8_lower(pc.utf8_trim_whitespace(texts))


#: Rows of an identifier column compared at a time: the column's comparable copy (trimmed,
#: lower case) is made a slice at a time, so a report's memory does not grow by a copy of
#: every patient key.
_SLICE = 1 << 20


def _holds_any(column: Any, values: list[str]) -> bool:
    """Whether ``column`` (Arrow text) holds any of ``values``, spaces around and letter case
    aside, a slice of a chunk (or a dictionary's distinct texts) at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import text_array

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    wanted = _comparable(text_array(values))
    for chunk in chunks:
        # a dictionary's distinct texts give the same answer as its rows
        texts = chunk.dictionary if isinstance(chunk, pa.DictionaryArray) else chunk
        for start in range(0, len(texts), _SLICE):
            piece = texts.slice(start, _SLICE)
            if not pa.types.is_string(piece.type):
                piece = pc.cast(piece, pa.string())
            if pc.any(pc.is_in(_comparable(piece), value_set=wanted)).as_py():
                return True
    return False


def check_not_identifiers(
    shown: Mapping[str, Iterable[str]],
    *,
    patient_keys: Any,
    assessment_ids: Any,
    use: str = "group by",
) -> None:
    """Raise :class:`IdentifyingColumnError` when any value a report would show of a column
    (``shown`` maps each column's name to those values) is, or quotes as a word
    (:func:`identifier_candidates`), one of the table's identifiers, spaces around and letter
    case aside: a patient key (``patient_keys``, as
    :meth:`~pamlib.tables.scored.ScoredTable.patient_keys` makes them) or an assessment id
    (both Arrow string arrays, plain or dictionary-encoded, whole or chunked). Arrow looks the
    few values up in the identifier columns, once for every column; no identifier becomes a
    Python object, and the message quotes none."""
    values = {
        name: sorted({v for v in (str(x) for x in found) if v.strip()})
        for name, found in shown.items()
    }

    def any_identifier(names: Iterable[str]) -> bool:
        plain = sorted({v for n in names for v in values[n]})
        if not plain:
            return False
        if any(_looks_like_nhs_number(v) for v in plain):  # in this table or not
            return True
        candidates = identifier_candidates(plain)
        keys = [k for v in candidates for k in _keys_of(v)]
        return _holds_any(patient_keys, keys) or _holds_any(assessment_ids, candidates)

    if not any_identifier(values):
        return
    name = next(n for n in values if any_identifier([n]))  # which: only once one is found
    raise identifier_values_error(name, use)


def identifier_values_error(name: str, use: str = "group by") -> IdentifyingColumnError:
    """The refusal of a column some of whose values are identifiers; no value is quoted."""
    return IdentifyingColumnError(
        f"cannot {use} {name!r}: some of its values are patient identifiers (a patient_id, "
        "NHS number or pseudonym, or an assessment id of this table, or an NHS number), and "
        "the report would show them"
    )


def nhs_digits(value: str) -> str:
    """``value`` without the spaces and dashes an NHS number may be written with."""
    return re.sub(r"[\s\-]+", "", value)
