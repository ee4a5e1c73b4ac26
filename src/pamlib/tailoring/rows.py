"""Tailoring a whole scored table: link each row to the patient's previous one, evaluate, and
produce the three recommendation columns.

``pamlib score --recommend`` and ``pamlib demo`` go through here. Rows are dictionaries of
strings as ``pamlib score`` writes them (see :data:`~pamlib.tailoring.context.STANDARD_COLUMNS`);
columnar scores (:class:`~pamlib.scoring.provider.BatchScores`) go through
:func:`tailor_batch`. Either way a row's *previous assessment* is the same patient's latest
earlier assessment **in the same table** that has a score or a level (date order; equal dates in
table order). Patients are linked by ``patient_id``, else ``nhs_number``; a row with neither has
no previous assessment.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pamlib.pathways import TailoringOutcome
from pamlib.tailoring.columns import ContextColumns, link_previous_array
from pamlib.tailoring.context import Context
from pamlib.tailoring.engine import Engine, build_engine, outcome_columns

if TYPE_CHECKING:
    from pamlib.instruments import Instrument
    from pamlib.plugins import PluginHost
    from pamlib.scoring.provider import BatchScores

__all__ = [
    "RECOMMENDATION_COLUMNS",
    "apply_recommendations",
    "link_previous",
    "recommend_rows",
    "recommendation_columns",
    "summary_lines",
    "tailor_batch",
]

#: The columns tailoring adds after the standard ones, in order.
RECOMMENDATION_COLUMNS: tuple[str, str, str] = (
    "recommended_pathways",
    "recommendation_rules",
    "reassess_by",
)


def link_previous(
    keys: Sequence[str], dates: Sequence[dt.date | None], has_score: Sequence[bool]
) -> list[int | None]:
    """For each row, the index of the same key's latest earlier row with a score, or ``None``.

    Empty keys and missing dates are never linked. Equal dates keep table order.

    >>> d = dt.date
    >>> link_previous(["p", "q", "p", "p"],
    ...               [d(2025, 6, 1), d(2025, 1, 1), d(2025, 1, 1), d(2025, 9, 1)],
    ...               [True, True, True, False])
    [2, None, None, 0]
    """
    days = np.array([d or "NaT" for d in dates], dtype="datetime64[D]").reshape(len(dates))
    linked = link_previous_array(np.array(keys, dtype=np.str_).reshape(len(keys)), days, has_score)
    return [None if j < 0 else j for j in linked.tolist()]


def contexts_from_rows(rows: Sequence[Mapping[str, str]]) -> list[Context]:
    """One context per row of a scored table, each linked to the patient's previous row; every
    bad row is reported at once (``row N`` counts data rows from 1)."""
    columns = ContextColumns.from_rows(rows)
    return [columns.context(i) for i in range(len(columns))]


def recommend_rows(rows: Sequence[Mapping[str, str]], engine: Engine) -> list[TailoringOutcome]:
    """The tailoring outcome of every row of a scored table, in table order."""
    return engine.evaluate_columns(ContextColumns.from_rows(rows))


def recommendation_columns(outcomes: Iterable[TailoringOutcome]) -> dict[str, list[str]]:
    """The three :data:`RECOMMENDATION_COLUMNS` for ``outcomes``, as lists of strings."""
    columns: dict[str, list[str]] = {name: [] for name in RECOMMENDATION_COLUMNS}
    lists = list(columns.values())
    for outcome in outcomes:
        for column, value in zip(lists, outcome_columns(outcome), strict=True):
            column.append(value)
    return columns


def apply_recommendations(
    table_rows: Sequence[Mapping[str, str]]
    | Mapping[str, Sequence[str | None] | npt.NDArray[np.str_]],
    rules: Engine | Iterable[str | os.PathLike[str]] = (),
    *,
    host: PluginHost | None = None,
) -> dict[str, list[str]]:
    """The recommendation columns for a scored table, one value per row, in table order.

    ``table_rows`` is a list of rows (dictionaries of strings, as from :class:`csv.DictReader`)
    or the table as columns (a mapping of column name to strings). ``rules`` is a ready
    :class:`Engine`, or site rule files to add to every plugin's rules (pamlib's defaults among
    them). What ``pamlib score --recommend --rules FILE`` appends.
    """
    engine = rules if isinstance(rules, Engine) else build_engine(rules, host=host)
    if isinstance(table_rows, Mapping):
        columns = ContextColumns.from_columns(table_rows)
    else:
        columns = ContextColumns.from_rows(table_rows)
    return engine.table_columns(columns)


def tailor_batch(
    engine: Engine,
    *,
    instrument: Instrument,
    scores: BatchScores,
    assessment_id: npt.ArrayLike,
    patient_key: npt.ArrayLike,
    assessed_on: npt.ArrayLike,
    site: npt.ArrayLike | None = None,
    attributes: Mapping[str, npt.ArrayLike] | None = None,
) -> list[TailoringOutcome]:
    """Outcomes for columnar scores (one batch of one instrument), linked within the batch.

    ``patient_key`` holds ``""`` where a row has no patient to link; ``assessed_on`` is an
    array of ``datetime64[D]`` (or ISO strings); ``attributes`` are columns of strings, empty
    where not given. :meth:`Engine.table_columns` on :meth:`ContextColumns.from_batch` gives the
    three output columns directly.
    """
    columns = ContextColumns.from_batch(
        instrument=instrument,
        scores=scores,
        assessment_id=assessment_id,
        patient_key=patient_key,
        assessed_on=assessed_on,
        site=site,
        attributes=attributes,
    )
    return engine.evaluate_columns(columns)


def summary_lines(outcomes: Sequence[TailoringOutcome]) -> list[str]:
    """A few lines for people: how many got each pathway, how many none and why, suppressions."""
    lines = [f"Tailored {len(outcomes)} assessments:"]
    counts = Counter(r.pathway for o in outcomes for r in o.recommendations)
    for pathway, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {pathway}: {n}")
    suppressed = Counter(r.pathway for o in outcomes for r in o.suppressed)
    for pathway, n in sorted(suppressed.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {pathway} suppressed: {n}")
    none = Counter(o.no_pathway_reason for o in outcomes if o.no_pathway_reason)
    for reason, n in sorted(none.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        lines.append(f"  no pathway ({reason}): {n}")
    return lines
