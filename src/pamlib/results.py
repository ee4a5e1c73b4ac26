"""What a scoring provider returns for one assessment."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Iterable

import attrs

from pamlib.identity import shown_id
from pamlib.levels import ActivationLevel

__all__ = ["REPORTING_SCALE", "SCORED_TABLE_COLUMNS", "Flag", "ScoreResult", "ScoreStatus"]

#: The scale every PAM score is reported on (scores are 0–100): calibrations' ``min``/``max``
#: and every provider's results are held to it.
REPORTING_SCALE: tuple[float, float] = (0.0, 100.0)


#: The columns of a scored table, in order, as ``pamlib score`` writes them and the reports
#: and tailoring read them; extra columns (``reason``, ``site``, …) may follow.
SCORED_TABLE_COLUMNS: tuple[str, ...] = (
    "assessment_id",
    "patient_id",
    "assessed_on",
    "instrument",
    "status",
    "n_answered",
    "raw_score",
    "theta",
    "theta_se",
    "score",
    "score_se",
    "level",
    "cutpoint_set",
    "flags",
    "provider",
    "provider_version",
    "calibration_id",
    "calibration_sha256",
    "demo",
)


class ScoreStatus(enum.StrEnum):
    SCORED = "scored"
    NOT_SCORED = "not-scored"


class Flag(enum.StrEnum):
    """Validity and provenance flags carried on results and written into every output."""

    #: Every answered item is in the same extreme category (all lowest or all highest).
    EXTREME_RESPONSE = "extreme-response"
    #: Scored with a synthetic demonstration calibration: this is **not** a PAM score.
    DEMO = "demo"
    #: No 0–100 score: the provider reports raw totals only (not a PAM score either).
    RAW_ONLY = "raw-only"
    #: Some items were not answered or not applicable; the error of the score grows.
    MISSING_ITEMS = "missing-items"
    #: Scored with a calibration that carries no licence (research use): **not** a licensed PAM
    #: score.
    UNLICENSED = "unlicensed"


def _nan_to_none(value: float | None) -> float | None:
    """A number, ``None`` where NaN. ``True`` is refused, not read as 1.0 (a provider's
    column of flags passed as a score), as are text and other non-numbers."""
    given: object = value  # as given: a provider may pass anything
    if type(given) is float:  # the usual case, told first: this runs for every result
        return None if given != given else given  # noqa: PLR0124 - NaN is not itself
    if given is None:
        return None
    if isinstance(given, bool) or not isinstance(given, numbers.Real):
        raise TypeError(f"a number was expected, not a {type(given).__name__}")
    number = float(given)
    return None if math.isnan(number) else number


def _status(status: ScoreStatus | str) -> ScoreStatus:
    """The status as the enum: ``"scored"`` equals :attr:`ScoreStatus.SCORED`, but
    :attr:`ScoreResult.scored` (and the contract's check) ask ``is``. Anything else is kept as
    given, for the check of a provider's result to refuse by name (``status: not a
    ScoreStatus``) rather than as an error raised in the provider's own code."""
    if type(status) is ScoreStatus:
        return status
    try:
        return ScoreStatus(status)
    except ValueError:
        return status  # type: ignore[return-value]  # refused by the result check


def _flags(flags: Iterable[Flag]) -> frozenset[Flag]:
    if isinstance(flags, frozenset) and all(type(f) is Flag for f in flags):
        return flags  # already what is stored: skip re-validating (one-assessment scoring)
    return frozenset(Flag(f) for f in flags)


@attrs.frozen
class ScoreResult:
    """One assessment's score, with everything needed to audit where it came from.

    ``demo`` is True whenever the numbers come from a synthetic calibration; such a result is not
    a PAM score and every output made from it says so. ``reason`` explains a ``not-scored``
    status in words; ``reason_code`` is the stable machine-readable form.
    """

    assessment_id: str = attrs.field(repr=shown_id)
    status: ScoreStatus = attrs.field(converter=_status)
    provider: str
    provider_version: str
    n_answered: int
    raw_score: int | None = None
    mean_response: float | None = attrs.field(default=None, converter=_nan_to_none)
    theta: float | None = attrs.field(default=None, converter=_nan_to_none)
    theta_se: float | None = attrs.field(default=None, converter=_nan_to_none)
    score: float | None = attrs.field(default=None, converter=_nan_to_none)
    score_se: float | None = attrs.field(default=None, converter=_nan_to_none)
    level: ActivationLevel | None = None
    cutpoint_set: str | None = None
    calibration_id: str | None = None
    calibration_sha256: str | None = None
    demo: bool = False
    flags: frozenset[Flag] = attrs.field(factory=frozenset, converter=_flags)
    reason: str | None = None
    reason_code: str | None = None

    @property
    def scored(self) -> bool:
        return self.status is ScoreStatus.SCORED
