"""Synthetic cohorts for the demo, the tests and the benchmarks. No real patients, no PAM content.

Responses are drawn from a rating-scale Rasch model with made-up item difficulties, so they look
like questionnaire data (ordered, correlated, with ceiling effects and missing answers) without
being anything the licensor owns. NHS numbers are valid modulus-11 numbers in the 999 test range.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.formats.layout import CANONICAL_COLUMNS  # the header before q01 … q13
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.responses import NOT_APPLICABLE_CODE, UNANSWERED_CODE

__all__ = ["CANONICAL_COLUMNS", "SyntheticCohort", "synthetic_cohort", "test_nhs_number"]

SITES = ("North Practice", "Riverside PCN", "Hilltop Renal Unit")
_WEIGHTS = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2])


def test_nhs_number(serial: int) -> str | None:
    """The NHS number ``999`` + ``serial`` (six digits) + check digit, or ``None`` where no
    check digit exists (one serial in eleven).

    >>> test_nhs_number(1)
    '9990000018'
    >>> test_nhs_number(0) is None
    True
    """
    body = f"999{serial:06d}"
    check = 11 - int(np.dot([int(d) for d in body], _WEIGHTS)) % 11
    check = 0 if check == 11 else check
    return None if check == 10 else f"{body}{check}"


@attrs.frozen
class SyntheticCohort:
    """A cohort as columns: ``codes`` has one row per assessment (see :mod:`pamlib.responses`)."""

    instrument: Instrument
    patient_id: npt.NDArray[np.str_] = attrs.field(eq=False)
    nhs_number: npt.NDArray[np.str_] = attrs.field(eq=False)
    assessment_id: npt.NDArray[np.str_] = attrs.field(eq=False)
    assessed_on: npt.NDArray[np.datetime64] = attrs.field(eq=False)
    site: npt.NDArray[np.str_] = attrs.field(eq=False)
    codes: npt.NDArray[np.int8] = attrs.field(eq=False)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def csv_rows(self) -> Iterator[list[str]]:
        """Rows in the canonical CSV layout, header first."""
        n_items = self.instrument.n_items
        yield [*CANONICAL_COLUMNS, *(f"q{i:02d}" for i in range(1, n_items + 1))]
        cell = {UNANSWERED_CODE: "", NOT_APPLICABLE_CODE: "NA"}
        for i in range(len(self)):
            answers = [cell.get(int(c), str(int(c))) for c in self.codes[i]]
            yield [
                str(self.patient_id[i]),
                str(self.nhs_number[i]),
                str(self.assessment_id[i]),
                str(self.assessed_on[i]),
                self.instrument.id,
                str(self.site[i]),
                *answers,
            ]


def synthetic_cohort(
    n_patients: int = 400,
    *,
    seed: int = 2016,
    instrument: Instrument = BUILTIN_INSTRUMENTS[0],
    follow_up_share: float = 0.6,
    missing_rate: float = 0.03,
    not_applicable_rate: float = 0.01,
    start: dt.date = dt.date(2024, 1, 8),
) -> SyntheticCohort:
    """A reproducible cohort: every patient has a baseline, about ``follow_up_share`` a follow-up
    5–13 months later (so some fall outside a 6–12 month window), with a modest average gain that
    is largest at low activation, as reported in the literature.
    """
    rng = np.random.default_rng(seed)
    k = instrument.n_items
    difficulty = np.linspace(-1.4, 1.4, k)
    thresholds = np.array([-2.2, -0.6, 2.8])
    theta0 = rng.normal(0.9, 1.3, n_patients)
    has_fu = rng.random(n_patients) < follow_up_share
    gain = rng.normal(0.45 - 0.25 * theta0, 0.7)
    theta1 = theta0 + gain

    base_day = rng.integers(0, 365, n_patients)
    fu_days = rng.integers(152, 396, n_patients)  # 5 to 13 months
    patient_idx = np.concatenate([np.arange(n_patients), np.flatnonzero(has_fu)])
    theta = np.concatenate([theta0, theta1[has_fu]])
    days = np.concatenate([base_day, (base_day + fu_days)[has_fu]])
    order = np.lexsort((days, patient_idx))
    patient_idx, theta, days = patient_idx[order], theta[order], days[order]
    n = len(theta)

    # Rating-scale Rasch draws: P(category c) ∝ exp(sum_{j<=c} (theta - b - tau_j)).
    steps = theta[:, None, None] - difficulty[None, :, None] - thresholds[None, None, :]
    logits = np.concatenate([np.zeros((n, k, 1)), np.cumsum(steps, axis=2)], axis=2)
    probs = np.exp(logits - logits.max(axis=2, keepdims=True))
    probs /= probs.sum(axis=2, keepdims=True)
    u = rng.random((n, k, 1))
    codes = (u > np.cumsum(probs, axis=2)[:, :, :-1]).sum(axis=2).astype(np.int8) + 1
    r = rng.random((n, k))
    codes[r < missing_rate] = UNANSWERED_CODE
    codes[(r >= missing_rate) & (r < missing_rate + not_applicable_rate)] = NOT_APPLICABLE_CODE

    dates = np.datetime64(start) + days.astype("timedelta64[D]")
    numbers = (test_nhs_number(int(s)) for s in rng.permutation(1_000_000))
    nhs = np.array(list(itertools.islice(filter(None, numbers), n_patients)))
    site_of_patient = rng.integers(0, len(SITES), n_patients)
    return SyntheticCohort(
        instrument=instrument,
        patient_id=np.array([f"P{p:06d}" for p in patient_idx]),
        nhs_number=nhs[patient_idx],
        assessment_id=np.array([f"A{i:07d}" for i in range(n)]),
        assessed_on=dates,
        site=np.array(SITES)[site_of_patient[patient_idx]],
        codes=codes,
    )
