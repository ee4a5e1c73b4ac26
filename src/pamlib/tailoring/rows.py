"""Tailoring a whole scored table: link each row to the patient's previous one, evaluate, and
produce the recommendation columns.

``pamlib score --recommend`` and ``pamlib demo`` go through here. A row that gets no pathway
always says why, in ``no_pathway_reason``, and :func:`no_pathway_summary` counts such rows.
Rows are dictionaries of strings as ``pamlib score`` writes them (see
:data:`~pamlib.tailoring.context.STANDARD_COLUMNS`); columnar scores
(:class:`~pamlib.scoring.provider.BatchScores`) go through :func:`tailor_batch`. Either way a
row's *previous assessment* is the same patient's latest earlier assessment **in the same
table** that has a score or a level (date order; equal dates in table order). Patients are
linked by :meth:`ScoredTable.patient_keys <pamlib.tables.scored.ScoredTable.patient_keys>`
(``patient_id``, else the NHS number, else ``nhs_pseudonym``); a table with a row that has
none of them is refused.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
    from pamlib.tables.scored import ScoredTable

__all__ = [
    "RECOMMENDATION_COLUMNS",
    "apply_recommendations",
    "link_previous",
    "no_pathway_summary",
    "recommend_rows",
    "recommendation_columns",
    "summary_lines",
    "tailor",
    "tailor_batch",
]

#: The columns tailoring adds after the standard ones, in order. ``no_pathway_reason`` is
#: empty where a pathway is recommended and says why where none is (suppressed by a rule, not
#: scored, no level, no rule for these facts).
RECOMMENDATION_COLUMNS: tuple[str, str, str, str] = (
    "recommended_pathways",
    "recommendation_rules",
    "reassess_by",
    "no_pathway_reason",
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
    return list(ContextColumns.from_rows(rows).contexts())


def recommend_rows(rows: Sequence[Mapping[str, str]], engine: Engine) -> list[TailoringOutcome]:
    """The tailoring outcome of every row of a scored table, in table order."""
    return engine.evaluate_columns(ContextColumns.from_rows(rows))


def recommendation_columns(outcomes: Iterable[TailoringOutcome]) -> dict[str, list[str]]:
    """The :data:`RECOMMENDATION_COLUMNS` for ``outcomes``, as lists of strings."""
    columns: dict[str, list[str]] = {name: [] for name in RECOMMENDATION_COLUMNS}
    lists = list(columns.values())
    for outcome in outcomes:
        values = (*outcome_columns(outcome), outcome.no_pathway_reason or "")
        for column, value in zip(lists, values, strict=True):
            column.append(value)
    return columns


def no_pathway_summary(columns: Mapping[str, Sequence[str]]) -> list[str]:
    """Lines for a run's summary: how many rows got a pathway, how many none, and why.

    ``columns`` are the :data:`RECOMMENDATION_COLUMNS` of a table (what
    :func:`apply_recommendations` returns). Reasons are counted most frequent first.

    >>> no_pathway_summary({"recommended_pathways": ["a", "", ""],
    ...                     "no_pathway_reason": ["", "not scored (empty)", "not scored (empty)"]})
    ['tailored 3 rows: 1 with a pathway, 2 without', '  no pathway 2: not scored (empty)']
    """
    pathways = columns["recommended_pathways"]
    reasons = Counter(
        reason or "no reason recorded"
        for pathway, reason in zip(pathways, columns["no_pathway_reason"], strict=True)
        if not pathway
    )
    return _no_pathway_lines(len(pathways), reasons)


def _rule_files(
    rules: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> list[str | os.PathLike[str]]:
    """Rule files as a list: one path given alone is one file, not the characters of its name;
    anything else is refused before a file is looked for."""
    from pamlib.errors import ConfigurationError

    given = [rules] if isinstance(rules, str | os.PathLike) else rules
    if not isinstance(given, Iterable):
        raise ConfigurationError(f"rules are rule files' paths, not a {type(rules).__name__}")
    files = list(given)
    for item in files:
        if not isinstance(item, str | os.PathLike):
            raise ConfigurationError(f"a rule file is a path, not a {type(item).__name__}")
    return files


def no_pathway_summary_of(table: ScoredTable) -> list[str]:
    """:func:`no_pathway_summary` of a tailored table's columns, counted over their distinct
    values: no Python object per row, however many rows."""
    pathways, pathway_of = table.text_codes("recommended_pathways")
    reasons, reason_of = table.text_codes("no_pathway_reason")
    without = np.array([not p for p in pathways] or [False], dtype=np.bool_)[pathway_of]
    counts = np.bincount(reason_of[without], minlength=len(reasons))
    tally: Counter[str] = Counter()
    for reason, n in zip(reasons, counts.tolist(), strict=True):
        if n:
            tally[reason or "no reason recorded"] += n
    return _no_pathway_lines(len(table), tally)


def _no_pathway_lines(rows: int, reasons: Counter[str]) -> list[str]:
    without = sum(reasons.values())
    lines = [f"tailored {rows} rows: {rows - without} with a pathway, {without} without"]
    for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  no pathway {n}: {reason}")
    return lines


def apply_recommendations(
    table_rows: ScoredTable
    | Sequence[Mapping[str, str]]
    | Mapping[str, Sequence[str | None] | npt.NDArray[np.str_]],
    rules: Engine | Iterable[str | os.PathLike[str]] = (),
    *,
    host: PluginHost | None = None,
) -> dict[str, list[str]]:
    """The recommendation columns for a scored table, one value per row, in table order.

    ``table_rows`` is a :class:`~pamlib.tables.scored.ScoredTable`, a list of rows
    (dictionaries of strings, as from :class:`csv.DictReader`) or the table as columns (a
    mapping of column name to strings); rows and columns are checked as a ScoredTable first.
    ``rules`` is a ready :class:`Engine`, or site rule files to add to every plugin's rules
    (pamlib's defaults among them). What ``pamlib score --recommend --rules FILE`` appends.
    """
    from pamlib.tables.scored import ScoredTable

    engine = rules if isinstance(rules, Engine) else build_engine(_rule_files(rules), host=host)
    if isinstance(table_rows, ScoredTable):
        columns = ContextColumns.from_scored(table_rows)
    elif isinstance(table_rows, Mapping):
        columns = ContextColumns.from_columns(table_rows)
    else:
        columns = ContextColumns.from_rows(table_rows)
    return engine.table_columns(columns)


def tailor(
    scored: ScoredTable | Any,
    rules: Engine | Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    *,
    host: PluginHost | None = None,
) -> ScoredTable:
    """The scored table with the recommendation columns added (or replaced): each row's
    ``recommended_pathways`` and ``recommendation_rules`` (lists), ``reassess_by`` (a date) and
    ``no_pathway_reason``, from ``rules`` — a ready :class:`Engine`, or site rule files added to
    every plugin's rules (pamlib's defaults among them). A person's previous assessment is found
    by the table's patient key (:meth:`~pamlib.tables.scored.ScoredTable.patient_keys`).

    What ``pamlib score --recommend`` writes; the table stays in memory, NHS numbers held apart
    included, for :func:`~pamlib.reporting.build_report` or a writer. ``scored`` may also be
    anything :meth:`ScoredTable.from_arrow <pamlib.tables.scored.ScoredTable.from_arrow>` reads
    (a pyarrow Table, a DataFrame), checked as it checks them; one rule file may be given as
    its path alone.
    """
    import pyarrow as pa

    from pamlib.tables.scored import ScoredTable

    if not isinstance(scored, ScoredTable):
        scored = ScoredTable.from_arrow(scored)
    engine = rules if isinstance(rules, Engine) else build_engine(_rule_files(rules), host=host)
    (pathways, rule_ids, reasons), inverse, due = engine._group_columns(
        ContextColumns.from_scored(scored)
    )
    # Each group's values once, then taken for its rows: no Python object per row.
    rows = pa.array(inverse, pa.int64())

    def listed(texts: list[str]) -> pa.Array:
        lists = [t.split(";") if t else [] for t in texts] or [[]]
        return pa.array(lists, pa.list_(pa.string())).take(rows)

    return scored.with_columns(
        {
            "recommended_pathways": listed(pathways),
            "recommendation_rules": listed(rule_ids),
            "reassess_by": pa.array(due, pa.date32(), mask=np.isnat(due)),
            "no_pathway_reason": pa.array([r or None for r in reasons] or [None], pa.string()).take(
                rows
            ),
        }
    )


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
