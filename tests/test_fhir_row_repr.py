"""A ResponseRow's repr (what a service logs of a parsed response) shows no identifier and no
attribute value: a pass-through attribute may be a name or a date of birth."""

from __future__ import annotations

import datetime as dt

import pamlib
from pamlib.fhir import ResponseRow
from pamlib.instruments import BUILTIN_INSTRUMENTS

PAM13 = BUILTIN_INSTRUMENTS[0]
SECRETS = ("PID-ZQX-SECRET", "9434765919", "Zebedee Quillfeather", "1931-07-01")


def test_response_row_repr_shows_attribute_names_only() -> None:
    assessment = pamlib.Assessment(
        "a1",
        pamlib.Patient(SECRETS[0], nhs_number=SECRETS[1]),
        PAM13,
        dt.date(2025, 1, 1),
        dict.fromkeys(PAM13.items, 3),
        attributes={"name": SECRETS[2], "date_of_birth": SECRETS[3]},
    )
    row = ResponseRow.from_assessment(assessment)
    for text in (repr(row), str(row)):
        assert [s for s in SECRETS if s in text] == []
        assert "attributes=['date_of_birth', 'name']" in text
    assert row.attributes["name"] == SECRETS[2]
