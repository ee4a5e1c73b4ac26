"""Activation levels and the versioned cut-point sets that band a 0–100 score into them.

A level is always the band of the score *as reported*: rounded half away from zero to the set's
``decimals`` (one for the published sets, whose cut points are given to one decimal), then
banded. A calibration that names a set reports its scores to that same precision (the loader
refuses other ``decimals``), so re-rounding a reported score here changes nothing, and a reader
comparing the reported score with the cut points gets the reported level. Two sets of cut
points are in use (see PAM-FACTS, "Activation levels"), so every derived level records the id
of the set that produced it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.errors import ConfigurationError, Problem, ValidationError

__all__ = [
    "BUILTIN_CUTPOINT_SETS",
    "CURRENT",
    "HIBBARD_2005",
    "ActivationLevel",
    "CutpointRegistry",
    "CutpointSet",
    "round_half_away",
    "round_half_away_array",
]


class ActivationLevel(enum.IntEnum):
    """The four PAM activation levels, with paraphrased public descriptions."""

    LEVEL_1 = 1
    LEVEL_2 = 2
    LEVEL_3 = 3
    LEVEL_4 = 4

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def code(self) -> str:
        """The pamlib code for this level, as used in FHIR output (``level-1`` …)."""
        return f"level-{int(self)}"


_DESCRIPTIONS = {
    ActivationLevel.LEVEL_1: "Disengaged and overwhelmed; may not yet see their own role in care.",
    ActivationLevel.LEVEL_2: "Becoming aware; still lacking knowledge and confidence to act.",
    ActivationLevel.LEVEL_3: "Taking action; still building skills and confidence.",
    ActivationLevel.LEVEL_4: "Maintaining behaviours; may struggle under stress or setbacks.",
}

# Values within this distance of a half are treated as the half: decimal inputs such as 47.05,
# which binary floating point stores as 47.04999…, then round as written. The distance grows with
# the scaled value (a few units in the last place), so 5027.07645 at four decimals also rounds
# as written: an absolute 1e-9 is below the float error once the scaled value passes ~1e6.
_HALF_TOLERANCE = 1e-9
_HALF_TOLERANCE_RELATIVE = 1e-15


def round_half_away_array(values: npt.ArrayLike, decimals: int = 1) -> npt.NDArray[np.float64]:
    """Round half away from zero to ``decimals``, element-wise; NaN stays NaN.

    >>> round_half_away_array([47.05, -0.25, 55.149], 1).tolist()
    [47.1, -0.3, 55.1]
    """
    x = np.asarray(values, dtype=np.float64)
    factor = 10.0**decimals
    scaled = np.abs(x) * factor
    whole = np.floor(scaled)
    tolerance = np.maximum(_HALF_TOLERANCE, scaled * _HALF_TOLERANCE_RELATIVE)
    up = (scaled - whole) >= 0.5 - tolerance
    rounded = (whole + up) / factor
    return np.copysign(rounded, x)


def round_half_away(value: float, decimals: int = 1) -> float:
    """Scalar form of :func:`round_half_away_array`: the same IEEE operations in the same order,
    so the same answers, without NumPy's per-call cost (one-at-a-time scoring uses it).

    >>> round_half_away(47.05), round_half_away(47.04), round_half_away(67.05)
    (47.1, 47.0, 67.1)
    """
    x = float(value)
    if not math.isfinite(x):
        return x
    factor = 10.0**decimals
    scaled = abs(x) * factor
    if math.isinf(scaled):  # as the array form: floor(inf) / factor is inf
        return math.copysign(math.inf, x)
    whole = float(math.floor(scaled))
    tolerance = max(_HALF_TOLERANCE, scaled * _HALF_TOLERANCE_RELATIVE)
    up = 1.0 if (scaled - whole) >= 0.5 - tolerance else 0.0
    return math.copysign((whole + up) / factor, x)


#: The most decimals a cut-point set may band at: finer than any reported score needs, and
#: within what a float holds exactly enough on a 0–100 scale.
_MAX_DECIMALS = 6


def _as_tuple(value: Any) -> Any:
    """Upper bounds given as a list are a tuple (a frozen set stays hashable); anything else
    is left for the checks to refuse."""
    return tuple(value) if isinstance(value, list) else value


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@attrs.frozen
class CutpointSet:
    """Upper bounds (inclusive) of levels 1–3 on the rounded score; above the last is level 4.

    >>> CURRENT.level(47.04), CURRENT.level(47.05), CURRENT.level(67.0), HIBBARD_2005.level(72.5)
    (<ActivationLevel.LEVEL_1: 1>, <ActivationLevel.LEVEL_2: 2>, <ActivationLevel.LEVEL_3: 3>, \
<ActivationLevel.LEVEL_4: 4>)
    """

    id: str
    upper_bounds: tuple[float, float, float] = attrs.field(converter=_as_tuple)
    #: The precision of the cut points, and so of every score banded by them.
    decimals: int = 1
    source: str = ""

    def __attrs_post_init__(self) -> None:
        """Refuse a set that would band some scores wrongly or not at all: every problem at
        once, each at its field. A plugin registers sets, so nothing about one is assumed."""
        b, d = self.upper_bounds, self.decimals
        where = str(self.id)
        problems = []
        given: object = self.id  # as given: a plugin may pass anything
        if not isinstance(given, str) or not given.strip():
            # a set is chosen and reported by its id: one without could not be named
            problems.append(Problem("id", "empty", "a cut-point set needs an id (text)"))
        numbers = isinstance(b, tuple) and len(b) == 3 and all(_finite_number(x) for x in b)
        if not numbers or not (b[0] < b[1] < b[2]):
            message = "needs three strictly increasing upper bounds (finite numbers)"
            problems.append(Problem(where, "cutpoints", message))
        elif (
            _is_whole(d) and 0 <= d <= _MAX_DECIMALS and any(round_half_away(x, d) != x for x in b)
        ):
            # 47.05 at one decimal: no reported score equals it, and range_of would be wrong
            message = f"cut points are given to the set's precision, {d} decimal place(s)"
            problems.append(Problem(where, "cutpoints", message))
        if not _is_whole(d) or not 0 <= d <= _MAX_DECIMALS:
            message = f"decimals must be a whole number from 0 to {_MAX_DECIMALS}"
            problems.append(Problem(f"{where}: decimals", "decimals", message))
        if problems:
            raise ValidationError("invalid cut-point set", problems)

    def level(self, score: float) -> ActivationLevel:
        """The level of one 0–100 score (rounded here first, so raw floats are safe); the
        scalar form of :meth:`levels`, with the same answers."""
        rounded = round_half_away(score, self.decimals)
        if math.isnan(rounded):
            raise ValueError("a score that is not a number has no level")
        import bisect  # here: only this one-score form needs it, and a run may never call it

        return ActivationLevel(bisect.bisect_left(self.upper_bounds, rounded) + 1)

    def levels(self, scores: npt.ArrayLike) -> npt.NDArray[np.int8]:
        """Levels 1–4 for an array of scores; ``0`` where the score is NaN."""
        rounded = round_half_away_array(scores, self.decimals)
        # 1 + the number of upper bounds strictly below the score (bounds are inclusive);
        # three comparisons beat a binary search on large arrays.
        out = np.ones(rounded.shape, dtype=np.int8)
        for bound in self.upper_bounds:
            out += rounded > bound
        out[np.isnan(rounded)] = 0
        return out

    def range_of(self, level: ActivationLevel) -> tuple[float | None, float | None]:
        """The inclusive (low, high) rounded-score range of a level; ``None`` is open-ended."""
        step = 10.0**-self.decimals
        i = int(level) - 1
        low = None if i == 0 else round_half_away(self.upper_bounds[i - 1] + step, self.decimals)
        high = None if i == 3 else self.upper_bounds[i]
        return low, high


#: Cut points in current use (PAM-FACTS, "Activation levels": set "current").
CURRENT = CutpointSet("current", (47.0, 55.1, 67.0), source="Insignia Health, current guidance")
#: The original published cut points (Hibbard et al. 2005).
HIBBARD_2005 = CutpointSet("hibbard-2005", (47.0, 55.1, 72.4), source="Hibbard et al. 2005")

BUILTIN_CUTPOINT_SETS: tuple[CutpointSet, ...] = (CURRENT, HIBBARD_2005)


@attrs.define
class CutpointRegistry:
    """Cut-point sets by id; filled by the ``pamlib_register_cutpoint_sets`` hook."""

    _by_id: dict[str, CutpointSet] = attrs.field(factory=dict, alias="by_id")

    def register(self, cutpoints: CutpointSet) -> None:
        """Add a set for banding PAM scores: it must band the 0–100 scale, its first bound
        from 0 and its last below 100, so that every level has scores (a set past 100 would
        silently never give level 4). A set that is already registered differently is a
        :class:`~pamlib.errors.ConfigurationError`."""
        low, _, high = cutpoints.upper_bounds
        if not (low >= 0 and high < 100):
            message = "upper bounds lie from 0 to below 100, so every level has scores"
            raise ValidationError(
                "invalid cut-point set", [Problem(str(cutpoints.id), "cutpoints", message)]
            )
        existing = self._by_id.get(cutpoints.id)
        if existing is not None and existing != cutpoints:
            raise ConfigurationError(f"cut-point set {cutpoints.id!r} is already registered")
        self._by_id[cutpoints.id] = cutpoints

    def get(self, set_id: str) -> CutpointSet:
        try:
            return self._by_id[set_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise ConfigurationError(
                f"unknown cut-point set {set_id!r}; known sets: {known}"
            ) from None

    def __iter__(self) -> Iterator[CutpointSet]:
        return iter(self._by_id.values())

    def __contains__(self, set_id: object) -> bool:
        return set_id in self._by_id

    @classmethod
    def of(cls, sets: Iterable[CutpointSet]) -> CutpointRegistry:
        registry = cls()
        for s in sets:
            registry.register(s)
        return registry
