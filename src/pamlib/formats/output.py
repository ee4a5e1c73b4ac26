"""The scored-output table every writer shares: column order, values, spreadsheet safety.

Output columns, in order: :data:`STANDARD_COLUMNS`, then ``reason`` (the reason code of a
``not-scored`` row), then the extra columns (``nhs_number`` when asked for, then the input's
pass-through columns such as ``site``, in input order).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.formats._arrow import (
    Text,
    combined,
    compute,
    constant_text,
    from_numpy,
    pyarrow_module,
    text_array,
    text_lists,
    to_arrow_text,
    to_numpy,
)
from pamlib.formats.base import RecordBatch, Reject, Target, TextColumn, WriteOptions
from pamlib.formats.guard import AtomicTarget
from pamlib.levels import round_half_away_array
from pamlib.results import SCORED_TABLE_COLUMNS
from pamlib.scoring.provider import BatchScores, flags_from_bits

__all__ = [
    "REASON_COLUMN",
    "REJECT_COLUMNS",
    "STANDARD_COLUMNS",
    "AtomicTarget",
    "CsvText",
    "CsvWriter",
    "RejectsWriter",
    "check_extra_columns",
    "csv_table",
    "csv_text",
    "csv_text_table",
    "output_columns",
    "protect",
    "typed_table",
]

#: The standard output columns, in order.
STANDARD_COLUMNS: tuple[str, ...] = SCORED_TABLE_COLUMNS
#: The column after the standard ones: why a row was not scored (a reason code).
REASON_COLUMN = "reason"
#: The rejects file's first columns; the source's own columns and ``record`` follow.
REJECT_COLUMNS: tuple[str, ...] = ("source", "line", "code", "message")

_FORMULA_START = frozenset("=+-@\t\r")
#: Cells starting with these are looked at: a formula start, or an apostrophe, which is doubled
#: so that reading back (one leading apostrophe dropped, as a spreadsheet does) is exact.
_PROTECT_START = frozenset("=+-@\t\r'")
#: A cell starting as :data:`_PROTECT_START` does, among cells joined by NUL.
_RISKY_CELL = re.compile("(?:^|\x00)[=+\\-@\t\r']")
_FORMULA_BYTES = [bytes([b]) for b in b"=+-@\t\r'"]
_FORMULA_BYTE = np.zeros(256, dtype=np.bool_)
_FORMULA_BYTE[np.frombuffer(b"=+-@\t\r'", dtype=np.uint8)] = True
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STRUCTURAL = b',"\r\n'


def output_columns(extra_columns: Sequence[str]) -> tuple[str, ...]:
    return (*STANDARD_COLUMNS, REASON_COLUMN, *extra_columns)


def check_extra_columns(extra_columns: Sequence[str]) -> None:
    """Refuse pass-through columns whose names would clash with the output's own."""
    _check_clashes(extra_columns, {*STANDARD_COLUMNS, REASON_COLUMN})


def check_input_columns(extra_columns: Sequence[str]) -> None:
    """:func:`check_extra_columns` for an input's pass-through columns, which may not take the
    names tailoring adds either: such a column would be cast to a list or a date where the
    table is tailored or written typed (an exception of pyarrow's, not a located problem), and
    read back as recommendations where it is not. (A tailored table's own recommendation
    columns are extra columns when it is written, so :func:`check_extra_columns` allows them.)
    """
    from pamlib.tables.scored import RECOMMENDATION_TYPES

    _check_clashes(extra_columns, {*STANDARD_COLUMNS, REASON_COLUMN, *RECOMMENDATION_TYPES})


def _check_clashes(extra_columns: Sequence[str], taken: set[str]) -> None:
    problems = [
        Problem(name, "column-clash", "an input column has the name of an output column")
        for name in extra_columns
        if name in taken
    ]
    seen: set[str] = set()
    for name in extra_columns:
        if name in seen:
            problems.append(Problem(name, "column-clash", "two input columns have this name"))
        seen.add(name)
    if problems:
        raise FormatError(
            "input columns clash with output columns; rename or drop them in a mapping file",
            problems,
        )


def protect(text: str) -> str:
    """Make one cell safe to open in a spreadsheet: text that would start a formula gets a
    leading apostrophe; plain numbers such as ``-1.5`` are left alone.

    >>> protect("=HYPERLINK(1)"), protect("-1.5"), protect("@sum"), protect("plain")
    ("'=HYPERLINK(1)", '-1.5', "'@sum", 'plain')
    """
    if text and (
        text[0] == "'" or (text[0] in _FORMULA_START and _PLAIN_NUMBER.fullmatch(text) is None)
    ):
        return "'" + text  # a leading apostrophe of the data is doubled: see unprotect()
    return text


def unprotect(text: str) -> str:
    """The inverse of :func:`protect`: one leading apostrophe dropped (as a spreadsheet shows
    the cell). ``unprotect(protect(t)) == t`` for every text."""
    return text[1:] if text.startswith("'") else text


def protect_column(column: Any) -> Any:
    """:func:`protect` over an Arrow string array, touching only the risky cells."""
    text = Text(column)
    if not len(text):
        return text.arr
    # No byte that could start a formula anywhere in the column (ids, most sites): nothing to
    # look at row by row. The search runs over the text's bytes, not over every row's first.
    used = text.data[int(text.offsets[0]) : int(text.offsets[-1])].tobytes()
    if not any(b in used for b in _FORMULA_BYTES):
        return text.arr
    risky = np.flatnonzero((text.lengths > 0) & _FORMULA_BYTE.take(text.byte(0)))
    if risky.size == 0:
        return text.arr
    values = text.values(risky)
    fixed = [protect(v) for v in values]
    changed = np.array([a != b for a, b in zip(values, fixed, strict=True)], dtype=np.bool_)
    if not changed.any():
        return text.arr
    mask = np.zeros(len(text), dtype=np.bool_)
    mask[risky[changed]] = True
    replacements = [f for f, c in zip(fixed, changed.tolist(), strict=True) if c]
    return compute().replace_with_mask(text.arr, from_numpy(mask), text_array(replacements))


# -- column values ---------------------------------------------------------------------------


#: The longest column made so far of each constant text (a batch's provenance, codes and
#: other texts the same for every row, never a patient's), all of them together holding at
#: most :data:`_CONSTANT_BYTES` of text: a later block of as many rows or fewer takes a slice
#: of one, which copies nothing.
_CONSTANTS: dict[str, Any] = {}
_CONSTANT_BYTES = 64 << 20
_CONSTANT_TEXTS = 64


def _constant(value: str, n: int) -> Any:
    """``n`` copies of ``value`` as an Arrow string array."""
    made = _CONSTANTS.get(value)
    if made is not None and len(made) >= n:
        return made.slice(0, n)
    column = constant_text(value, n)
    if made is not None or len(_CONSTANTS) < _CONSTANT_TEXTS:
        # only when a column is made: the held text counted again, at most 64 columns
        held = sum(len(k) * len(v) for k, v in _CONSTANTS.items() if k != value)
        if held + len(value) * n <= _CONSTANT_BYTES:
            _CONSTANTS[value] = column
    return column


@functools.lru_cache(maxsize=64)
def _text_table(values: tuple[str, ...]) -> Any:
    """The few strings of a lookup as an Arrow array, made once for every block."""
    return text_array(values)


class _Pick:
    """A text column not yet made: ``texts[indices[i]]`` for row ``i``, every index within
    ``lo..hi``; or ``value`` on every row (``indices`` is None).

    The output's columns are mostly such picks from a few texts (levels, codes, provenance,
    the scores of one row of the scoring table). Kept as picks until the lines are made,
    neighbouring ones are joined into one pick from joined texts (:func:`_joined`), so that a
    line is made of a few cells rather than one per column."""

    __slots__ = ("hi", "indices", "lo", "n", "texts", "value")

    def __init__(
        self, texts: Any, indices: npt.NDArray[Any] | None, lo: int, hi: int, n: int
    ) -> None:
        self.texts = texts
        self.indices = indices
        self.lo, self.hi, self.n = lo, hi, n
        self.value = ""

    @classmethod
    def constant(cls, value: str, n: int) -> _Pick:
        pick = cls(None, None, 0, 0, n)
        pick.value = value
        return pick

    def column(self) -> Any:
        """The column itself, an Arrow string array."""
        if self.indices is None:
            return _constant(self.value, self.n)
        return _take_text(self.texts, self.indices, self.lo, self.hi)

    def used(self) -> tuple[Any, npt.NDArray[np.int32]]:
        """The texts ``lo..hi`` alone, and the indices into them."""
        if self.indices is None:
            return text_array([self.value]), np.zeros(self.n, dtype=np.int32)
        indices = self.indices.astype(np.int32, copy=False)
        if self.lo:
            indices = indices - np.int32(self.lo)
        return self.texts.slice(self.lo, self.hi - self.lo + 1), indices


#: The most texts a pick joined from two with different indices may have (one for each pair).
_JOINED_TEXTS = 4096


def _joined(a: _Pick, b: _Pick, separator: str) -> _Pick | None:
    """One pick for two neighbouring columns, each row's text ``a + separator + b``; None
    where that would take more than :data:`_JOINED_TEXTS` texts."""
    join = compute().join
    n = a.n
    if a.indices is None and b.indices is None:
        return _Pick.constant(a.value + separator + b.value, n)
    if b.indices is None:
        texts, indices = a.used()
        return _Pick(join(texts, b.value, separator), indices, 0, a.hi - a.lo, n)
    if a.indices is None:
        texts, indices = b.used()
        return _Pick(join(a.value, texts, separator), indices, 0, b.hi - b.lo, n)
    if a.indices is b.indices and (a.lo, a.hi) == (b.lo, b.hi):  # picked by the same rows
        (left, indices), (right, _) = a.used(), b.used()
        return _Pick(join(left, right, separator), indices, 0, a.hi - a.lo, n)
    size_a, size_b = a.hi - a.lo + 1, b.hi - b.lo + 1
    if size_a * size_b > _JOINED_TEXTS:
        return None
    (left, first), (right, second) = a.used(), b.used()
    pairs = np.arange(size_a * size_b, dtype=np.int32)
    pc = compute()
    texts = join(
        pc.take_within(left, from_numpy(pairs // np.int32(size_b))),
        pc.take_within(right, from_numpy(pairs % np.int32(size_b))),
        separator,
    )
    return _Pick(texts, first * np.int32(size_b) + second, 0, size_a * size_b - 1, n)


#: Rows looked at before all of them, to find picks whose indices do not follow.
_FOLLOWS_HEAD = 256


def _through(a: _Pick, b: _Pick, separator: str) -> _Pick | None:
    """One pick for two neighbouring picks where one's index follows from the other's, as
    every column of a row of the scoring table follows from its measure: picked by the
    other's index, from its texts each joined with the text that follows from it. None where
    neither index follows from the other."""
    if a.indices is None or b.indices is None:
        return None
    fine, coarse = (b, a) if b.hi - b.lo >= a.hi - a.lo else (a, b)
    (fine_texts, by), (coarse_texts, then) = fine.used(), coarse.used()
    size = fine.hi - fine.lo + 1
    where = np.zeros(size, dtype=np.intp)  # a row of each of the fine texts (any, if unused)
    head = min(by.shape[0], _FOLLOWS_HEAD)  # most pairs that do not follow show it early
    where[by[:head]] = np.arange(head)
    if not bool((then[:head].take(where.take(by[:head])) == then[:head]).all()):
        return None
    where[by] = np.arange(by.shape[0])
    follows = then.take(where)
    if not bool((follows.take(by) == then).all()):
        return None
    pc = compute()
    coarse_texts = pc.take_within(coarse_texts, from_numpy(follows))
    left, right = (fine_texts, coarse_texts) if fine is a else (coarse_texts, fine_texts)
    return _Pick(compute().join(left, right, separator), by, 0, size - 1, a.n)


def _made(cell: Any) -> Any:
    """A column as an Arrow string array, whether made already or still a :class:`_Pick`."""
    return cell.column() if isinstance(cell, _Pick) else cell


def _lookup(table: Sequence[str], indices: npt.NDArray[Any]) -> Any:
    """``table[i]`` for each index, as an Arrow string array or a :class:`_Pick`."""
    if indices.size:
        lo, hi = int(indices.min()), int(indices.max())
        if lo == hi:
            return _Pick.constant(table[lo], int(indices.size))  # common: one value
        if lo >= 0 and hi < len(table):
            return _Pick(_text_table(tuple(table)), indices, lo, hi, int(indices.size))
    return compute().take(_text_table(tuple(table)), from_numpy(indices))


def _take_text(table: Any, indices: npt.NDArray[Any], lo: int, hi: int) -> Any:
    """``table[i]`` for each index, every one in ``lo..hi`` (made so by the caller), as an
    Arrow string array. Where the texts of ``lo..hi`` are all of one length (levels, raw
    scores, dates), each row's text is picked as one fixed-size item by NumPy and the offsets
    are counted, not looked up: about a fifth of the work of pyarrow's ``take``, which copies
    each text with its own length. Otherwise pyarrow's ``take``."""
    text = Text(table)
    lengths = text.lengths[lo : hi + 1]
    width = int(lengths[0])
    n = int(indices.shape[0])
    if 0 < width <= 64 and width * (n + 1) < 2**31 and bool((lengths == width).all()):
        pa = pyarrow_module()
        start = int(text.offsets[lo])
        items = text.data[start : start + width * (hi - lo + 1)].view(f"V{width}")
        data = items.take(indices - lo if lo else indices)
        offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        return pa.Array.from_buffers(pa.string(), n, buffers, null_count=0)
    return compute().take_within(table, from_numpy(indices))


def _int_text(values: npt.NDArray[Any]) -> Any:
    """Integers as text (an Arrow string array or a :class:`_Pick`), through a lookup when
    their range is small (the usual case)."""
    pa = pyarrow_module()
    if values.size == 0:
        return pa.array([], type=pa.string())
    lo, hi = int(values.min()), int(values.max())
    if hi - lo <= 4096:
        return _lookup([str(v) for v in range(lo, hi + 1)], (values - lo).astype(np.int32))
    return compute().cast(from_numpy(values), pa.string())


def _date_text(days: npt.NDArray[np.datetime64]) -> Any:
    """Dates as ISO text: each day of their range formatted once, then looked up (a
    :class:`_Pick`), where the range is small (the usual case); the text is pyarrow's either
    way."""
    pa = pyarrow_module()
    pc = compute()
    n = days.shape[0]
    numbers = days.astype(np.int64)
    if n:
        lo, hi = int(numbers.min()), int(numbers.max())
        if hi - lo <= min(4096, n):
            span = np.arange(lo, hi + 1, dtype=np.int64).astype("datetime64[D]")
            table = pc.cast(from_numpy(span), pa.string())
            return _Pick(table, (numbers - lo).astype(np.int32), 0, hi - lo, n)
    return pc.cast(from_numpy(days), pa.string())


def _float_text(values: npt.NDArray[np.float64]) -> Any:
    """Floats at full precision (shortest text that reads back exactly); NaN as empty."""
    pa = pyarrow_module()
    pc = compute()
    n = values.shape[0]
    missing = np.isnan(values)
    if missing.all():
        return _constant("", n)
    arr = from_numpy(values, missing)
    encoded = pc.dictionary_encode(arr)
    if len(encoded.dictionary) * 4 <= n:
        texts = pc.cast(encoded.dictionary, pa.string())
        # a null's index may be anything: only indices of a column without nulls go unchecked
        take = pc.take if arr.null_count else pc.take_within
        out = take(texts, encoded.indices)
    else:
        out = pc.cast(arr, pa.string())
    return pc.fill_null(out, "")


def _float_texts(
    *columns: npt.NDArray[np.float64],
    score: npt.NDArray[np.float64] | None = None,
    decimals: int = 0,
) -> list[Any]:
    """:func:`_float_text` of each column, then :func:`_score_text` of ``score`` with
    ``decimals`` if given. Where a later column, or the scores, hold one value for each value
    of the first (as the scores and their standard errors do for their measures, all from one
    row of the scoring table), its text is made once a value of the first column's dictionary
    and looked up: one pass that hashes every row, not one a column, and the scores rounded
    once a value. Those looked up are :class:`_Pick` objects, of the same indices."""
    pa = pyarrow_module()
    pc = compute()
    first = columns[0]
    n = first.shape[0]

    def rounded(column: npt.NDArray[np.float64]) -> Any:
        return _score_text(column, decimals)

    # each later column: its text from its distinct values (no NaN among them), and from all
    later: list[tuple[npt.NDArray[np.float64], Callable[..., Any], Callable[..., Any]]]
    later = [(c, _cast_text, _float_text) for c in columns[1:]]
    if score is not None:
        later.append((score, rounded, rounded))
    if n == 0 or any(bool(np.isnan(c).any()) for c in columns):
        return [_float_text(first), *(whole(c) for c, _, whole in later)]  # each on its own
    encoded = pc.dictionary_encode(from_numpy(first))
    k = len(encoded.dictionary)
    if k * 4 > n:
        return [_float_text(first), *(whole(c) for c, _, whole in later)]
    indices = to_numpy(encoded.indices)
    where = np.empty(k, dtype=np.intp)
    where[indices] = np.arange(n)  # a row of each distinct value
    texts = [_Pick(pc.cast(encoded.dictionary, pa.string()), indices, 0, k - 1, n)]
    for column, distinct, whole in later:
        one = column[where]
        # Bit for bit (-0.0 is not 0.0 as text): each row's value is its first value's.
        if bool((one.view(np.uint64).take(indices) == column.view(np.uint64)).all()):
            texts.append(_Pick(_made(distinct(one)), indices, 0, k - 1, n))
        else:
            texts.append(whole(column))
    return texts


def _cast_text(values: npt.NDArray[np.float64]) -> Any:
    """Floats without NaN as pyarrow's shortest text that reads back exactly."""
    return compute().cast(from_numpy(values), pyarrow_module().string())


def _fixed(k: int, decimals: int) -> str:
    sign = "-" if k < 0 else ""
    k = abs(k)
    if decimals <= 0:
        return f"{sign}{k}"
    unit = 10**decimals
    return f"{sign}{k // unit}.{k % unit:0{decimals}d}"


#: Per number of decimals: the scores ``lo``..``hi`` (scaled to whole numbers) as text, after
#: an empty one. Kept between blocks, and grown to cover each block's scores.
_SCORE_TABLES: dict[int, tuple[int, int, Any]] = {}


def _score_table(lo: int, hi: int, decimals: int) -> tuple[int, int, Any]:
    """The kept table of scores with ``decimals`` decimals, covering ``lo``..``hi`` (at most
    100,000 apart)."""
    known = _SCORE_TABLES.get(decimals)
    if known is not None:
        if known[0] <= lo and hi <= known[1]:
            return known
        wider = min(lo, known[0]), max(hi, known[1])
        if wider[1] - wider[0] <= 100_000:
            lo, hi = wider
    made = (lo, hi, text_array(["", *(_fixed(k, decimals) for k in range(lo, hi + 1))]))
    _SCORE_TABLES[decimals] = made
    return made


def _score_text(values: npt.NDArray[np.float64], decimals: int) -> Any:
    """Scores with exactly ``decimals`` decimals (rounded half away from zero); NaN as empty.
    An Arrow string array or a :class:`_Pick`."""
    n = values.shape[0]
    missing = np.isnan(values)
    if missing.all():
        return _constant("", n)
    # every row scored (the usual block): no rows to pick out, none to put back
    every = not missing.any()
    rounded = round_half_away_array(values if every else values[~missing], decimals)
    scaled = np.rint(rounded * 10.0**decimals).astype(np.int64)
    lo, hi = int(scaled.min()), int(scaled.max())
    if hi - lo <= 100_000:
        lo, hi, texts = _score_table(lo, hi, decimals)
        indices = _placed((scaled - lo).astype(np.int32) + 1, missing, every)
        first, last = int(indices.min()), int(indices.max())
        if first == last:
            return _Pick.constant(texts[first].as_py(), n)
        return _Pick(texts, indices, first, last, n)  # 0..hi - lo + 1: inside
    distinct, inverse = np.unique(scaled, return_inverse=True)
    table = ["", *(_fixed(int(k), decimals) for k in distinct)]
    indices = _placed(inverse.astype(np.int32) + 1, missing, every)
    return compute().take_within(text_array(table), from_numpy(indices))  # not kept


def _placed(
    present: npt.NDArray[np.int32], missing: npt.NDArray[np.bool_], every: bool
) -> npt.NDArray[np.int32]:
    """Indices of the rows not ``missing`` put in their places, 0 in the others."""
    if every:
        return present
    indices = np.zeros(missing.shape[0], dtype=np.int32)
    indices[~missing] = present
    return indices


_FLAG_TEXT = [";".join(sorted(str(f) for f in flags_from_bits(b))) for b in range(256)]


def _reasons(scores: BatchScores) -> tuple[list[str], npt.NDArray[np.int32]]:
    """Distinct reason codes (``""`` first) and an index per row."""
    n = len(scores)
    indices = np.zeros(n, dtype=np.int32)
    rows = np.flatnonzero(~scores.scored)
    if rows.size == 0:
        return [""], indices
    codes = np.asarray(scores.reason_code)[rows].astype(str)
    distinct, inverse = np.unique(codes, return_inverse=True)
    indices[rows] = inverse.astype(np.int32) + 1
    return ["", *(str(c) for c in distinct)], indices


def _extra(name: str, batch: RecordBatch, extra: Mapping[str, TextColumn]) -> TextColumn:
    if name in extra:
        return extra[name]
    if name == "site":
        return batch.site
    try:
        return batch.extras[name]
    except KeyError:
        raise ConfigurationError(f"no values for output column {name!r}") from None


def csv_table(
    batch: RecordBatch,
    scores: BatchScores,
    extra: Mapping[str, TextColumn],
    options: WriteOptions,
) -> tuple[Any, bool]:
    """The rows of one batch as an all-text Arrow table, spreadsheet-safe; and whether any
    text cell holds a comma, quote or line break (so the rows need quoting)."""
    names, cells, needs_quotes = _csv_cells(batch, scores, extra, options)
    return _all_text(names, cells), needs_quotes


def _all_text(names: Sequence[str], cells: Sequence[Any]) -> Any:
    """The columns (made or still picks) as one all-text Arrow table."""
    return pyarrow_module().table(dict(zip(names, map(_made, cells), strict=True)))


class CsvText:
    """One batch's rows as the CSV output's text: ``lines`` (Arrow string arrays of whole
    lines, ``\\n`` included, their data the file's bytes, in order), or where a cell needs
    quoting the all-text ``table`` for pyarrow's writer to quote."""

    __slots__ = ("lines", "table")

    def __init__(self, *, lines: tuple[Any, ...] | None = None, table: Any = None) -> None:
        self.lines = lines
        self.table = table


def csv_text(
    batch: RecordBatch,
    scores: BatchScores,
    extra: Mapping[str, TextColumn],
    options: WriteOptions,
) -> CsvText:
    """:func:`csv_table`'s rows as the bytes pyarrow's writer would make of them
    (``quoting_style="none"``), made here: where no cell needs quoting, neighbouring columns
    picked from a few texts are joined into one (:func:`_joined`) before any is made, and each
    line is then joined from a few cells, not one a column. The same bytes, for about half the
    work of making every column and writing them through pyarrow's writer."""
    names, cells, needs_quotes = _csv_cells(batch, scores, extra, options)
    if needs_quotes:
        return CsvText(table=_all_text(names, cells))
    return CsvText(lines=_line_pieces(cells, len(batch)))


#: Rows whose lines are made as one array: a string array holds at most 2 GiB of text, and a
#: table scored as one batch may be far longer than a block of the command line.
_LINE_ROWS = 1 << 16


def _line_pieces(cells: Sequence[Any], n: int) -> tuple[Any, ...]:
    """:func:`_lines` of the ``n`` rows, :data:`_LINE_ROWS` rows at a time, and fewer where
    their text would be more than a string array holds (rows of huge cells)."""
    if n <= _LINE_ROWS:
        return _fitted(cells, n)
    pieces: list[Any] = []
    for start in range(0, n, _LINE_ROWS):
        stop = min(n, start + _LINE_ROWS)
        pieces.extend(_fitted(_rows_of(cells, start, stop), stop - start))
    return tuple(pieces)


def _fitted(cells: Sequence[Any], n: int) -> tuple[Any, ...]:
    """:func:`_lines` of the ``n`` rows, halved until each half's text fits in an array."""
    try:
        return (_lines(cells, n),)
    except pyarrow_module().ArrowCapacityError:
        if n <= 1:
            raise
    half = n // 2
    return _fitted(_rows_of(cells, 0, half), half) + _fitted(_rows_of(cells, half, n), n - half)


def _rows_of(cells: Sequence[Any], start: int, stop: int) -> list[Any]:
    """Rows ``start..stop`` of each cell; picks that share their indices still share them."""
    sliced: dict[int, Any] = {}
    out: list[Any] = []
    for cell in cells:
        if not isinstance(cell, _Pick):
            out.append(cell.slice(start, stop - start))
            continue
        indices = cell.indices
        if indices is not None:
            indices = sliced.setdefault(id(indices), indices[start:stop])
        pick = _Pick(cell.texts, indices, cell.lo, cell.hi, stop - start)
        pick.value = cell.value
        out.append(pick)
    return out


def _lines(cells: Sequence[Any], n: int) -> Any:
    """The ``n`` rows of these columns (Arrow string arrays, or :class:`_Pick` objects) as
    lines, each cell as it is (none needs quoting), ``,`` between them and ``\\n`` after."""
    # Neighbours of few texts first, then those whose index follows from another's: the
    # few-text groups (the level, cut points, flags and provenance) then meet the measures'
    # as one pick.
    joined = _joined_all(_joined_all(cells, _joined), _through)
    last = joined[-1]
    if isinstance(last, _Pick):
        joined[-1] = _joined(last, _Pick.constant("\n", n), "")
        return compute().join_cells(*map(_made, joined), separator=",")
    # A made column last (a pass-through column): each line is made ending in a separator,
    # which then becomes the line end in place, rather than the column joined with a line
    # end first, which copied it again (a tenth of the lines' cost).
    lines = compute().join_cells(*map(_made, joined), "", separator=",")
    return _ended(lines)


def _joined_all(
    cells: Sequence[Any], join: Callable[[_Pick, _Pick, str], _Pick | None]
) -> list[Any]:
    """``cells`` with each run of neighbouring picks that ``join`` joins made one."""
    joined: list[Any] = []
    for cell in cells:
        last = joined[-1] if joined else None
        if isinstance(cell, _Pick) and isinstance(last, _Pick):
            both = join(last, cell, ",")
            if both is not None:
                joined[-1] = both
                continue
        joined.append(cell)
    return joined


def _ended(lines: Any) -> Any:
    """``lines``, just made by a join and held by nothing else, with each one's last byte made
    ``\\n``: in place, or in a copy where pyarrow's buffer is read-only."""
    pa = pyarrow_module()
    offsets, data = lines.buffers()[1:]
    if data is None or not len(lines):
        return lines
    ends = Text(lines).offsets[1:] - 1
    if data.is_mutable:
        np.frombuffer(data, dtype=np.uint8)[ends] = ord("\n")
        return lines
    copy = np.frombuffer(data, dtype=np.uint8).copy()
    copy[ends] = ord("\n")
    return pa.Array.from_buffers(
        pa.string(), len(lines), [None, offsets, pa.py_buffer(copy)], offset=lines.offset
    )


def _csv_cells(
    batch: RecordBatch,
    scores: BatchScores,
    extra: Mapping[str, TextColumn],
    options: WriteOptions,
) -> tuple[list[str], list[Any], bool]:
    """The output's column names; each column's text, made (an Arrow string array) or still
    a :class:`_Pick`; and whether any cell holds a comma, quote or line break."""
    n = len(batch)
    if len(scores) != n:
        raise ConfigurationError("scores and records differ in length")
    free_text: list[Any] = []

    def text(column: TextColumn) -> Any:
        protected = protect_column(column)
        free_text.append(protected)
        return protected

    def constant(value: str) -> _Pick:
        return _Pick.constant(value, n)

    level = np.asarray(scores.level, dtype=np.int8)
    cutpoints = scores.cutpoint_set or ""
    reason_table, reason_index = _reasons(scores)
    theta, theta_se, score_se, score = _float_texts(
        np.ascontiguousarray(scores.theta, dtype=np.float64),
        np.ascontiguousarray(scores.theta_se, dtype=np.float64),
        np.ascontiguousarray(scores.score_se, dtype=np.float64),
        score=np.ascontiguousarray(scores.score, dtype=np.float64),
        decimals=options.score_decimals,
    )
    columns: dict[str, Any] = {
        "assessment_id": text(batch.assessment_id),
        "patient_id": text(batch.patient_id),
        "assessed_on": _date_text(np.asarray(batch.assessed_on, dtype="datetime64[D]")),
        "instrument": constant(protect(batch.instrument.id)),
        "status": _lookup(["not-scored", "scored"], scores.scored.astype(np.int8)),
        "n_answered": _int_text(scores.n_answered),
        "raw_score": _int_text(scores.raw_score),
        "theta": theta,
        "theta_se": theta_se,
        "score": score,
        "score_se": score_se,
        "level": _lookup(["", "1", "2", "3", "4"], np.clip(level, 0, 4)),
        "cutpoint_set": _lookup(["", protect(cutpoints)], (level > 0).astype(np.int8)),
        "flags": _lookup(_FLAG_TEXT, scores.flags),
        "provider": constant(protect(scores.provider)),
        "provider_version": constant(protect(scores.provider_version)),
        "calibration_id": constant(protect(scores.calibration_id or "")),
        "calibration_sha256": constant(protect(scores.calibration_sha256 or "")),
        "demo": constant("true" if scores.demo else "false"),
        REASON_COLUMN: _lookup([protect(r) for r in reason_table], reason_index),
    }
    for name in options.extra_columns:
        columns[name] = text(_extra(name, batch, extra))
    constants = [
        batch.instrument.id,
        cutpoints,
        scores.provider,
        scores.provider_version,
        scores.calibration_id or "",
        scores.calibration_sha256 or "",
        *reason_table,
    ]
    needs_quotes = any(c in s for s in constants for c in ',"\r\n') or any(
        Text(col).has_bytes(_STRUCTURAL) for col in free_text
    )
    return list(columns), list(columns.values()), needs_quotes


def csv_text_table(table: Any, score_decimals: int) -> tuple[Any, bool]:
    """A typed scored table (:func:`typed_schema`, plus any tailoring columns) as the all-text,
    spreadsheet-safe table the CSV output holds — the same text :func:`csv_table` gives for the
    same rows — and whether any cell needs quoting. Lists are ``;``-joined, dates ISO, missing
    values empty."""
    pa = pyarrow_module()
    pc = compute()
    n = table.num_rows
    columns: dict[str, Any] = {}
    free_text: list[Any] = []
    for name in table.column_names:
        column = combined(table.column(name))
        kind = column.type
        if name == "score":
            values = to_numpy(column)
            text = _made(_score_text(np.asarray(values, dtype=np.float64), score_decimals))
        elif pa.types.is_floating(kind):
            values = to_numpy(column)
            text = _float_text(np.asarray(values, dtype=np.float64))
        elif pa.types.is_integer(kind):
            present = ~to_numpy(column.is_null())
            values = np.asarray(to_numpy(pc.fill_null(column, 0)))
            text = _made(_int_text(values.astype(np.int64)))
            if not present.all():
                text = pc.if_else(from_numpy(present), text, "")
        elif pa.types.is_boolean(kind):
            # both values in one column (runs of several providers) look up by 0 and 1, not
            # by the booleans, which are no indices; a missing value is empty
            present = ~to_numpy(column.is_null())
            flags = to_numpy(pc.fill_null(column, False))
            text = _made(_lookup(["false", "true"], np.asarray(flags, dtype=np.int8)))
            if not present.all():
                text = pc.if_else(from_numpy(present), text, "")
        else:
            if pa.types.is_list(kind):
                column = pc.call("binary_join", column, ";")
            elif not pa.types.is_string(kind):
                column = pc.cast(column, pa.string())
            text = protect_column(to_arrow_text(pc.fill_null(column, ""))) if n else column
            free_text.append(text)
        columns[name] = text if n else text_array([])
    needs_quotes = any(Text(col).has_bytes(_STRUCTURAL) for col in free_text if len(col))
    return pa.table(columns), needs_quotes


def typed_schema(extra_columns: Sequence[str]) -> Any:
    """The Arrow schema of :func:`typed_table` (Parquet and JSON outputs): the one scored-table
    schema, :func:`pamlib.tables.scored.scored_schema`."""
    from pamlib.tables.scored import scored_schema

    pyarrow_module()  # the same error as every writer when pyarrow is missing
    return scored_schema(extra_columns)


def typed_table(
    batch: RecordBatch,
    scores: BatchScores,
    extra: Mapping[str, TextColumn],
    options: WriteOptions,
) -> Any:
    """The rows of one batch with typed columns: missing numbers and absent text are null,
    ``flags`` a list; no spreadsheet protection (these formats are not opened as sheets)."""
    pa = pyarrow_module()
    pc = compute()
    n = len(batch)
    if len(scores) != n:
        raise ConfigurationError("scores and records differ in length")

    def floats(values: npt.NDArray[np.float64]) -> Any:
        return from_numpy(np.asarray(values, dtype=np.float64), mask=np.isnan(values))

    def nullable(column: TextColumn) -> Any:
        arr = to_arrow_text(column)
        return pc.if_else(pc.equal(arr, ""), text_array([None])[0], arr)

    def constant(value: str | None) -> Any:
        return pa.nulls(n, pa.string()) if value is None else _constant(value, n)

    level = np.asarray(scores.level, dtype=np.int8)
    reason_table, reason_index = _reasons(scores)
    flags = text_lists([_FLAG_TEXT[b].split(";") if b else [] for b in range(256)])
    score = round_half_away_array(scores.score, options.score_decimals)
    columns = [
        to_arrow_text(batch.assessment_id),
        nullable(batch.patient_id),
        from_numpy(np.asarray(batch.assessed_on, dtype="datetime64[D]")),
        constant(batch.instrument.id),
        _made(_lookup(["not-scored", "scored"], scores.scored.astype(np.int8))),
        from_numpy(np.asarray(scores.n_answered, dtype=np.int16)),
        from_numpy(np.asarray(scores.raw_score, dtype=np.int32)),
        floats(scores.theta),
        floats(scores.theta_se),
        floats(score),
        floats(scores.score_se),
        from_numpy(level, mask=level == 0),
        pc.take(
            text_array([None, scores.cutpoint_set]),
            from_numpy((level > 0).astype(np.int8)),
        ),
        pc.take(flags, from_numpy(np.asarray(scores.flags))),
        constant(scores.provider),
        constant(scores.provider_version),
        constant(scores.calibration_id),
        constant(scores.calibration_sha256),
        from_numpy(np.full(n, bool(scores.demo), dtype=np.bool_)),
        pc.take(text_array([None, *reason_table[1:]]), from_numpy(np.asarray(reason_index))),
        *(to_arrow_text(_extra(name, batch, extra)) for name in options.extra_columns),
    ]
    return pa.Table.from_arrays(columns, schema=typed_schema(options.extra_columns))


# -- files -----------------------------------------------------------------------------------


class CsvWriter:
    """:func:`csv.writer` with ``\\n`` line ends that also quotes a row holding a bare CR.

    With ``\\n`` as the line terminator, the :mod:`csv` module leaves a cell with a carriage
    return unquoted, and every reader then splits the record in two; such a row is written with
    every cell quoted, so it reads back as written.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._plain = csv.writer(stream, lineterminator="\n")
        self._quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: Sequence[Any]) -> None:
        try:  # one search of the row's text, not a Python step a cell (rejects write many)
            has_cr = "\r" in "\n".join(row)
        except TypeError:  # a cell that is not text
            has_cr = any(isinstance(cell, str) and "\r" in cell for cell in row)
        if has_cr:
            self._quoted.writerow(row)
        else:
            self._plain.writerow(row)

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class RejectsWriter:
    """The rejects file: ``source,line,code,message``, the source's columns, then ``record``.

    ``record`` holds a reject's raw text, or — for readers whose fields are not columns (JSON
    paths) — those fields as a JSON object, so nothing is lost.

    Cells are spreadsheet-safe (see :func:`protect`). The file holds the original fields —
    identifiers included — and needs the same care as the input.
    """

    def __init__(self, target: Target, source_columns: Sequence[str]) -> None:
        self._target = AtomicTarget(target)
        self._text = io.TextIOWrapper(self._target.stream, encoding="utf-8", newline="")
        self._columns = tuple(source_columns)
        self._csv = CsvWriter(self._text)
        self._csv.writerow([protect(c) for c in (*REJECT_COLUMNS, *self._columns, "record")])
        self.count = 0

    @property
    def name(self) -> str:
        return self._target.name

    def write(self, rejects: Iterable[Reject]) -> None:
        known = set(self._columns)
        columns = list(self._columns)
        # a reject's source, code and message repeat from one reject to the next: each
        # protected once
        shown: dict[str, str] = {}
        for reject in rejects:
            where = str(reject.line) if reject.line is not None else reject.location
            given = reject.fields
            record = reject.record
            if list(given) == columns:  # the header's fields, in its order (a file's reject)
                fields = list(given.values())
            else:
                fields = [given.get(c, "") for c in columns]
                others = {k: v for k, v in given.items() if k not in known}
                if others and not record:  # fields the header does not name: keep them too
                    record = json.dumps(others, ensure_ascii=False, sort_keys=True)
            # only a cell that could start a formula is looked at further, and only in a row
            # where one does
            if _RISKY_CELL.search("\x00".join(fields)) is not None:
                fields = [protect(f) if f and f[0] in _PROTECT_START else f for f in fields]
            head = [shown.get(t) or shown.setdefault(t, protect(t)) for t in
                    (reject.source, reject.code, reject.message)]  # fmt: skip
            self._csv.writerow([head[0], where, head[1], head[2], *fields, protect(record)])
            self.count += 1

    def close(self) -> None:
        self._text.flush()
        self._text.detach()
        self._target.commit()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._text.flush()
            self._text.detach()
        self._target.discard()
