"""NQF/CBE #2483, CMS MIPS #503: "Gains in PAM Scores at 12 Months".

Each patient lands in exactly one place:

* **excluded**, with the first reason that applies, in this order:

  1. ``not-scored`` — no usable assessment (none scored, or no 0–100 score / level);
  2. ``baseline-level-4`` — baseline at activation level 4;
  3. ``no-follow-up`` — no usable assessment in the follow-up window;
  4. ``extreme-response`` — the baseline or the follow-up carries the ``extreme-response`` flag;

* otherwise in the **denominator**, and in the **numerator** (``met``) when the follow-up
  score is at least :data:`~pamlib.reporting.NQF2483_GAIN_POINTS` (3.0) points above the
  baseline, compared exactly in tenths of a point.

The gain is fixed by the measure; the report's own ``threshold`` (for improved / stable /
declined) does not change it. The window is the report's; the summary says whether it is the
specified 6–12 months.
"""

from __future__ import annotations

import enum

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib.reporting._config import NQF2483_GAIN_POINTS
from pamlib.reporting._trajectories import Trajectories

#: The flag a scoring provider sets on an extreme (straight-line) response set.
EXTREME_RESPONSE_FLAG = "extreme-response"


class Exclusion(enum.StrEnum):
    """Why a patient is outside the NQF #2483 denominator (listed in precedence order)."""

    NOT_SCORED = "not-scored"
    BASELINE_LEVEL_4 = "baseline-level-4"
    NO_FOLLOW_UP = "no-follow-up"
    EXTREME_RESPONSE = "extreme-response"

    @property
    def words(self) -> str:
        """The reason in plain words, for readers of a report (the code stays in the JSON)."""
        return _EXCLUSION_WORDS[self]


class MeasureStatus(enum.StrEnum):
    """A patient's place in the measure."""

    MET = "met"
    NOT_MET = "not-met"
    EXCLUDED = "excluded"


_EXCLUSION_WORDS = {
    Exclusion.NOT_SCORED: "no usable scored assessment",
    Exclusion.BASELINE_LEVEL_4: "baseline already at level 4",
    Exclusion.NO_FOLLOW_UP: "no scored follow-up in the window",
    Exclusion.EXTREME_RESPONSE: "every answer at the same extreme, at baseline or follow-up",
}

#: Codes used in :attr:`Nqf2483.reason`; 0 means not excluded.
EXCLUSION_CODES: dict[int, Exclusion] = {i + 1: e for i, e in enumerate(Exclusion)}
#: Codes used in :attr:`Nqf2483.status`.
STATUS_CODES: dict[int, MeasureStatus] = {i + 1: s for i, s in enumerate(MeasureStatus)}


@attrs.frozen(eq=False, repr=False)
class Nqf2483:
    """Per-patient measure results, aligned with :class:`Trajectories` (codes as above)."""

    status: NDArray[np.int8]
    reason: NDArray[np.int8]

    def __repr__(self) -> str:
        return (
            f"Nqf2483(numerator={self.numerator}, denominator={self.denominator}, "
            f"excluded={self.excluded})"
        )

    @property
    def numerator(self) -> int:
        return int((self.status == 1).sum())

    @property
    def denominator(self) -> int:
        return int((self.status <= 2).sum())

    @property
    def excluded(self) -> dict[str, int]:
        """Excluded patients counted by reason, every reason present (zeros included)."""
        counts = np.bincount(self.reason, minlength=len(Exclusion) + 1)
        return {str(e): int(counts[code]) for code, e in EXCLUSION_CODES.items()}

    def of(self, index: int) -> tuple[MeasureStatus, Exclusion | None]:
        """Status and exclusion reason of the patient at ``index`` of the trajectories."""
        return STATUS_CODES[int(self.status[index])], EXCLUSION_CODES.get(int(self.reason[index]))


def nqf2483(trajectories: Trajectories) -> Nqf2483:
    """Apply the measure to every patient."""
    columns = trajectories.columns
    extreme = columns.has_flag(EXTREME_RESPONSE_FLAG)
    baseline, followup = trajectories.baseline_row, trajectories.followup_row
    flagged = (baseline >= 0) & extreme[np.maximum(baseline, 0)]
    flagged |= (followup >= 0) & extreme[np.maximum(followup, 0)]
    del extreme
    # One byte a patient, the first reason that applies set last (np.select would make
    # 8-byte arrays a patient).
    reason = np.zeros(len(trajectories), dtype=np.int8)
    reason[flagged] = 4
    reason[~trajectories.has_followup] = 3
    reason[trajectories.baseline_level == 4] = 2
    reason[~trajectories.has_baseline] = 1
    del flagged
    change = trajectories.followup_tenths - trajectories.baseline_tenths
    status = np.full(len(trajectories), 2, dtype=np.int8)
    status[change >= round(NQF2483_GAIN_POINTS * 10)] = 1
    status[reason > 0] = 3
    return Nqf2483(status=status, reason=reason)
