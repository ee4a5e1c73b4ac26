"""Tailoring for ``pamlib demo``: pamlib's defaults plus the example site file, on a synthetic
cohort with made-up attributes (no real patients)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pamlib.tailoring.columns import ContextColumns
from pamlib.tailoring.default_rules import EXAMPLE_SITE_RULES
from pamlib.tailoring.engine import build_engine
from pamlib.tailoring.reassessment import reassessment_status
from pamlib.tailoring.rows import summary_lines

if TYPE_CHECKING:
    import datetime as dt

    from pamlib.plugins import PluginHost
    from pamlib.scoring.provider import BatchScores
    from pamlib.synthetic import SyntheticCohort


def synthetic_attributes(n: int, seed: int) -> dict[str, npt.NDArray[np.str_]]:
    """Made-up ``condition``, ``interpreter`` and ``accessibility`` columns for ``n`` rows, so
    the example site file's rules have something to act on. Shares are invented."""
    rng = np.random.default_rng(seed)
    condition = rng.choice(
        np.array(["", "COPD", "diabetes", "CKD", "COPD;diabetes"]), n, p=[0.5, 0.15, 0.2, 0.1, 0.05]
    )
    interpreter = rng.choice(
        np.array(["", "Polish", "Urdu", "Bengali"]), n, p=[0.94, 0.02, 0.02, 0.02]
    )
    accessibility = rng.choice(
        np.array(["", "large print", "wheelchair user"]), n, p=[0.92, 0.05, 0.03]
    )
    return {"condition": condition, "interpreter": interpreter, "accessibility": accessibility}


def demo_lines(
    cohort: SyntheticCohort,
    scores: BatchScores,
    *,
    seed: int,
    on: dt.date | None = None,
    host: PluginHost | None = None,
) -> list[str]:
    """What ``pamlib demo`` prints about tailoring: pathways recommended and suppressed, why
    some assessments get none, and (given ``on``) how many patients are overdue."""
    engine = build_engine([EXAMPLE_SITE_RULES], host=host)
    columns = ContextColumns.from_batch(
        instrument=cohort.instrument,
        scores=scores,
        assessment_id=cohort.assessment_id,
        patient_key=cohort.patient_id,
        assessed_on=cohort.assessed_on,
        site=cohort.site,
        attributes=synthetic_attributes(len(cohort), seed),
    )
    outcomes = engine.evaluate_columns(columns)
    title = (
        f"Tailoring with pamlib's default rules and the example site file "
        f"({len(engine.rules)} rules; synthetic attributes):"
    )
    lines = [title, *summary_lines(outcomes)[1:]]
    if on is not None:
        patients = np.asarray(cohort.patient_id, dtype=np.str_).tolist()
        days = columns.assessed_on.astype(object).tolist()
        statuses = reassessment_status(
            [
                (patients[i], o.assessment_id, days[i], o.reassess_by)
                for i, o in enumerate(outcomes)
                if days[i] is not None
            ],
            on,
        )
        overdue = sum(1 for s in statuses if s.status == "overdue")
        lines.append(
            f"  reassessment overdue on {on.isoformat()}: {overdue} of {len(statuses)} patients"
        )
    return lines
