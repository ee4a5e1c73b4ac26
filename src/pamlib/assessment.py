"""An assessment: one completion of one instrument by one patient on one day."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.errors import Problem, ValidationError
from pamlib.identity import Patient, shown_id
from pamlib.instruments import Instrument
from pamlib.responses import UNANSWERED_CODE, Response

__all__ = ["Assessment", "Mode"]


class Mode(enum.StrEnum):
    """How the questionnaire was administered."""

    SELF_PAPER = "self-paper"
    SELF_ONLINE = "self-online"
    INTERVIEW_IN_PERSON = "interview-in-person"
    INTERVIEW_TELEPHONE = "interview-telephone"
    UNKNOWN = "unknown"


def _freeze(responses: Mapping[str, Response | int]) -> Mapping[str, Response]:
    """A read-only copy; values that are not answers are kept for ``__attrs_post_init__`` to
    report together with every other problem."""
    if not isinstance(responses, Mapping):
        raise ValidationError(
            "invalid assessment",
            [
                Problem(
                    "responses",
                    "type",
                    f"responses map item ids to answers, not a {type(responses).__name__}",
                )
            ],
        )
    frozen: dict[str, Response] = {}
    for item_id, value in responses.items():
        try:
            kind = type(value)  # an int or a Response told first: this runs for every answer
            if kind is not int and kind is not Response and isinstance(value, bool | np.bool_):
                raise ValueError  # True == 1: not an answer, however equal
            frozen[item_id] = Response(value)
        except ValueError:
            # kept as given so that every bad value is reported at once, not the first only
            frozen[item_id] = value  # type: ignore[assignment]  # not a Response: checked later
    return MappingProxyType(frozen)


def _freeze_attributes(attributes: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(attributes))


def _is_date(value: object) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


@attrs.frozen(repr=False)
class Assessment:
    """Responses keyed by item id; items left out were not answered.

    Construction checks every response against the instrument and reports all problems at once.

    >>> from pamlib.instruments import BUILTIN_INSTRUMENTS
    >>> pam13 = BUILTIN_INSTRUMENTS[0]
    >>> a = Assessment("a1", Patient("p1"), pam13, dt.date(2025, 3, 1), {"pam13.01": 3})
    >>> a.responses["pam13.01"], a.n_answered
    (<Response.AGREE: 3>, 1)
    """

    id: str
    patient: Patient
    instrument: Instrument
    assessed_on: dt.date
    # read-only mappings, left out of the hash (which they cannot take part in): equal
    # assessments still hash equal
    responses: Mapping[str, Response] = attrs.field(converter=_freeze, hash=False)
    mode: Mode = Mode.UNKNOWN
    language: str = "en"
    site: str | None = None
    #: Integrator-supplied facts used by tailoring rules (condition, language need, age band…).
    attributes: Mapping[str, str] = attrs.field(
        factory=dict, converter=_freeze_attributes, hash=False
    )

    def __attrs_post_init__(self) -> None:
        problems: list[Problem] = []
        given: object = self.id  # as given: any type may come from a caller
        if not isinstance(given, str):
            # what to_dict writes must read back: an id is text (named by type, never shown)
            kind = type(given).__name__
            problems.append(Problem("id", "type", f"an assessment's id is text, not a {kind}"))
        elif not given.strip():
            problems.append(Problem("id", "empty", "an assessment needs an id"))
        attributes: Mapping[str, object] = self.attributes  # as given: any value may come
        for name, value in attributes.items():
            if not isinstance(value, str):
                kind = type(value).__name__
                message = f"an attribute's value is text, not a {kind}"
                problems.append(Problem(f"attributes[{name!r}]", "type", message))
        # the wrong kind of patient or instrument, named by its type only (a patient given as
        # text would be an identifier in the message and in every repr)
        patient: object = self.patient  # as given: any type may come from a caller
        instrument: object = self.instrument
        if not isinstance(patient, Patient):
            kind = type(patient).__name__
            problems.append(Problem("patient", "type", f"a patient is a Patient, not a {kind}"))
        if not isinstance(instrument, Instrument):
            kind = type(instrument).__name__
            problems.append(
                Problem("instrument", "type", f"an instrument is an Instrument, not a {kind}")
            )
            raise ValidationError("invalid assessment", problems)
        known = set(self.instrument.items)
        answers: Mapping[str, object] = self.responses  # may hold values _freeze could not read
        for item_id, answer in answers.items():
            where = f"responses[{item_id!r}]"
            if item_id not in known:
                message = f"{self.instrument.id} has no item with this id"
                problems.append(Problem(where, "unknown-item", message))
            if not isinstance(answer, Response):
                message = "an answer is 1-4 or not applicable (-1)"
                problems.append(Problem(where, "impossible-answer", message))
        if not _is_date(self.assessed_on):
            problems.append(Problem("assessed_on", "date", "assessed_on must be a date"))
        if problems:
            raise ValidationError("invalid assessment", problems)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (and copied) as its fields, rebuilt and checked again: a read-only mapping
        does not pickle, and an assessment must reach a process pool."""
        fields = (self.id, self.patient, self.instrument, self.assessed_on)
        rest = (self.mode, self.language, self.site, dict(self.attributes))
        return (Assessment, (*fields, dict(self.responses), *rest))

    def __repr__(self) -> str:
        return (
            f"Assessment(id={shown_id(self.id)}, patient={self.patient!r}, "
            f"instrument={self.instrument.id!r}, assessed_on={self.assessed_on.isoformat()}, "
            f"n_answered={self.n_answered})"
        )

    @property
    def n_answered(self) -> int:
        """Items answered with one of the four categories (not applicable does not count)."""
        return sum(1 for r in self.responses.values() if r.is_category)

    def codes(self) -> npt.NDArray[np.int8]:
        """The responses as a column-code vector in item order (see :mod:`pamlib.responses`)."""
        out = np.full(self.instrument.n_items, UNANSWERED_CODE, dtype=np.int8)
        for item_id, response in self.responses.items():
            out[self.instrument.index(item_id)] = int(response)
        return out
