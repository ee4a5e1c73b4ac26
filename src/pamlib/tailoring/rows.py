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
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pamlib.errors import Problem, ValidationError
from pamlib.pathways import TailoringOutcome
from pamlib.results import Flag
from pamlib.tailoring.context import Context, parse_date
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
    groups: dict[str, list[int]] = {}
    for i, (key, day) in enumerate(zip(keys, dates, strict=True)):
        if key and day is not None:
            groups.setdefault(key, []).append(i)
    out: list[int | None] = [None] * len(keys)
    for members in groups.values():
        members.sort(key=lambda i: (dates[i], i))
        last: int | None = None
        for i in members:
            out[i] = last
            if has_score[i]:
                last = i
    return out


def _key(row: Mapping[str, str]) -> str:
    return (row.get("patient_id") or "").strip() or (row.get("nhs_number") or "").strip()


def _has_score(row: Mapping[str, str]) -> bool:
    status = (row.get("status") or "").strip().lower()
    if status.startswith("not"):
        return False
    return bool((row.get("score") or "").strip() or (row.get("level") or "").strip("0 "))


def contexts_from_rows(rows: Sequence[Mapping[str, str]]) -> list[Context]:
    """One context per row, each linked to the patient's previous row; every bad row is
    reported at once (``row N`` counts data rows from 1)."""
    problems: list[Problem] = []
    dates: list[dt.date | None] = []
    for row in rows:
        try:
            dates.append(parse_date(row.get("assessed_on")))
        except ValueError:
            dates.append(None)
    previous = link_previous([_key(r) for r in rows], dates, [_has_score(r) for r in rows])
    contexts: list[Context] = []
    for number, (row, prev) in enumerate(zip(rows, previous, strict=True), start=1):
        try:
            contexts.append(
                Context.from_row(
                    row, rows[prev] if prev is not None else None, where=f"row {number}"
                )
            )
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(f"cannot tailor: {len(problems)} problem(s) in the table", problems)
    return contexts


def recommend_rows(rows: Sequence[Mapping[str, str]], engine: Engine) -> list[TailoringOutcome]:
    """The tailoring outcome of every row of a scored table, in table order."""
    return engine.evaluate_many(contexts_from_rows(rows))


def recommendation_columns(outcomes: Iterable[TailoringOutcome]) -> dict[str, list[str]]:
    """The three :data:`RECOMMENDATION_COLUMNS` for ``outcomes``, as lists of strings."""
    columns: dict[str, list[str]] = {name: [] for name in RECOMMENDATION_COLUMNS}
    lists = list(columns.values())
    for outcome in outcomes:
        for column, value in zip(lists, outcome_columns(outcome), strict=True):
            column.append(value)
    return columns


def apply_recommendations(
    table_rows: Sequence[Mapping[str, str]],
    rules: Engine | Iterable[str | os.PathLike[str]] = (),
    *,
    host: PluginHost | None = None,
) -> dict[str, list[str]]:
    """The recommendation columns for a scored table.

    ``rules`` is a ready :class:`Engine`, or site rule files to add to every plugin's rules
    (pamlib's defaults among them). What ``pamlib score --recommend --rules FILE`` appends.
    """
    engine = rules if isinstance(rules, Engine) else build_engine(rules, host=host)
    return recommendation_columns(recommend_rows(table_rows, engine))


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
    where not given.
    """
    from pamlib.scoring.provider import flags_from_bits

    ids = np.asarray(assessment_id, dtype=np.str_)
    keys = np.asarray(patient_key, dtype=np.str_).tolist()
    days = np.asarray(assessed_on, dtype="datetime64[D]")
    dates: list[dt.date | None] = [
        None if np.isnat(d) else dt.date.fromisoformat(str(d)) for d in days
    ]
    sites = None if site is None else np.asarray(site, dtype=np.str_).tolist()
    attrs_cols = {k: np.asarray(v, dtype=np.str_).tolist() for k, v in (attributes or {}).items()}
    level = scores.level.tolist()
    score = scores.score.tolist()
    scored = scores.scored.tolist()
    flag_bits = scores.flags.tolist()
    has_score = [
        bool(s) and (lv > 0 or not math.isnan(x))
        for s, lv, x in zip(scored, level, score, strict=True)
    ]
    previous = link_previous(keys, dates, has_score)
    reasons = scores.reason_code.tolist()
    bit_flags: dict[int, frozenset[str]] = {}
    contexts: list[Context] = []
    for i in range(len(scores)):
        flags = bit_flags.get(flag_bits[i])
        if flags is None:
            flags = frozenset(str(f) for f in flags_from_bits(flag_bits[i]))
            flags = bit_flags[flag_bits[i]] = flags | ({str(Flag.DEMO)} if scores.demo else set())
        j = previous[i]
        contexts.append(
            Context(
                assessment_id=str(ids[i]),
                scored=scored[i],
                score=score[i] if scored[i] and not math.isnan(score[i]) else None,
                level=level[i] if scored[i] and level[i] > 0 else None,
                previous_score=None if j is None or math.isnan(score[j]) else score[j],
                previous_level=None if j is None or level[j] <= 0 else level[j],
                assessed_on=dates[i],
                instrument=instrument.id,
                site=(sites[i] or None) if sites is not None else None,
                flags=flags,
                attributes={k: col[i] for k, col in attrs_cols.items() if col[i]},
                cutpoint_set=scores.cutpoint_set,
                not_scored_reason=None
                if scored[i]
                else scores.reasons.get(reasons[i], reasons[i]) or None,
            )
        )
    return engine.evaluate_many(contexts)


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
