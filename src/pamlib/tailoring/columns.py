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
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from pamlib._months import add_months_array
from pamlib.errors import Problem, ValidationError
from pamlib.levels import round_half_away_array
from pamlib.tables._levels import check_levels
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
    from pamlib.levels import CutpointSet
    from pamlib.scoring.provider import BatchScores
    from pamlib.tables.scored import ScoredTable

__all__ = [
    "ContextColumns",
    "TextCodes",
    "add_months_array",
    "by_unique",
    "codes_of",
    "link_previous_array",
]

Bools = npt.NDArray[np.bool_]
Strs = npt.NDArray[np.str_]
Days = npt.NDArray[np.datetime64]
Codes = npt.NDArray[np.integer[Any]]

#: Every row, as an index.
_ALL = slice(None)
#: Tables from this many rows hand back to the system, as they are read, memory that Arrow or
#: the C library keep for reuse but the next step cannot use (a call that costs more than a
#: small table saves).
_RELEASE_ROWS = 1 << 16
#: The text columns of a context other than its attributes.
_CODED = frozenset({"instrument", "site", "language", "cutpoint_set", "not_scored_reason"})


def link_previous_array(
    keys: npt.ArrayLike, dates: npt.ArrayLike, has_score: npt.ArrayLike
) -> npt.NDArray[np.intp]:
    """For each row, the index of the same key's latest earlier row with a score, else ``-1``.

    Rows with an empty (or whitespace-only) key or no date are never linked; equal dates keep
    table order.
    """
    return _link_previous(_key_codes(keys), dates, has_score)


def _link_previous(
    k: npt.NDArray[np.int64], dates: npt.ArrayLike, has_score: npt.ArrayLike
) -> npt.NDArray[np.intp]:
    """:func:`link_previous_array` of keys already numbered (``-1``: no key)."""
    d = np.asarray(dates, dtype="datetime64[D]")
    scored = np.asarray(has_score, dtype=np.bool_)
    n = len(k)
    out = np.full(n, -1, dtype=np.intp)
    rows = np.flatnonzero((k >= 0) & ~np.isnat(d))
    if not rows.size:
        return out
    order = rows[_by_key_and_day(k[rows], d[rows].view(np.int64))]
    del rows
    m = len(order)
    # positions in that order, in 32 bits where they fit (a million rows: 4 MB an array)
    pos = np.arange(m, dtype=np.int32 if m < 1 << 31 else np.intp)
    sorted_keys = k[order]
    starts = np.ones(m, dtype=np.bool_)
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    del sorted_keys
    group_start = np.maximum.accumulate(np.where(starts, pos, 0))
    del starts
    last_scored = np.maximum.accumulate(np.where(scored[order], pos, -1))
    del pos
    previous = np.empty_like(last_scored)
    previous[0] = -1
    previous[1:] = last_scored[:-1]
    del last_scored
    linked = previous >= group_start
    out[order[linked]] = order[previous[linked]]
    return out


def _by_key_and_day(
    keys: npt.NDArray[np.int64], days: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """The order of rows by key, then day, then position: one stable sort of a number made of
    the key and the day where it fits in 63 bits (always, for dates 0001–9999), else a sort by
    each in turn."""
    low = int(days.min())
    span = int(days.max()) - low + 1
    if int(keys.max()) < (1 << 62) // span:
        combined = keys * span
        combined += days
        combined -= low
        return np.argsort(combined, kind="stable")
    return np.lexsort((np.arange(len(keys)), days, keys))


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
    cutpoint_set: TextCodes,
    previous_level: npt.NDArray[np.int8],
    previous_cutpoint_set: TextCodes,
) -> npt.NDArray[np.int8]:
    """``previous_level`` where it may be compared with ``level``, else ``0``.

    A level is a band of one cut-point set (70.0 is level 3 under ``hibbard-2005``, 69.0 level 4
    under ``current``): a row with a level whose set is not its previous row's (an unnamed set
    included) gets no previous level, so no transition, rather than a false one. The scores,
    on one 0-100 scale, stay comparable. A row without a level keeps its previous level.
    """
    differ = (level > 0) & ~cutpoint_set.equals(previous_cutpoint_set)
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
class TextCodes:
    """A column of text as its distinct values, each held once, and each row's code: the
    index of its value in ``values``.

    A context's text columns (site, instrument, language, cut-point set, attributes, the
    reason an assessment was not scored) hold a few values however many rows there are: as
    NumPy strings every row would take four bytes a character of the longest value, as codes
    it takes one or two bytes. ``values`` has no value twice, so equal codes are equal texts,
    and anything decided about a value (a condition, a folding) is decided once and spread
    over the rows by their codes. Values are NumPy strings (trailing NULs dropped), as the
    columns were.
    """

    values: Strs
    codes: Codes

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def __repr__(self) -> str:
        """Sizes only: never a value (an attribute may say something about a person)."""
        return f"TextCodes(n_rows={len(self)}, n_values={len(self.values)})"

    @classmethod
    def of(cls, values: npt.ArrayLike) -> TextCodes:
        """A column of text (NumPy strings, Python strings, a list) as codes."""
        given = np.asarray(values, dtype=np.str_).reshape(-1)
        if len(given) <= 1:  # one assessment: its values are distinct as they are
            return cls(given, np.zeros(len(given), dtype=np.uint8))
        distinct, index = _distinct(given)
        return cls(np.array(distinct, dtype=np.str_), _narrow(index, len(distinct)))

    @classmethod
    def constant(cls, value: str, n: int) -> TextCodes:
        """``n`` rows of one value."""
        return cls(np.array([value], dtype=np.str_), np.zeros(n, dtype=np.uint8))

    def texts(self, rows: slice | npt.NDArray[np.intp] = _ALL) -> Strs:
        """The rows (all, or those given by index) as NumPy strings."""
        out: Strs = self.values[self.codes[rows]]
        return out

    def take(self, rows: slice | npt.NDArray[np.intp]) -> TextCodes:
        """The rows given by index (or a slice), with the same values."""
        return TextCodes(self.values, self.codes[rows])

    def spread(self, per_value: Sequence[Any], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        """``per_value[k]`` (one answer for each of :attr:`values`, in order) for every row."""
        answers = np.array(list(per_value) or [np.zeros((), dtype).item()], dtype=dtype)
        out: npt.NDArray[Any] = answers[self.codes]
        return out

    def equals(self, other: TextCodes) -> Bools:
        """Row by row, whether this column's text is ``other``'s (same length)."""
        if other.values is self.values:
            out: Bools = self.codes == other.codes
            return out
        index = {v: k for k, v in enumerate(self.values.tolist())}
        mapped = [index.get(v, -1) for v in other.values.tolist()]
        return np.asarray(self.codes == other.spread(mapped, np.intp), dtype=np.bool_)


def _narrow(index: npt.NDArray[Any], size: int) -> Codes:
    """Codes below ``size`` in the smallest unsigned integers that hold them."""
    if size <= 1 << 8:
        return index.astype(np.uint8)
    if size <= 1 << 16:
        return index.astype(np.uint16)
    return index.astype(np.uint32 if size <= 1 << 32 else np.intp)


def _coded(texts: Sequence[str], index: npt.NDArray[Any], *, strip: bool = False) -> TextCodes:
    """Rows given as each one's ``index`` into ``texts`` (which may hold a value twice), as
    :class:`TextCodes`: each text as NumPy strings hold it (trailing NULs dropped), stripped
    when asked, held once."""
    held: list[str] = np.array(list(texts) or [""], dtype=np.str_).tolist()
    if strip:
        held = [v.strip() for v in held]
    seen: dict[str, int] = {}
    remap = np.fromiter(
        (seen.setdefault(v, len(seen)) for v in held), dtype=np.intp, count=len(held)
    )
    codes = remap[index] if len(seen) < len(held) else index
    return TextCodes(np.array(list(seen), dtype=np.str_), _narrow(codes, len(seen)))


def _as_codes(values: TextCodes | npt.ArrayLike) -> TextCodes:
    return values if isinstance(values, TextCodes) else TextCodes.of(values)


def _as_coded_mapping(
    columns: Mapping[str, TextCodes | npt.ArrayLike],
) -> Mapping[str, TextCodes]:
    return {name: _as_codes(values) for name, values in columns.items()}


@attrs.frozen(eq=False, repr=False)
class ContextColumns:
    """The facts of ``n`` assessments as equal-length columns.

    Missing numbers are NaN, a missing level ``0``, missing text ``""``, a missing date NaT.
    The text columns — ``instrument``, ``site``, ``language``, ``cutpoint_set``,
    ``not_scored_reason`` and each attribute — are held as :class:`TextCodes` (each distinct
    value once, a small code a row; :meth:`coded` and :meth:`find_attribute_codes` give them)
    and read as NumPy strings, which drop trailing NUL characters (no CSV cell holds one); the
    constructor takes either. ``assessment_id`` is kept exactly; a table's ids are made Python
    strings only when asked for. ``score`` and ``previous_score`` are as reported (one decimal,
    half away from zero); ``flags`` maps each flag present anywhere to a boolean column;
    ``attributes`` maps each attribute name to a column of raw values.
    """

    #: Object dtype: ids pass through exactly (NumPy's fixed-width strings drop trailing NULs);
    #: or a table's ``assessment_id`` column, read when the ids are asked for.
    _assessment_id: npt.NDArray[np.object_] | pa.ChunkedArray = attrs.field(alias="assessment_id")
    scored: Bools
    score: npt.NDArray[np.float64]
    level: npt.NDArray[np.int8]
    previous_score: npt.NDArray[np.float64]
    previous_level: npt.NDArray[np.int8]
    assessed_on: Days
    _instrument: TextCodes = attrs.field(alias="instrument", converter=_as_codes)
    _site: TextCodes = attrs.field(alias="site", converter=_as_codes)
    _language: TextCodes = attrs.field(alias="language", converter=_as_codes)
    flags: Mapping[str, Bools]
    _attributes: Mapping[str, TextCodes] = attrs.field(
        alias="attributes", converter=_as_coded_mapping
    )
    _cutpoint_set: TextCodes = attrs.field(alias="cutpoint_set", converter=_as_codes)
    _not_scored_reason: TextCodes = attrs.field(alias="not_scored_reason", converter=_as_codes)
    #: Columns made on demand and kept: folded texts, and a table's assessment ids.
    _folded: dict[str, Any] = attrs.field(factory=dict, alias="folded", repr=False)

    def __len__(self) -> int:
        return int(self.scored.shape[0])

    def __repr__(self) -> str:
        """Sizes and names only: never an assessment id or an attribute's value."""
        return (
            f"ContextColumns(n_rows={len(self)}, flags={sorted(self.flags)!r}, "
            f"attributes={sorted(self._attributes)!r})"
        )

    @property
    def assessment_id(self) -> npt.NDArray[np.object_]:
        """Each row's assessment id, as Python strings (object dtype)."""
        ids = self._assessment_id
        if isinstance(ids, np.ndarray):
            return ids
        if "assessment_id" not in self._folded:
            self._folded["assessment_id"] = self._ids_at(_ALL)
        held: npt.NDArray[np.object_] = self._folded["assessment_id"]
        return held

    def _ids_at(self, rows: slice | npt.NDArray[np.intp]) -> npt.NDArray[np.object_]:
        """The ids of some rows; from a table's column only those rows are read."""
        ids = self._assessment_id
        if isinstance(ids, np.ndarray):
            out: npt.NDArray[np.object_] = ids[rows]
            return out
        if "assessment_id" in self._folded:
            held: npt.NDArray[np.object_] = self._folded["assessment_id"][rows]
            return held
        import pyarrow as pa
        import pyarrow.compute as pc

        column = ids if isinstance(rows, slice) else ids.take(pa.array(rows, pa.int64()))
        return _ids(str(v).strip() for v in pc.fill_null(column, "").to_pylist())

    @property
    def instrument(self) -> Strs:
        return self._instrument.texts()

    @property
    def site(self) -> Strs:
        return self._site.texts()

    @property
    def language(self) -> Strs:
        return self._language.texts()

    @property
    def cutpoint_set(self) -> Strs:
        return self._cutpoint_set.texts()

    @property
    def not_scored_reason(self) -> Strs:
        """Why each row was not scored (``""`` where it was): NumPy strings as wide as the
        longest reason, made on each call; :meth:`coded` holds each reason once."""
        return self._not_scored_reason.texts()

    @property
    def attributes(self) -> dict[str, Strs]:
        """Each attribute's column as NumPy strings, made on each call (see :meth:`attribute`)."""
        return {name: column.texts() for name, column in self._attributes.items()}

    def coded(self, name: str) -> TextCodes:
        """A text column as :class:`TextCodes`: ``instrument``, ``site``, ``language``,
        ``cutpoint_set`` or ``not_scored_reason``."""
        if name not in _CODED:
            raise KeyError(name)
        column: TextCodes = getattr(self, f"_{name}")
        return column

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
        key = f"folded:{name}"
        if key not in self._folded:
            column = self.coded(name)
            folded = [v.strip().casefold() for v in column.values.tolist()]
            self._folded[key] = column.spread(folded, np.str_)
        held: Strs = self._folded[key]
        return held

    def attribute(self, name: str) -> Strs:
        """An attribute column, found ignoring case; empty strings where not supplied."""
        column = self.find_attribute(name)
        return column if column is not None else np.full(len(self), "", dtype=np.str_)

    def find_attribute(self, name: str) -> Strs | None:
        """An attribute column, found ignoring case; ``None`` when no row supplies it."""
        column = self.find_attribute_codes(name)
        return None if column is None else column.texts()

    def find_attribute_codes(self, name: str) -> TextCodes | None:
        """:meth:`find_attribute` as :class:`TextCodes`."""
        column = self._attributes.get(name)
        if column is None:
            folded = name.strip().casefold()
            matches = [v for k, v in self._attributes.items() if k.strip().casefold() == folded]
            column = matches[0] if matches else None
        return column

    def slice(self, start: int, stop: int) -> ContextColumns:
        """Rows ``start`` to ``stop`` (excluded), sharing this table's arrays."""
        rows = _ALL if (start, stop) == (0, len(self)) else slice(start, stop)
        ids = self._assessment_id
        return ContextColumns(
            assessment_id=ids[rows]
            if isinstance(ids, np.ndarray)
            else ids.slice(start, stop - start),
            scored=self.scored[rows],
            score=self.score[rows],
            level=self.level[rows],
            previous_score=self.previous_score[rows],
            previous_level=self.previous_level[rows],
            assessed_on=self.assessed_on[rows],
            instrument=self._instrument.take(rows),
            site=self._site.take(rows),
            language=self._language.take(rows),
            flags={name: column[rows] for name, column in self.flags.items()},
            attributes={name: column.take(rows) for name, column in self._attributes.items()},
            cutpoint_set=self._cutpoint_set.take(rows),
            not_scored_reason=self._not_scored_reason.take(rows),
        )

    def context(self, i: int) -> Context:
        """Row ``i`` as a :class:`Context`: :meth:`contexts` of that one row."""
        return next(self.contexts([i]))

    def contexts(self, rows: Sequence[int] | None = None) -> Iterator[Context]:
        """Every row (or the ``rows`` given, by index) as a :class:`Context`, in order; columns
        are converted to Python values once, not per row."""
        index = _ALL if rows is None else np.asarray(rows, dtype=np.intp)
        ids = self._ids_at(index).tolist()
        scored = self.scored[index].tolist()
        score = self.score[index].tolist()
        level = self.level[index].tolist()
        previous_score = self.previous_score[index].tolist()
        previous_level = self.previous_level[index].tolist()
        days = self.assessed_on[index].astype(object).tolist()
        instrument = self._instrument.texts(index).tolist()
        site = self._site.texts(index).tolist()
        language = self._language.texts(index).tolist()
        flags = {f: column[index].tolist() for f, column in self.flags.items()}
        attributes = {k: v.texts(index).tolist() for k, v in self._attributes.items()}
        cutpoints = self._cutpoint_set.texts(index).tolist()
        reasons = self._not_scored_reason.texts(index).tolist()
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
        if n <= 1:  # one assessment: each text is its column's one value, its code 0
            zero = np.zeros(n, dtype=np.uint8)

            def coded(values: Strs) -> TextCodes:
                return TextCodes(values, zero)
        else:
            coded = TextCodes.of
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
            instrument=coded(texts[0]),
            site=coded(texts[1]),
            language=coded(texts[2]),
            flags={
                f: np.array([f in c.flags for c in contexts], dtype=np.bool_) for f in flag_names
            },
            attributes={
                a: coded(_strs((c.attributes.get(a, "") for c in contexts), n)) for a in attr_names
            },
            cutpoint_set=coded(texts[3]),
            not_scored_reason=coded(_strs((c.not_scored_reason for c in contexts), n)),
        )

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, str]],
        *,
        source: str = "rows",
        cutpoints: Iterable[CutpointSet] | None = None,
    ) -> ContextColumns:
        """Columns from the rows of a scored table (dictionaries of strings, as from
        :class:`csv.DictReader`), through :meth:`from_scored` (``cutpoints`` as there);
        ``source`` names the rows in problems (``rows: row 3``)."""
        table = _table_of_rows(rows, source=source)
        return cls.from_scored(table, source=source, cutpoints=cutpoints)

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
            return cls.from_scored(current, source=where)
        _check_previous(current, before[0], f"{where} (previous)")
        previous_columns = cls.from_scored(before[0], source=f"{where} (previous)")
        return cls.from_scored(current, source=where).after(previous_columns)

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
                self._cutpoint_set,
                np.where(has_score, before.level, 0),
                before._cutpoint_set,
            ),
        )

    @classmethod
    def from_columns(
        cls,
        table: Mapping[str, Sequence[str | None] | Strs],
        n: int | None = None,
        *,
        source: str = "rows",
        cutpoints: Iterable[CutpointSet] | None = None,
    ) -> ContextColumns:
        """:meth:`from_rows` for a table held as columns of text (lists or string arrays, equal
        lengths; ``None`` or ``""`` where empty) — what a columnar reader has in hand."""
        scored = _table_of_columns(table, n, source=source)
        return cls.from_scored(scored, source=source, cutpoints=cutpoints)

    @classmethod
    def from_scored(
        cls,
        table: ScoredTable,
        *,
        cutpoints: Iterable[CutpointSet] | None = None,
        source: str = "scored table",
    ) -> ContextColumns:
        """Columns from a checked :class:`~pamlib.tables.scored.ScoredTable`, from its typed
        columns, each row linked to its patient's previous row (see
        :mod:`pamlib.tailoring.rows`) by :meth:`~pamlib.tables.scored.ScoredTable.patient_keys`.

        With ``cutpoints`` given (what :func:`~pamlib.tailoring.tailor` and ``pamlib score
        --recommend`` give: every registered set), a scored row with a score and one of those
        sets named must have the level of that score at that set, as a scoring provider's
        result must: otherwise a :class:`~pamlib.errors.ValidationError` lists the rows
        (``source: row N``, never a value). A table is data from anywhere, and tailoring a
        level its own score contradicts would choose the wrong pathway.

        No Python object is made per row: text columns are read as :class:`TextCodes`
        (Arrow hashes each column), patients are linked by numbered keys
        (:meth:`~pamlib.tables.scored.ScoredTable.patient_key_codes`), and the assessment ids
        stay in the table until they are asked for.
        """
        import pyarrow.compute as pc

        n = len(table)

        def text(name: str) -> TextCodes:
            return _coded(*table.text_codes(name), strip=True)

        scored = _is_scored(table)
        score = np.asarray(pc.fill_null(table.column("score"), np.nan).to_numpy(), np.float64)
        level = np.asarray(pc.fill_null(table.column("level"), 0).to_numpy(), dtype=np.int8)
        sets = text("cutpoint_set")  # each row's set, by name
        # the one rule reports check too (pamlib.tables._levels): never two that may drift
        check_levels(
            scored,
            score,
            level,
            sets.values.tolist(),
            sets.codes,
            cutpoints=cutpoints,
            source=source,
        )
        score = np.where(scored, round_half_away_array(score, 1), np.nan)
        level = np.where(scored, level, 0).astype(np.int8)
        days = table.column("assessed_on").to_numpy()
        assessed_on = np.asarray(days, dtype="datetime64[D]").reshape(n)
        demo = np.asarray(table.column("demo").to_numpy(), dtype=np.bool_)
        flags = _flag_columns(*table.text_codes("flags"), demo)
        has_score = scored & (~np.isnan(score) | (level > 0))
        keys = table.patient_key_codes()
        if n >= _RELEASE_ROWS:  # numbering the keys took Arrow memory that linking cannot use
            from pamlib.tables.scored import release_freed_memory

            release_freed_memory()
        safe = _link_previous(keys, assessed_on, has_score)
        del keys
        linked = safe >= 0
        np.maximum(safe, 0, out=safe)  # where unlinked, any row: its values are not used
        prev_ok = linked & scored[safe]
        attributes = {
            name: text(name)
            for name in table.column_names
            if name not in STANDARD_COLUMNS
            and name not in _CONTEXT_COLUMNS
            and name not in _NOT_ATTRIBUTES
        }
        return cls(
            assessment_id=table.column("assessment_id"),
            scored=scored,
            score=score,
            level=level,
            previous_score=np.where(prev_ok, score[safe], np.nan),
            previous_level=_previous_levels(
                level, sets, np.where(prev_ok, level[safe], 0), sets.take(safe)
            ),
            assessed_on=assessed_on,
            instrument=text("instrument"),
            site=text("site"),
            language=text("language"),
            flags=flags,
            attributes={k: v for k, v in attributes.items() if _any_text(v)},
            cutpoint_set=sets,
            not_scored_reason=_not_scored_reasons(scored, text("reason"), text("reason_code")),
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
        # each distinct reason code looked up once; a scored row has no reason
        codes, code_of = _distinct(np.asarray(scores.reason_code, dtype=np.str_).reshape(n))
        reasons = [scores.reasons.get(c, c) for c in codes]
        reason = _coded([*reasons, ""], np.where(scored, len(reasons), code_of))
        cutpoints = _coded(["", scores.cutpoint_set or ""], (level > 0).astype(np.uint8))
        return cls(
            assessment_id=_ids(str(v) for v in np.asarray(assessment_id).tolist()),
            scored=scored,
            score=score,
            level=level,
            previous_score=np.where(linked, score[safe], np.nan),
            previous_level=_previous_levels(
                level, cutpoints, np.where(linked, level[safe], 0), cutpoints.take(safe)
            ),
            assessed_on=days,
            instrument=TextCodes.constant(instrument.id, n),
            site=_strip(np.asarray(site, dtype=np.str_))
            if site is not None
            else TextCodes.constant("", n),
            language=TextCodes.constant("", n),
            flags=flags,
            attributes={
                k: _strip(np.asarray(v, dtype=np.str_)) for k, v in (attributes or {}).items()
            },
            cutpoint_set=cutpoints,
            not_scored_reason=reason,
        )


def _is_scored(table: ScoredTable) -> Bools:
    """Which rows of a scored table have the status ``scored``."""
    statuses, status_of = table.text_codes("status")
    return np.array([s == "scored" for s in statuses] or [False], np.bool_)[status_of]


def _any_text(column: TextCodes) -> bool:
    """Whether any row of ``column`` holds text."""
    return bool(column.spread([v != "" for v in column.values.tolist()], np.bool_).any())


def _not_scored_reasons(scored: Bools, reason: TextCodes, reason_code: TextCodes) -> TextCodes:
    """Why each row was not scored: its ``reason``, else its ``reason_code``; ``""`` for a
    scored row."""
    texts = [*reason.values.tolist(), *reason_code.values.tolist(), ""]
    given = reason.spread([v != "" for v in reason.values.tolist()], np.bool_)
    index = np.where(
        scored,
        len(texts) - 1,
        np.where(given, reason.codes, len(reason.values) + reason_code.codes.astype(np.intp)),
    )
    return _coded(texts, index)


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
    from pamlib.tables.scored import ScoredTable, python_table

    lengths = {len(v) for v in table.values()}
    if n is None:
        n = lengths.pop() if len(lengths) == 1 else 0
    if lengths - {n}:
        raise ValidationError(
            "cannot tailor", [Problem("columns", "length", "columns differ in length")]
        )
    if not table:  # no column at all: an empty table of the required columns
        table = dict.fromkeys(_EMPTY_TABLE, [""] * n)
    # Values that are not text (a level 3, a list of flags: rows from JSON) are read as a
    # scored CSV holds them; read as empty, they once made every row unscored, silently.
    return ScoredTable.from_arrow(python_table(table, source), source=source)


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


def _strip(values: Strs) -> TextCodes:
    """A column of NumPy strings, stripped, as :class:`TextCodes`."""
    return _coded(*_distinct(values.reshape(-1)), strip=True)


#: The columns of a table given with no column at all (an empty table).
_EMPTY_TABLE = ("patient_id", "assessed_on", "status", "score", "level")


def _flag_columns(
    distinct: Sequence[str], codes: npt.NDArray[np.intp], demo: Bools
) -> dict[str, Bools]:
    """A boolean column per flag (casefolded; split as :meth:`Context.from_row` splits them),
    ``demo`` included wherever the row holds demonstration scores. ``distinct`` are the flags
    column's texts and ``codes`` each row's index into them."""
    # each row's text and demo as one small number: the flags of each number found once
    pair = codes * 2
    pair += demo
    present = np.zeros(2 * max(len(distinct), 1), dtype=np.bool_)
    present[pair] = True
    sets = [
        {f for f in _FLAG_SPLIT.split(text.strip().casefold()) if f} | extra
        for text in distinct
        for extra in (set(), {"demo"})
    ]
    names = sorted({f for k in np.flatnonzero(present).tolist() for f in sets[k]})
    return {f: np.array([f in found for found in sets], dtype=np.bool_)[pair] for f in names}
