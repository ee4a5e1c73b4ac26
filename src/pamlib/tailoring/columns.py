"""Contexts for many assessments at once, as columns — the bulk path of tailoring.

A file rule's outcome depends only on which rules match, so the engine evaluates conditions as
boolean masks over these columns and decides once per distinct combination of matching rules;
rows only differ in their id and reassessment date. :meth:`ContextColumns.contexts` gives rows
back as :class:`~pamlib.tailoring.context.Context` objects; the one-assessment API
(:meth:`Conditions.matches <pamlib.tailoring.Conditions.matches>`,
:meth:`Engine.evaluate <pamlib.tailoring.engine.Engine.evaluate>`) is a batch of one through
these columns, never a second implementation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np
import numpy.typing as npt

from pamlib._months import add_months_array
from pamlib.errors import Problem, ValidationError
from pamlib.levels import round_half_away_array
from pamlib.tailoring.context import (
    _CONTEXT_COLUMNS,
    _FLAG_SPLIT,
    _NOT_ATTRIBUTES,
    STANDARD_COLUMNS,
    Context,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from pamlib.instruments import Instrument
    from pamlib.scoring.provider import BatchScores
    from pamlib.tables.scored import ScoredTable

__all__ = ["ContextColumns", "add_months_array", "by_unique", "codes_of", "link_previous_array"]

Bools = npt.NDArray[np.bool_]
Strs = npt.NDArray[np.str_]
Days = npt.NDArray[np.datetime64]


def link_previous_array(
    keys: npt.ArrayLike, dates: npt.ArrayLike, has_score: npt.ArrayLike
) -> npt.NDArray[np.intp]:
    """For each row, the index of the same key's latest earlier row with a score, else ``-1``.

    Rows with an empty (or whitespace-only) key or no date are never linked; equal dates keep
    table order.
    """
    k = _key_codes(keys)
    d = np.asarray(dates, dtype="datetime64[D]")
    scored = np.asarray(has_score, dtype=np.bool_)
    n = len(k)
    out = np.full(n, -1, dtype=np.intp)
    valid = (k >= 0) & ~np.isnat(d)
    if not valid.any():
        return out
    order = np.lexsort((np.arange(n), d, k))
    order = order[valid[order]]
    sorted_keys = k[order]
    pos = np.arange(len(order))
    starts = np.ones(len(order), dtype=np.bool_)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group_start = np.maximum.accumulate(np.where(starts, pos, 0))
    last_scored = np.maximum.accumulate(np.where(scored[order], pos, -1))
    previous = np.concatenate(([-1], last_scored[:-1]))
    linked = previous >= group_start
    out[order[linked]] = order[previous[linked]]
    return out


def _key_codes(keys: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """A number for each distinct key (see :func:`_text_codes`), ``-1`` for an empty one or one
    of only whitespace: such a key is no patient (as for a scored table's ``patient_id``), and
    kept it would make every such row one person. Other keys are compared as given."""
    distinct, index = _text_codes(keys)
    codes = index.astype(np.int64)
    from pamlib.tables.scored import blank_texts

    codes[blank_texts(distinct)[index]] = -1
    return codes


def _previous_levels(
    level: npt.NDArray[np.int8],
    cutpoint_set: Strs,
    previous_level: npt.NDArray[np.int8],
    previous_cutpoint_set: Strs,
) -> npt.NDArray[np.int8]:
    """``previous_level`` where it may be compared with ``level``, else ``0``.

    A level is a band of one cut-point set (70.0 is level 3 under ``hibbard-2005``, 69.0 level 4
    under ``current``): a row with a level whose set is not its previous row's (an unnamed set
    included) gets no previous level, so no transition, rather than a false one. The scores,
    on one 0-100 scale, stay comparable. A row without a level keeps its previous level.
    """
    differ = (level > 0) & (cutpoint_set != previous_cutpoint_set)
    return np.where(differ, 0, previous_level).astype(np.int8)


def _text_codes(values: npt.ArrayLike) -> tuple[list[str], npt.NDArray[np.intp]]:
    """:func:`_distinct` of a column of text (NumPy strings, Python strings or a list),
    compared as NumPy strings compare them (trailing NULs dropped): hashed by Arrow, where
    Python's dictionary takes a call a row; by that dictionary where Arrow cannot hold the
    text (a lone surrogate)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    given = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    try:
        text = pc.fill_null(pa.array(given.reshape(-1), pa.string()), "")
    except (pa.ArrowException, UnicodeError):
        return _distinct(np.asarray(values, dtype=np.str_).reshape(-1))
    encoded = pc.dictionary_encode(pc.utf8_rtrim(text, characters="\x00"))
    index = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
    return [str(v) for v in encoded.dictionary.to_pylist()], index


def _distinct(values: Strs) -> tuple[list[str], npt.NDArray[np.intp]]:
    """The distinct values in order of first appearance, and each row's index into them.

    A dictionary pass: sorting strings (``np.unique``) costs more than hashing them.
    """
    seen: dict[str, int] = {}
    index = np.fromiter(
        (seen.setdefault(v, len(seen)) for v in values.tolist()), dtype=np.intp, count=len(values)
    )
    return list(seen), index


def _fold_unique(values: Strs) -> Strs:
    """Casefold and strip through the distinct values (few, whatever the row count)."""
    distinct, index = _distinct(values)
    folded = np.array([v.strip().casefold() for v in distinct] or [""], dtype=np.str_)
    return folded[index]


def by_unique(values: Strs, test: Callable[[str], bool]) -> Bools:
    """``test`` applied to each distinct value once, spread back over the rows."""
    distinct, index = _distinct(values)
    results = np.array([test(v) for v in distinct] or [False], dtype=np.bool_)
    return results[index]


def codes_of(
    values: Strs, vocabulary: Mapping[str, int], *, fold: Callable[[str], str] | None = None
) -> npt.NDArray[np.intp]:
    """Each value's code in ``vocabulary`` (after ``fold``, when given), ``len(vocabulary)``
    for a value not in it; each distinct value folded and looked up once."""
    distinct, index = _distinct(values)
    other = len(vocabulary)
    keys = distinct if fold is None else [fold(v) for v in distinct]
    codes = np.array([vocabulary.get(v, other) for v in keys] or [other], dtype=np.intp)
    return codes[index]


def _ids(values: Iterable[str]) -> npt.NDArray[np.object_]:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _strs(values: Iterable[str | None], n: int) -> Strs:
    return np.array([v or "" for v in values], dtype=np.str_).reshape(n)


@attrs.frozen(eq=False, repr=False)
class ContextColumns:
    """The facts of ``n`` assessments as equal-length columns.

    Missing numbers are NaN, a missing level ``0``, missing text ``""``, a missing date NaT.
    Text columns are NumPy strings, which drop trailing NUL characters (no CSV cell holds one);
    ``assessment_id`` is kept exactly. ``not_scored_reason`` may also be an object array of the
    same texts (a reason is a sentence: as NumPy strings each row would hold the longest).
    ``score`` and ``previous_score`` are as reported (one decimal, half away from zero);
    ``flags`` maps each flag present anywhere to a boolean column; ``attributes`` maps each
    attribute name to a column of raw values.
    """

    #: Object dtype: ids pass through exactly (NumPy's fixed-width strings drop trailing NULs).
    assessment_id: npt.NDArray[np.object_]
    scored: Bools
    score: npt.NDArray[np.float64]
    level: npt.NDArray[np.int8]
    previous_score: npt.NDArray[np.float64]
    previous_level: npt.NDArray[np.int8]
    assessed_on: Days
    instrument: Strs
    site: Strs
    language: Strs
    flags: Mapping[str, Bools]
    attributes: Mapping[str, Strs]
    cutpoint_set: Strs
    not_scored_reason: Strs | npt.NDArray[np.object_]
    _folded: dict[str, Strs] = attrs.field(factory=dict, alias="folded", repr=False)

    def __len__(self) -> int:
        return int(self.scored.shape[0])

    def __repr__(self) -> str:
        """Sizes and names only: never an assessment id or an attribute's value."""
        return (
            f"ContextColumns(n_rows={len(self)}, flags={sorted(self.flags)!r}, "
            f"attributes={sorted(self.attributes)!r})"
        )

    @property
    def change(self) -> npt.NDArray[np.float64]:
        """Score change since the previous assessment, as reported; NaN without both."""
        return round_half_away_array(self.score - self.previous_score, 1)

    @property
    def transition(self) -> Strs:
        out = np.full(len(self), "none", dtype="<U4")
        both = (self.level > 0) & (self.previous_level > 0)
        out[both & (self.level > self.previous_level)] = "up"
        out[both & (self.level < self.previous_level)] = "down"
        out[both & (self.level == self.previous_level)] = "same"
        return out

    def folded(self, name: str) -> Strs:
        """A text column (``site``, ``instrument``, ``language``) casefolded and stripped."""
        if name not in self._folded:
            self._folded[name] = _fold_unique(getattr(self, name))
        return self._folded[name]

    def attribute(self, name: str) -> Strs:
        """An attribute column, found ignoring case; empty strings where not supplied."""
        column = self.find_attribute(name)
        return column if column is not None else np.full(len(self), "", dtype=np.str_)

    def find_attribute(self, name: str) -> Strs | None:
        """An attribute column, found ignoring case; ``None`` when no row supplies it."""
        column = self.attributes.get(name)
        if column is None:
            folded = name.strip().casefold()
            matches = [v for k, v in self.attributes.items() if k.strip().casefold() == folded]
            column = matches[0] if matches else None
        return column

    def context(self, i: int) -> Context:
        """Row ``i`` as a :class:`Context`: :meth:`contexts` of that one row."""
        return next(self.contexts([i]))

    def contexts(self, rows: Sequence[int] | None = None) -> Iterator[Context]:
        """Every row (or the ``rows`` given, by index) as a :class:`Context`, in order; columns
        are converted to Python values once, not per row."""
        index = slice(None) if rows is None else np.asarray(rows, dtype=np.intp)
        ids = self.assessment_id[index].tolist()
        scored = self.scored[index].tolist()
        score = self.score[index].tolist()
        level = self.level[index].tolist()
        previous_score = self.previous_score[index].tolist()
        previous_level = self.previous_level[index].tolist()
        days = self.assessed_on[index].astype(object).tolist()
        instrument = self.instrument[index].tolist()
        site = self.site[index].tolist()
        language = self.language[index].tolist()
        flags = {f: column[index].tolist() for f, column in self.flags.items()}
        attributes = {k: v[index].tolist() for k, v in self.attributes.items()}
        cutpoints = self.cutpoint_set[index].tolist()
        reasons = self.not_scored_reason[index].tolist()
        for i in range(len(ids)):
            yield Context(
                assessment_id=ids[i],
                scored=scored[i],
                score=None if math.isnan(score[i]) else score[i],
                level=level[i] or None,
                previous_score=None if math.isnan(previous_score[i]) else previous_score[i],
                previous_level=previous_level[i] or None,
                assessed_on=days[i],
                instrument=instrument[i] or None,
                site=site[i] or None,
                language=language[i] or None,
                flags={f for f, column in flags.items() if column[i]},
                attributes={k: v[i] for k, v in attributes.items() if v[i]},
                cutpoint_set=cutpoints[i] or None,
                not_scored_reason=reasons[i] or None,
            )

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_contexts(cls, contexts: Sequence[Context]) -> ContextColumns:
        """Columns holding exactly these contexts (for tests and the object API)."""
        n = len(contexts)
        # A few arrays of several columns each, not one array a column: for one assessment
        # the number of NumPy calls is most of the cost.
        numbers = np.array(
            [
                [np.nan if c.score is None else c.score for c in contexts],
                [np.nan if c.previous_score is None else c.previous_score for c in contexts],
            ],
            dtype=np.float64,
        ).reshape(2, n)
        levels = np.array(
            [[c.level or 0 for c in contexts], [c.previous_level or 0 for c in contexts]],
            dtype=np.int8,
        ).reshape(2, n)
        texts = np.array(
            [
                [c.instrument or "" for c in contexts],
                [c.site or "" for c in contexts],
                [c.language or "" for c in contexts],
                [c.cutpoint_set or "" for c in contexts],
            ],
            dtype=np.str_,
        ).reshape(4, n)
        flag_names = sorted({f for c in contexts for f in c.flags})
        attr_names = sorted({a for c in contexts for a in c.attributes})
        return cls(
            assessment_id=_ids(c.assessment_id for c in contexts),
            scored=np.array([c.scored for c in contexts], dtype=np.bool_),
            score=numbers[0],
            level=levels[0],
            previous_score=numbers[1],
            previous_level=levels[1],
            assessed_on=np.array(
                [c.assessed_on or "NaT" for c in contexts], dtype="datetime64[D]"
            ).reshape(n),
            instrument=texts[0],
            site=texts[1],
            language=texts[2],
            flags={
                f: np.array([f in c.flags for c in contexts], dtype=np.bool_) for f in flag_names
            },
            attributes={
                a: _strs((c.attributes.get(a, "") for c in contexts), n) for a in attr_names
            },
            cutpoint_set=texts[3],
            not_scored_reason=_strs((c.not_scored_reason for c in contexts), n),
        )

    @classmethod
    def from_rows(
        cls, rows: Sequence[Mapping[str, str]], *, source: str = "rows"
    ) -> ContextColumns:
        """Columns from the rows of a scored table (dictionaries of strings, as from
        :class:`csv.DictReader`), through :meth:`from_scored`; ``source`` names the rows in
        problems (``rows: row 3``)."""
        return cls.from_scored(_table_of_rows(rows, source=source))

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, str],
        previous: Mapping[str, str] | None = None,
        *,
        where: str = "scored row",
    ) -> ContextColumns:
        """One row of a scored table as columns of one, with ``previous`` (the patient's
        previous row, if any) as its previous assessment: each is a table of one, checked by
        :meth:`from_rows` like any other (problems located ``where: row 1`` and
        ``where (previous): row 1``, every problem of both at once).

        ``previous`` must be what a table of both rows would link: the same patient key (see
        :class:`~pamlib.tables.scored.ScoredTable`), dated no later, another assessment id.
        Otherwise a :class:`~pamlib.errors.ValidationError` says which (never quoting either
        row's identifiers): someone else's or a later row would give this person a change and a
        transition that are not theirs."""
        tables: list[ScoredTable] = []
        failed: list[ValidationError] = []
        given = [(where, row)] + ([(f"{where} (previous)", previous)] if previous else [])
        for source, one in given:
            try:
                tables.append(_table_of_rows([one], source=source))
            except ValidationError as exc:
                failed.append(exc)
        if len(failed) == 1:
            raise failed[0]
        if failed:
            problems = [p for exc in failed for p in exc.problems]
            raise type(failed[0])(
                f"{where}: {len(problems)} problem(s) in the scored table", problems
            )
        current, *before = tables
        if not before:
            return cls.from_scored(current)
        _check_previous(current, before[0], f"{where} (previous)")
        return cls.from_scored(current).after(cls.from_scored(before[0]))

    def after(self, before: ContextColumns) -> ContextColumns:
        """These rows with ``before``'s rows (row for row) as their previous assessments, where
        those have a score or a level — the link :meth:`from_scored` makes within a table, the
        previous level left out as it leaves it out (levels of another cut-point set)."""
        has_score = before.scored & (~np.isnan(before.score) | (before.level > 0))
        return attrs.evolve(
            self,
            previous_score=np.where(has_score, before.score, np.nan),
            previous_level=_previous_levels(
                self.level,
                self.cutpoint_set,
                np.where(has_score, before.level, 0),
                before.cutpoint_set,
            ),
        )

    @classmethod
    def from_columns(
        cls,
        table: Mapping[str, Sequence[str | None] | Strs],
        n: int | None = None,
        *,
        source: str = "rows",
    ) -> ContextColumns:
        """:meth:`from_rows` for a table held as columns of text (lists or string arrays, equal
        lengths; ``None`` or ``""`` where empty) — what a columnar reader has in hand."""
        return cls.from_scored(_table_of_columns(table, n, source=source))

    @classmethod
    def from_scored(cls, table: ScoredTable) -> ContextColumns:
        """Columns from a checked :class:`~pamlib.tables.scored.ScoredTable`, from its typed
        columns, each row linked to its patient's previous row (see
        :mod:`pamlib.tailoring.rows`) by :meth:`~pamlib.tables.scored.ScoredTable.patient_keys`.
        """
        import pyarrow.compute as pc

        n = len(table)

        def text(name: str) -> Strs:
            distinct, index = table.text_codes(name)
            return _stripped(distinct)[index]

        scored = np.asarray(table.text("status") == "scored", dtype=np.bool_)
        score = np.asarray(pc.fill_null(table.column("score"), np.nan).to_numpy(), np.float64)
        score = np.where(scored, round_half_away_array(score, 1), np.nan)
        level = np.asarray(pc.fill_null(table.column("level"), 0).to_numpy(), dtype=np.int8)
        level = np.where(scored, level, 0).astype(np.int8)
        days = table.column("assessed_on").to_numpy()
        assessed_on = np.asarray(days, dtype="datetime64[D]").reshape(n)
        demo = np.asarray(table.column("demo").to_numpy(), dtype=np.bool_)
        flags = _flag_columns(*table.text_codes("flags"), demo)
        has_score = scored & (~np.isnan(score) | (level > 0))
        previous = link_previous_array(table.patient_keys(), assessed_on, has_score)
        linked = previous >= 0
        safe = np.where(linked, previous, 0)
        prev_ok = linked & scored[safe]
        cutpoints = text("cutpoint_set")
        # Reasons as Python strings, each distinct one held once: as NumPy strings every row
        # would take four bytes a character of the longest (a sentence: 400 MB a million rows).
        reason = _objects(*table.text_codes("reason"))
        reason = np.where(reason != "", reason, _objects(*table.text_codes("reason_code")))
        attributes = {
            name: text(name)
            for name in table.column_names
            if name not in STANDARD_COLUMNS
            and name not in _CONTEXT_COLUMNS
            and name not in _NOT_ATTRIBUTES
        }
        return cls(
            assessment_id=_ids(v.strip() for v in table.text("assessment_id").tolist()),
            scored=scored,
            score=score,
            level=level,
            previous_score=np.where(prev_ok, score[safe], np.nan),
            previous_level=_previous_levels(
                level, cutpoints, np.where(prev_ok, level[safe], 0), cutpoints[safe]
            ),
            assessed_on=assessed_on,
            instrument=text("instrument"),
            site=text("site"),
            language=text("language"),
            flags=flags,
            attributes={k: v for k, v in attributes.items() if (v != "").any()},
            cutpoint_set=cutpoints,
            not_scored_reason=np.where(scored, "", reason),
        )

    @classmethod
    def from_batch(
        cls,
        *,
        instrument: Instrument,
        scores: BatchScores,
        assessment_id: npt.ArrayLike,
        patient_key: npt.ArrayLike,
        assessed_on: npt.ArrayLike,
        site: npt.ArrayLike | None = None,
        attributes: Mapping[str, npt.ArrayLike] | None = None,
    ) -> ContextColumns:
        """Columns from a scoring provider's batch, linked within the batch."""
        from pamlib.scoring.provider import FLAG_BITS

        n = len(scores)
        scored = np.asarray(scores.scored, dtype=np.bool_)
        score = np.where(scored, round_half_away_array(scores.score, 1), np.nan)
        level = np.where(scored, scores.level, 0).astype(np.int8)
        days = np.asarray(assessed_on, dtype="datetime64[D]")
        has_score = scored & (~np.isnan(score) | (level > 0))
        previous = link_previous_array(patient_key, days, has_score)
        linked = previous >= 0
        safe = np.where(linked, previous, 0)
        flags = {
            str(flag): (np.asarray(scores.flags) & bit) != 0 for flag, bit in FLAG_BITS.items()
        }
        if scores.demo:
            flags["demo"] = np.ones(n, dtype=np.bool_)
        flags = {k: v for k, v in flags.items() if v.any()}
        codes = np.asarray(scores.reason_code, dtype=np.str_)
        reasons = np.array(
            [scores.reasons.get(c, c) for c in codes.tolist()], dtype=np.str_
        ).reshape(n)
        cutpoints = np.where(level > 0, scores.cutpoint_set or "", "")
        return cls(
            assessment_id=_ids(str(v) for v in np.asarray(assessment_id).tolist()),
            scored=scored,
            score=score,
            level=level,
            previous_score=np.where(linked, score[safe], np.nan),
            previous_level=_previous_levels(
                level, cutpoints, np.where(linked, level[safe], 0), cutpoints[safe]
            ),
            assessed_on=days,
            instrument=np.full(n, instrument.id, dtype=np.str_),
            site=_strip(np.asarray(site, dtype=np.str_))
            if site is not None
            else np.full(n, "", dtype=np.str_),
            language=np.full(n, "", dtype=np.str_),
            flags=flags,
            attributes={
                k: _strip(np.asarray(v, dtype=np.str_)) for k, v in (attributes or {}).items()
            },
            cutpoint_set=cutpoints,
            not_scored_reason=np.where(scored, "", reasons),
        )


def _table_of_rows(rows: Sequence[Mapping[str, str]], *, source: str) -> ScoredTable:
    """The checked scored table of ``rows`` (see :meth:`ContextColumns.from_rows`)."""
    # csv.DictReader keys a row's surplus fields by None: not a column
    names = {k: None for k in itertools.chain.from_iterable(rows) if k is not None}
    return _table_of_columns(
        {name: [row.get(name) for row in rows] for name in names}, len(rows), source=source
    )


def _table_of_columns(
    table: Mapping[str, Sequence[str | None] | Strs], n: int | None, *, source: str
) -> ScoredTable:
    """The checked scored table of columns of text (see :meth:`ContextColumns.from_columns`)."""
    import pyarrow as pa

    from pamlib.tables.scored import ScoredTable

    lengths = {len(v) for v in table.values()}
    if n is None:
        n = lengths.pop() if len(lengths) == 1 else 0
    if lengths - {n}:
        raise ValidationError(
            "cannot tailor", [Problem("columns", "length", "columns differ in length")]
        )

    def strings(values: Sequence[str | None] | Strs) -> pa.Array:
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)
        return pa.array([v if isinstance(v, str) else "" for v in items], pa.string())

    arrays = {name: strings(values) for name, values in table.items()}
    if not arrays:  # no column at all: an empty table of the required columns
        arrays = {name: pa.array([""] * n, pa.string()) for name in _EMPTY_TABLE}
    return ScoredTable.from_arrow(pa.table(arrays), source=source)


def _check_previous(current: ScoredTable, previous: ScoredTable, where: str) -> None:
    """Refuse a ``previous`` row (a checked table of one) that a table holding it and
    ``current`` would not link to ``current``; problems name no identifier."""
    problems: list[Problem] = []
    if previous.patient_keys()[0] != current.patient_keys()[0]:
        problems.append(
            Problem(where, "other-patient", "the previous row is another patient's (keys differ)")
        )
    before = previous.column("assessed_on")[0].as_py()
    if before > current.column("assessed_on")[0].as_py():
        problems.append(Problem(where, "later", "the previous row is dated after this one"))
    if previous.text("assessment_id")[0] == current.text("assessment_id")[0]:
        problems.append(
            Problem(where, "same-assessment", "the previous row has this row's assessment_id")
        )
    if problems:
        raise ValidationError(f"{where}: not this row's previous assessment", problems)


def _strip(values: Strs) -> Strs:
    distinct, index = _distinct(values)
    return _stripped(distinct)[index]


def _objects(distinct: list[str], index: npt.NDArray[np.intp]) -> npt.NDArray[np.object_]:
    """:func:`_stripped` values as an object array: a reference a row to the few texts."""
    texts = np.empty(max(len(distinct), 1), dtype=object)
    texts[:] = _stripped(distinct).tolist()
    out: npt.NDArray[np.object_] = texts[index]
    return out


def _stripped(distinct: list[str]) -> Strs:
    """Distinct texts as NumPy strings (which drop trailing NULs), then stripped: what each
    row of them becomes in a text column."""
    held = np.array(distinct or [""], dtype=np.str_).tolist()
    return np.array([v.strip() for v in held], dtype=np.str_)


#: The columns of a table given with no column at all (an empty table).
_EMPTY_TABLE = ("patient_id", "assessed_on", "status", "score", "level")


def _flag_columns(
    distinct: Sequence[str], codes: npt.NDArray[np.intp], demo: Bools
) -> dict[str, Bools]:
    """A boolean column per flag (casefolded; split as :meth:`Context.from_row` splits them),
    ``demo`` included wherever the row holds demonstration scores. ``distinct`` are the flags
    column's texts and ``codes`` each row's index into them."""
    pairs, index = np.unique(codes * 2 + demo, return_inverse=True)
    index = index.reshape(-1)
    sets = [
        {f for f in _FLAG_SPLIT.split(distinct[pair // 2].strip().casefold()) if f}
        | ({"demo"} if pair % 2 else set())
        for pair in pairs.tolist()
    ]
    names = sorted({f for found in sets for f in found})
    return {f: np.array([f in found for found in sets], dtype=np.bool_)[index] for f in names}
