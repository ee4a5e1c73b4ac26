"""Builders of scored-table rows for the reporting tests (fixtures, since test modules cannot
import each other under ``--import-mode=importlib``)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import pytest

Row = dict[str, str]
MakeRow = Callable[..., Row]
MakeCohort = Callable[..., list[Row]]


def level_of(score: float) -> int:
    """Cut points of the "current" set (PAM-FACTS.md), applied to a one-decimal score."""
    if score <= 47.0:
        return 1
    if score <= 55.1:
        return 2
    if score <= 67.0:
        return 3
    return 4


@pytest.fixture
def make_row() -> MakeRow:
    """``make_row(patient, "2024-01-31", 52.3)``: a scored-table row, level from the score."""
    counter = iter(range(1, 1_000_000))

    def make(
        patient: str,
        assessed_on: str | dt.date,
        score: float | None = None,
        *,
        status: str | None = None,
        level: int | None = None,
        flags: str = "",
        demo: bool = False,
        assessment_id: str | None = None,
        **extra: str,
    ) -> Row:
        if status is None:
            status = "scored" if score is not None else "not-scored"
        if level is None and score is not None:
            level = level_of(score)
        day = assessed_on.isoformat() if isinstance(assessed_on, dt.date) else assessed_on
        return {
            "assessment_id": assessment_id or f"A{next(counter):07d}",
            "patient_id": patient,
            "assessed_on": day,
            "instrument": "PAM-13",
            "status": status,
            "score": "" if score is None else f"{score:.1f}",
            "level": "" if level is None else str(level),
            "cutpoint_set": "current" if level is not None else "",
            "flags": flags,
            "demo": "true" if demo else "false",
            **extra,
        }

    return make


@pytest.fixture
def make_cohort(make_row: MakeRow) -> MakeCohort:
    """A synthetic cohort: patients at a few sites, 1–4 assessments 3–14 months apart."""

    def make(
        seed: int = 7,
        n_patients: int = 400,
        sites: tuple[str, ...] = ("north", "south", "east"),
        *,
        demo: bool = False,
    ) -> list[Row]:
        rnd = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not security
        rows: list[Row] = []
        for p in range(n_patients):
            site = rnd.choice(sites)
            day = dt.date(2023, 1, 1) + dt.timedelta(days=rnd.randrange(500))
            score = round(min(100.0, max(0.0, rnd.gauss(56, 15))), 1)
            for _ in range(rnd.choice((1, 2, 2, 2, 3, 4))):
                roll = rnd.random()
                if roll < 0.06:
                    rows.append(make_row(f"P{p:05d}", day, None, demo=demo, site=site))
                elif roll < 0.08:  # a raw-sum provider: scored, but no 0–100 score
                    rows.append(make_row(f"P{p:05d}", day, None, status="scored", site=site))
                else:
                    flags = "extreme-response" if rnd.random() < 0.04 else ""
                    rows.append(
                        make_row(f"P{p:05d}", day, score, flags=flags, demo=demo, site=site)
                    )
                day += dt.timedelta(days=rnd.randrange(90, 430))
                score = round(min(100.0, max(0.0, score + rnd.gauss(1.5, 8))), 1)
        rnd.shuffle(rows)
        return rows

    return make
