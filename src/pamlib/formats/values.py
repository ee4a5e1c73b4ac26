"""Reading one cell: answers, dates, identifiers and instrument names as exports spell them.

These scalar functions are the definition of what pamlib accepts. The row validator calls them
per cell; the columnar reader calls them once per *distinct* value and applies the answers with
a lookup, so both accept exactly the same spellings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

from pamlib.errors import ConfigurationError, ValidationError
from pamlib.identity import normalise_nhs_number
from pamlib.instruments import Instrument
from pamlib.responses import NOT_APPLICABLE_CODE, UNANSWERED_CODE, parse_response

__all__ = [
    "IMPOSSIBLE_ANSWER",
    "UNKNOWN_LABEL",
    "InstrumentResolver",
    "answer_code",
    "is_absent",
    "label_key",
    "nhs_number_or_none",
    "parse_date",
]

#: :func:`answer_code` result for a number that is not an answer (``5``, ``0``, ``2.5``).
IMPOSSIBLE_ANSWER = -100
#: :func:`answer_code` result for text that is no known answer label.
UNKNOWN_LABEL = -101

_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]*)?")
_LABEL_CODES = {"1": 1, "2": 2, "3": 3, "4": 4, "NA": NOT_APPLICABLE_CODE}


def label_key(text: str) -> str:
    """How extra answer labels are compared: case-folded, runs of whitespace as one space."""
    return " ".join(text.casefold().split())


def answer_code(text: str, labels: Mapping[str, str] | None = None) -> int:
    """The column code of one answer cell (see :mod:`pamlib.responses`), or
    :data:`IMPOSSIBLE_ANSWER` / :data:`UNKNOWN_LABEL`.

    ``labels`` are extra spellings keyed by :func:`label_key`, valued ``1``–``4`` or ``NA``.

    >>> answer_code("Strongly agree"), answer_code(" n/a "), answer_code(""), answer_code("5")
    (4, -1, 0, -100)
    """
    try:
        response = parse_response(text)
    except ValueError:
        if labels:
            extra = labels.get(label_key(text))
            if extra is not None:
                return _LABEL_CODES[extra]
        return IMPOSSIBLE_ANSWER if _NUMBER.fullmatch(text.strip()) else UNKNOWN_LABEL
    return UNANSWERED_CODE if response is None else int(response)


_TIME = r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})" + _TIME)
_SLASHED = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})" + _TIME)


def parse_date(text: str, *, day_first: bool = True) -> dt.date | None:
    """An ISO date (``2024-03-01``) or a slashed one (``01/03/2024``: day first unless
    ``day_first`` is false), optionally followed by a time of day that is ignored; ``None`` if
    empty, malformed or impossible (31/02/2024).

    >>> parse_date("2024-03-01"), parse_date("1/3/2024 09:30"), parse_date("31/02/2024")
    (datetime.date(2024, 3, 1), datetime.date(2024, 3, 1), None)
    >>> parse_date("03/01/2024", day_first=False)
    datetime.date(2024, 3, 1)
    """
    value = text.strip()
    match = _ISO.fullmatch(value)
    if match is not None:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = _SLASHED.fullmatch(value)
        if match is None:
            return None
        first, second, year = (int(g) for g in match.groups())
        day, month = (first, second) if day_first else (second, first)
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def is_absent(text: str) -> bool:
    """True for an empty or whitespace-only identifier cell."""
    return not text.strip()


def nhs_number_or_none(text: str) -> str | None:
    """The normalised NHS number (spaces and dashes removed, check digit valid), or ``None``."""
    try:
        return normalise_nhs_number(text)
    except ValidationError:
        return None


class InstrumentResolver:
    """Finds instruments by id in any case, by alias, or by default for empty cells."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        aliases: Mapping[str, str] | None = None,
        default: str | None = None,
    ) -> None:
        self.instruments = tuple(instruments)
        by_key = {i.id.casefold(): i for i in self.instruments}
        known = ", ".join(sorted(i.id for i in self.instruments))
        for alias, target in (aliases or {}).items():
            instrument = by_key.get(target.strip().casefold())
            if instrument is None:
                raise ConfigurationError(
                    f"instrument alias {alias!r} names an unknown instrument; known: {known}"
                )
            key = alias.strip().casefold()
            known_as = by_key.get(key)
            if known_as is not None and known_as is not instrument:
                raise ConfigurationError(
                    f"instrument alias {alias!r} = {target!r} would change what {alias!r} "
                    f"means: it already names {known_as.id}"
                )
            by_key[key] = instrument
        self._by_key = by_key
        self.default: Instrument | None = None
        if default is not None:
            self.default = by_key.get(default.strip().casefold())
            if self.default is None:
                raise ConfigurationError(
                    f"default instrument {default!r} is unknown; known: {known}"
                )

    def resolve(self, text: str) -> Instrument | None:
        """The instrument ``text`` names (the default where it is blank), or ``None``."""
        key = text.strip().casefold()
        if not key:
            return self.default
        return self._by_key.get(key)
