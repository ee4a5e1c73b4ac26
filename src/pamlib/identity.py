"""Who an assessment is about: a pseudonymous patient id and, optionally, an NHS number.

Identifiers are personal data. They are kept out of ``repr``, logs and error messages: the classes
here print ``<redacted>`` and validation errors say *what* is wrong, never the value.
"""

from __future__ import annotations

import operator
import re

import attrs

from pamlib.errors import Problem, ValidationError

__all__ = ["NHS_NUMBER_SYSTEM", "Patient", "is_valid_nhs_number", "normalise_nhs_number"]

#: FHIR identifier system for the NHS number in England and Wales.
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

#: What may stand between the digits of an NHS number: any whitespace (``str.isspace``), dashes.
_SEPARATOR = r"[\s\-]"
_SEPARATORS = re.compile(_SEPARATOR + "+")
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def _nhs_problem(value: str) -> str | None:
    """Return why ``value`` (already normalised) is not an NHS number, or ``None`` if it is."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return "an NHS number has exactly 10 digits"
    total = sum(map(operator.mul, map(int, value[:9]), _WEIGHTS))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(value[9]):
        return "the NHS number's check digit is wrong (modulus 11)"
    return None


def normalise_nhs_number(value: str) -> str:
    """Strip spaces and dashes and validate the modulus-11 check digit.

    >>> normalise_nhs_number("943 476 5919")
    '9434765919'
    >>> normalise_nhs_number("943-476-5910")
    Traceback (most recent call last):
    ...
    pamlib.errors.ValidationError: invalid NHS number
      - the NHS number's check digit is wrong (modulus 11) @ nhs_number
    """
    cleaned = value if value.isalnum() else _SEPARATORS.sub("", value)  # no separator: no copy
    why = _nhs_problem(cleaned)
    if why is not None:
        raise ValidationError("invalid NHS number", [Problem("nhs_number", "nhs-number", why)])
    return cleaned


def is_valid_nhs_number(value: str) -> bool:
    """True when ``value``, once spaces and dashes are removed, is a valid NHS number."""
    return _nhs_problem(_SEPARATORS.sub("", value)) is None


#: An NHS number as written inside other text: ten digits, spaces and dashes aside, not part of
#: a longer run of digits. The separators are those :func:`normalise_nhs_number` removes (a
#: number it accepts is found), and it matches, zero-width, at every start, so that an invalid
#: ten digits (``2024 943 476``) cannot hide a valid number overlapping them (``943 476 5919``).
_NHS_IN_TEXT = re.compile(rf"(?<![0-9])(?=([0-9](?:{_SEPARATOR}*[0-9]){{9}})(?![0-9]))")

#: What a file name holding an NHS number is shown as, wherever pamlib names a file.
WITHHELD_NAME = "(name withheld: it holds an NHS number)"


def holds_nhs_number(text: str) -> bool:
    """Whether ``text`` holds, anywhere in it, an NHS number with a valid check digit: a group
    value (``NHS no 943 476 5919``), a file name (``9434765919.json``), a plugin's message.

    >>> holds_nhs_number("9434765919 (J Smith)"), holds_nhs_number("order 1234567890")
    (True, False)
    """
    return any(is_valid_nhs_number(found) for found in _NHS_IN_TEXT.findall(text))


def _nhs_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds a valid NHS number, overlapping spans merged, in order."""
    spans: list[tuple[int, int]] = []
    for found in _NHS_IN_TEXT.finditer(text):
        if is_valid_nhs_number(found.group(1)):
            start, end = found.span(1)
            if spans and start < spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
    return spans


def withhold_nhs_numbers(text: str) -> str:
    """``text`` with every NHS number in it (as :func:`holds_nhs_number` finds them) replaced by
    ``<NHS number>``: for text pamlib repeats but did not write, such as a plugin's message.

    >>> withhold_nhs_numbers("no record for 943 476 5919 (line 3), order 1234567890")
    'no record for <NHS number> (line 3), order 1234567890'
    """
    parts: list[str] = []
    done = 0
    for start, end in _nhs_spans(text):
        parts += (text[done:start], "<NHS number>")
        done = end
    return "".join(parts) + text[done:] if parts else text


def shown_id(value: object) -> str:
    """An assessment id as a ``repr`` shows it: an id names a record, not a person, and is
    shown, but an NHS number an exporter built into it (``9434765919-2025-03-01``) is not.

    >>> shown_id("9434765919-2025-03-01"), shown_id("A17")
    ("'<NHS number>-2025-03-01'", "'A17'")
    """
    return repr(withhold_nhs_numbers(value) if isinstance(value, str) else value)


def _normalise_optional(value: str | None) -> str | None:
    _text_or_none(value, "nhs_number")
    return None if value is None or value.strip() == "" else normalise_nhs_number(value)


def _empty_to_none(value: str | None) -> str | None:
    _text_or_none(value, "id")
    return None if value is None or not value.strip() else value


def _text_or_none(value: object, name: str) -> None:
    """An identifier is text: a number (an NHS number held as an int loses nothing, a negative
    one passes for valid) is refused, naming the field, not the value."""
    if value is not None and not isinstance(value, str):
        raise ValidationError(
            "invalid patient",
            [Problem(f"patient.{name}", "type", f"{name} is text, not a {type(value).__name__}")],
        )


@attrs.frozen(repr=False)
class Patient:
    """A person, by pseudonymous id, NHS number, or both (at least one).

    The NHS number is normalised and its check digit validated on construction.

    >>> p = Patient("p-0001", nhs_number="943 476 5919")
    >>> p.nhs_number
    '9434765919'
    >>> p
    Patient(id=<redacted>, nhs_number=<redacted>)
    """

    id: str | None = attrs.field(converter=_empty_to_none)
    nhs_number: str | None = attrs.field(default=None, converter=_normalise_optional, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.id is None and self.nhs_number is None:
            raise ValidationError(
                "invalid patient",
                [Problem("patient", "no-identity", "a patient needs an id or an NHS number")],
            )

    @property
    def key(self) -> str:
        """A stable key for linking a patient's assessments (the id, else the NHS number).

        It is an identifier: never log or print it.
        """
        return self.id if self.id is not None else f"nhs:{self.nhs_number}"

    def __repr__(self) -> str:
        pid = "None" if self.id is None else "<redacted>"
        nhs = "None" if self.nhs_number is None else "<redacted>"
        return f"Patient(id={pid}, nhs_number={nhs})"

    __str__ = __repr__
