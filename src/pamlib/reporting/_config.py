"""Settings for a cohort report: follow-up window, change threshold, grouping and suppression.

Everything a report depends on lives in one frozen :class:`ReportConfig`, which is written into
the JSON summary so a published figure can always be traced back to the rules that made it.
"""

from __future__ import annotations

import enum
import math

import attrs

from pamlib.errors import ConfigurationError

#: The gain, in 0–100 points, that counts towards the NQF #2483 / MIPS #503 numerator.
NQF2483_GAIN_POINTS = 3.0
#: The follow-up window of NQF #2483: 6 to 12 months after the baseline.
NQF2483_WINDOW_MONTHS = (6, 12)


class ChangeThreshold(float, enum.Enum):
    """Named change thresholds, in 0–100 points, for improved / stable / declined.

    Members are floats, so ``ReportConfig(threshold=ChangeThreshold.MCID)`` just works.
    """

    #: The gain counted by NQF #2483 ("Gains in PAM Scores at 12 Months").
    NQF2483 = 3.0
    #: Minimal clinically important difference (CKD cohort, Wilkinson 2025).
    MCID = 5.4
    #: Minimal detectable change for an individual (same study).
    MDC = 7.2


def parse_threshold(text: str) -> float:
    """Read a threshold as a command line would give it: a preset name or a number of points.

    >>> parse_threshold("mcid")
    5.4
    >>> parse_threshold("4.5")
    4.5
    """
    name = text.strip().upper().replace("-", "").replace("_", "")
    for member in ChangeThreshold:
        if member.name.replace("_", "") == name:
            return member.value
    try:
        return float(text)
    except ValueError:
        presets = ", ".join(m.name.lower() for m in ChangeThreshold)
        raise ConfigurationError(
            f"threshold must be a number of points or one of {presets}"
        ) from None


def _whole_tenths(value: float) -> bool:
    return math.isfinite(value) and abs(value * 10 - round(value * 10)) < 1e-9


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@attrs.frozen
class SuppressionRule:
    """Small-number suppression for published figures.

    A count ``c`` with ``low <= c <= high`` is *primarily* suppressed and shown as ``symbol``.
    Percentages, means and SDs computed from a suppressed count are suppressed with it, and
    *secondary* suppression hides further cells until no published additive identity (a
    row or column total, a total over groups, …), alone or combined with the others, gives a
    hidden count away, even to a reader who knows that every hidden count is at least 1. Zero
    counts are never suppressed. See ``docs/reporting.rst`` for the full rules.
    """

    low: int = 1
    high: int = 7
    symbol: str = "*"

    def __attrs_post_init__(self) -> None:
        if self.low != 1 or self.high < self.low:
            # A count of one is the most disclosive of all: no rule may publish it while
            # hiding larger ones.
            raise ConfigurationError(
                "suppression hides every count from low = 1 to high (high >= 1; zero counts are "
                "never suppressed)"
            )
        if not self.symbol or self.symbol.strip() != self.symbol or _is_number(self.symbol):
            raise ConfigurationError(
                "the suppression symbol must be non-empty, not a number, without spaces around"
            )

    def hides(self, count: int) -> bool:
        """Whether ``count`` is primarily suppressed."""
        return self.low <= count <= self.high


@attrs.frozen
class ReportConfig:
    """How a cohort report is built.

    ``min_months``/``max_months``
        The follow-up window, in calendar months after the baseline date, both ends included.
    ``threshold``
        Points of change (one decimal) that count as improved (``>= +threshold``) or declined
        (``<= -threshold``); a :class:`ChangeThreshold` member or a number. It does not change the
        NQF #2483 numerator, which always counts gains of at least 3 points.
    ``group_by``
        A column of the scored table (``site``, ``instrument``, …) to stratify by, or ``None``.
    ``publish``
        Apply ``suppression`` to every published output (the JSON summary and the HTML report).
        The per-patient CSV is never a published output: writing it refuses when ``publish``.
    """

    min_months: int = NQF2483_WINDOW_MONTHS[0]
    max_months: int = NQF2483_WINDOW_MONTHS[1]
    threshold: float = attrs.field(default=ChangeThreshold.NQF2483.value, converter=float)
    group_by: str | None = None
    publish: bool = False
    suppression: SuppressionRule = attrs.field(factory=SuppressionRule)

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.min_months <= self.max_months <= 120:
            raise ConfigurationError(
                "the follow-up window needs 1 <= min_months <= max_months <= 120"
            )
        # a change on the 0-100 scale is at most 100 points (and 1e308 has no tenths)
        if not (0 < self.threshold <= 100 and _whole_tenths(self.threshold)):
            raise ConfigurationError(
                "the change threshold must be a positive number of points, at most 100, with "
                "one decimal at most"
            )
        if self.group_by is not None and not self.group_by.strip():
            raise ConfigurationError("group_by must name a column")

    @property
    def threshold_tenths(self) -> int:
        """The threshold in tenths of a point, the unit change is compared in (exactly)."""
        return round(self.threshold * 10)

    @property
    def threshold_preset(self) -> str | None:
        """The name of the :class:`ChangeThreshold` the threshold equals, if any."""
        for member in ChangeThreshold:
            if round(member.value * 10) == self.threshold_tenths:
                return member.name.lower()
        return None

    @property
    def nqf2483_as_specified(self) -> bool:
        """Whether the window is the one NQF #2483 specifies (6–12 months)."""
        return (self.min_months, self.max_months) == NQF2483_WINDOW_MONTHS

    def to_json(self) -> dict[str, object]:
        """The settings as plain JSON values (written into the summary)."""
        return {
            "window_months": [self.min_months, self.max_months],
            "threshold_points": self.threshold_tenths / 10,
            "threshold_preset": self.threshold_preset,
            "nqf2483_gain_points": NQF2483_GAIN_POINTS,
            "group_by": self.group_by,
            "publish": self.publish,
            "suppression": {
                "low": self.suppression.low,
                "high": self.suppression.high,
                "symbol": self.suppression.symbol,
                "applied": self.publish,
            },
        }
