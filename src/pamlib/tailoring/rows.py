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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.pathways import TailoringOutcome
from pamlib.tailoring.columns import ContextColumns, link_previous_array
from pamlib.tailoring.context import Context
from pamlib.tailoring.engine import Engine, build_engine, outcome_columns

if TYPE_CHECKING:
    import pyarrow as pa

    from pamlib.instruments import Instrument
    from pamlib.levels import CutpointSet
    from pamlib.plugins import PluginHost
    from pamlib.scoring.provider import BatchScores
    from pamlib.tables.scored import ScoredTable

__all__ = [
    "RECOMMENDATION_COLUMNS",
    "Tailoring",
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


def _list_type() -> pa.DataType:
    import pyarrow as pa

    return pa.list_(pa.string())


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
    """The tailoring outcome of every row of a scored table, in table order; levels checked
    against their scores as :func:`tailor` checks them."""
    return engine.evaluate_columns(ContextColumns.from_rows(rows, cutpoints=_cutpoint_sets(None)))


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


def _cutpoint_sets(host: PluginHost | None) -> Iterable[CutpointSet]:
    """The cut-point sets a table's levels are checked against: every set the plugins
    register (pamlib's own among them), as scoring checks a provider's levels."""
    from pamlib.plugins import get_host

    return (host or get_host()).cutpoint_sets()


def no_pathway_summary_of(table: ScoredTable) -> list[str]:
    """:func:`no_pathway_summary` of a tailored table's columns, counted over their distinct
    values: no Python object per row, however many rows."""
    reasons, reason_of = table.text_codes("no_pathway_reason")
    without = _empty_texts(table, "recommended_pathways")
    counts = np.bincount(reason_of[without], minlength=len(reasons))
    tally: Counter[str] = Counter()
    for reason, n in zip(reasons, counts.tolist(), strict=True):
        if n:
            tally[reason or "no reason recorded"] += n
    return _no_pathway_lines(len(table), tally)


def _empty_texts(table: ScoredTable, name: str) -> npt.NDArray[np.bool_]:
    """Which rows of a column are empty as :meth:`ScoredTable.text
    <pamlib.tables.scored.ScoredTable.text>` reads them (lists ``;``-joined, null empty),
    looked at a piece of the column at a time: joined whole, a column of lists would be
    another copy of its text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if name not in table.column_names:
        return np.ones(len(table), dtype=np.bool_)
    parts = [np.zeros(0, dtype=np.bool_)]
    for chunk in table.column(name).chunks:
        text = chunk
        if pa.types.is_list(chunk.type):
            text = pc.binary_join(chunk, ";")
        elif not pa.types.is_string(chunk.type):
            text = pc.cast(chunk, pa.string())
        empty = pc.equal(pc.fill_null(text, ""), "")
        parts.append(np.asarray(empty.to_numpy(zero_copy_only=False), dtype=np.bool_))
    return np.concatenate(parts)


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
    mapping of column name to strings); rows and columns are checked as a ScoredTable first,
    and each row's level against its score at its cut-point set (every set the plugins
    register): a level its score contradicts is a :class:`~pamlib.errors.ValidationError`.
    ``rules`` is a ready :class:`Engine`, or site rule files to add to every plugin's rules
    (pamlib's defaults among them). What ``pamlib score --recommend --rules FILE`` appends.
    """
    from pamlib.tables.scored import ScoredTable

    engine = rules if isinstance(rules, Engine) else build_engine(_rule_files(rules), host=host)
    sets = _cutpoint_sets(host)
    if isinstance(table_rows, ScoredTable):
        columns = ContextColumns.from_scored(table_rows, cutpoints=sets)
    elif isinstance(table_rows, Mapping):
        columns = ContextColumns.from_columns(table_rows, cutpoints=sets)
    else:
        columns = ContextColumns.from_rows(table_rows, cutpoints=sets)
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
    its path alone. A row whose level is not the level of its score at its cut-point set (one
    the plugins register) is a :class:`~pamlib.errors.ValidationError` listing such rows.
    """
    return Tailoring.of(scored, rules, host=host).table()


@attrs.frozen(eq=False, repr=False)
class Tailoring:
    """A scored table with its tailoring decided, before the recommendation columns are made:
    rows decided alike form a group, whose pathways, rules and "no pathway" reason are held
    once (a group's code a row, and each row's reassessment date).

    :meth:`table` is :func:`tailor`'s table; :meth:`write` writes that table a piece at a time,
    each piece's columns made as it is written, so the columns — a copy of a group's texts for
    every row — are never all in memory: what ``pamlib score --recommend`` does.
    """

    scored: ScoredTable
    #: Per group: the ``recommended_pathways`` and ``recommendation_rules`` lists and the
    #: ``no_pathway_reason`` (null where a pathway is recommended).
    pathways: pa.Array
    rules: pa.Array
    reasons: pa.Array
    #: Each row's group, and its ``reassess_by`` date.
    group: npt.NDArray[np.integer[Any]]
    due: pa.Array

    def __repr__(self) -> str:
        return f"Tailoring(n_rows={len(self.group)}, groups={len(self.reasons)})"

    @classmethod
    def of(
        cls,
        scored: ScoredTable | Any,
        rules: Engine | Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
        *,
        host: PluginHost | None = None,
    ) -> Tailoring:
        """Decide the tailoring of every row of ``scored`` (as :func:`tailor` takes them)."""
        import pyarrow as pa

        from pamlib.tables.scored import ScoredTable, release_freed_memory
        from pamlib.tailoring.columns import _RELEASE_ROWS, _narrow

        if not isinstance(scored, ScoredTable):
            scored = ScoredTable.from_arrow(scored)
        engine = rules if isinstance(rules, Engine) else build_engine(_rule_files(rules), host=host)
        (pathways, rule_ids, reasons), inverse, due = engine._group_columns(
            ContextColumns.from_scored(scored, cutpoints=_cutpoint_sets(host))
        )
        if len(scored) >= _RELEASE_ROWS:
            # The contexts are gone: their memory goes back to the system before the
            # columns, which Arrow's allocator holds, are made.
            release_freed_memory()

        def listed(texts: list[str]) -> pa.Array:
            return pa.array([t.split(";") if t else [] for t in texts] or [[]], _list_type())

        return cls(
            scored=scored,
            pathways=listed(pathways),
            rules=listed(rule_ids),
            reasons=pa.array([r or None for r in reasons] or [None], pa.string()),
            group=_narrow(inverse, len(reasons)),
            due=pa.array(due, pa.date32(), mask=np.isnat(due)),
        )

    def columns(self, start: int, stop: int) -> dict[str, pa.Array]:
        """The recommendation columns of rows ``start`` to ``stop`` (excluded)."""
        import pyarrow as pa

        rows = pa.array(self.group[start:stop])
        return {
            "recommended_pathways": self.pathways.take(rows),
            "recommendation_rules": self.rules.take(rows),
            "reassess_by": self.due.slice(start, stop - start),
            "no_pathway_reason": self.reasons.take(rows),
        }

    def _pieces(self, max_rows: int | None = None) -> Iterator[tuple[int, int]]:
        """Row ranges over which every column the tailored table keeps is in one chunk, of at
        most ``max_rows`` rows: the ranges :meth:`pyarrow.Table.to_batches` of :meth:`table`
        gives, so that writing piece by piece writes the batches that writing the table
        would."""
        table = self.scored.to_arrow()
        kept = table.drop_columns([c for c in RECOMMENDATION_COLUMNS if c in table.column_names])
        start = 0
        for batch in kept.to_batches(max_chunksize=max_rows):
            yield start, start + batch.num_rows
            start += batch.num_rows

    def table(self) -> ScoredTable:
        """The scored table with the recommendation columns, made for every row: each column
        in the pieces the table's own columns are in, so that Arrow's working memory is a
        piece's."""
        import pyarrow as pa

        pieces = [self.columns(start, stop) for start, stop in self._pieces()]
        empty = self.columns(0, 0)
        return self.scored.with_columns(
            {
                name: pa.chunked_array([p[name] for p in pieces], type=column.type)
                for name, column in empty.items()
            }
        )

    def schema(self) -> pa.Schema:
        """The Arrow schema of :meth:`table` (and of every one of :meth:`pieces`)."""
        from pamlib.tables.scored import ScoredTable

        head = ScoredTable(self.scored.to_arrow().slice(0, 0)).with_columns(self.columns(0, 0))
        return head.to_arrow().schema

    def pieces(self, max_rows: int) -> Iterator[pa.Table]:
        """:meth:`table` in consecutive pieces of at most ``max_rows`` rows, each made as it
        is asked for: the batches writing the whole table would write, so a writer given them
        writes the same bytes while the recommendation columns are never all in memory."""
        from pamlib.tables.scored import ScoredTable

        table = self.scored.to_arrow()
        for start, stop in self._pieces(max_rows):
            piece = ScoredTable(table.slice(start, stop - start))
            yield piece.with_columns(self.columns(start, stop)).to_arrow()

    def no_pathway_summary(self) -> list[str]:
        """:func:`no_pathway_summary_of` :meth:`table`, counted by group."""
        counts = np.bincount(self.group, minlength=len(self.reasons)).tolist()
        lengths = self.pathways.value_lengths().to_pylist()
        tally: Counter[str] = Counter()
        for reason, length, n in zip(self.reasons.to_pylist(), lengths, counts, strict=True):
            if n and not length:
                tally[reason or "no reason recorded"] += n
        return _no_pathway_lines(len(self.group), tally)


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
