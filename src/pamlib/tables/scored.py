"""The scored table — what ``pamlib score`` writes — read, checked and typed once.

Reports (:mod:`pamlib.reporting`) and tailoring (:mod:`pamlib.tailoring`) both start from a
:class:`ScoredTable`, so they accept and refuse exactly the same files and link a patient's
assessments by the same key. Its columns and their Arrow types are :func:`scored_schema`
(documented in :doc:`/scored-table`).

A table may come in typed (Parquet, JSON Lines, an Arrow, pandas or polars table) or as text
(CSV, where every value is a string); either way it comes out in the one schema. Every problem
of the whole table is collected into one :class:`~pamlib.errors.FormatError` whose locations
are row numbers (``row N`` counts data rows from 1, blank lines not counted; ``line N`` is a
line of a CSV file that cannot be read as a table), never identifiers or values.

pyarrow is imported only when a table is built, so ``import pamlib`` stays cheap.
"""

from __future__ import annotations

import csv
import functools
import importlib
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from pamlib.errors import ConfigurationError, FormatError, Problem

if TYPE_CHECKING:
    import polars
    import pyarrow as pa

__all__ = [
    "IDENTITY_COLUMNS",
    "RECOMMENDATION_TYPES",
    "REQUIRED_COLUMNS",
    "STANDARD_TYPES",
    "ScoredTable",
    "scored_schema",
]

TextArray = NDArray[np.object_]

#: The standard columns and ``reason``, in order, with the kind of Arrow type each holds:
#: ``text`` is ``string``, ``date`` is ``date32``, ``list`` is ``list<string>``, ``bool`` is
#: ``bool``, ``float`` is ``float64``, ``intN`` is the signed integer of N bits.
STANDARD_TYPES: dict[str, str] = {
    "assessment_id": "text",
    "patient_id": "text",
    "assessed_on": "date",
    "instrument": "text",
    "status": "text",
    "n_answered": "int16",
    "raw_score": "int32",
    "theta": "float",
    "theta_se": "float",
    "score": "float",
    "score_se": "float",
    "level": "int8",
    "cutpoint_set": "text",
    "flags": "list",
    "provider": "text",
    "provider_version": "text",
    "calibration_id": "text",
    "calibration_sha256": "text",
    "demo": "bool",
    "reason": "text",
}

#: The columns tailoring appends (``pamlib score --recommend``), with their kinds: pathway ids
#: and rule ids are lists (``;``-joined in CSV), ``reassess_by`` is a date, and
#: ``no_pathway_reason`` is text.
RECOMMENDATION_TYPES: dict[str, str] = {
    "recommended_pathways": "list",
    "recommendation_rules": "list",
    "reassess_by": "date",
    "no_pathway_reason": "text",
}

#: Columns no scored table can do without (besides a patient key: see :class:`ScoredTable`).
REQUIRED_COLUMNS: tuple[str, ...] = ("assessed_on", "status", "score", "level")

#: The columns a row's patient key may come from, in order of preference.
IDENTITY_COLUMNS: tuple[str, str, str] = ("patient_id", "nhs_number", "nhs_pseudonym")

#: A score as pamlib writes it: ASCII digits, no sign, no padding, no leading zero, an optional
#: decimal point followed by digits (``47.0``, ``100``, ``0.5``).
_SCORE_TEXT = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.[0-9]+)?")
_INT_TEXT = re.compile(r"-?[0-9]+")
_FLOAT_TEXT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NHS_SEPARATORS = re.compile(r"[\s\-]+")
_INT_RANGE = {"int8": (-(2**7), 2**7 - 1), "int16": (-(2**15), 2**15 - 1)}
_INT_RANGE["int32"] = (-(2**31), 2**31 - 1)

#: 0001-01-01 and 9999-12-31 in days since 1970-01-01: the dates a table may hold.
_FIRST_DAY = -719_162
_LAST_DAY = 2_932_896

#: Problems listed in one error before the rest are summarised as a count.
MAX_PROBLEMS = 50

#: Rows read and checked at a time by :meth:`ScoredTable.read_blocks`. Checking a block takes
#: a few hundred bytes a row while it lasts, so the block, not the file, sets that memory;
#: smaller blocks cost little time (each distinct value is still parsed once a block).
BLOCK_ROWS = 1 << 17


def release_freed_memory() -> None:
    """Hand memory freed by a block back to the system.

    Arrow's allocator keeps freed blocks for reuse, and the C library's keeps the many
    medium-sized NumPy buffers of a block in its heap, where later small allocations pin it:
    without this, a process reading a large file block by block holds several blocks' worth it
    no longer uses, growing with the file. ``malloc_trim`` exists in glibc only; elsewhere only
    Arrow's memory is handed back.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


#: Blocks of at least this many bytes are mapped on their own by glibc (see
#: :func:`hand_back_large_blocks`).
_MMAP_THRESHOLD = 1 << 20


@functools.cache
def hand_back_large_blocks() -> None:
    """Have the C library map every block of 1 MiB or more on its own, so that freeing one
    hands it back to the system at once.

    glibc starts by mapping blocks of 128 KiB or more apart, but raises that threshold to the
    size of each such block freed, up to 32 MiB: after the first whole-column temporary of a
    large report is freed, the next ones come from its heap, which keeps their memory once
    they are freed (a hundred MiB and more at ten million rows, on top of the live columns).
    A fixed threshold stops that; it lasts for the process, so only the command line calls
    it (``pamlib report``): an application that builds large reports in its own process sets
    the same with the environment variable ``MALLOC_MMAP_THRESHOLD_=1048576`` if it wants it.
    Nothing happens outside glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


#: glibc's ``mallopt`` parameter for the threshold (``malloc.h``).
_M_MMAP_THRESHOLD = -3


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return trim


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    types: dict[str, Callable[[], pa.DataType]] = {
        "text": pa.string,
        "date": pa.date32,
        "bool": pa.bool_,
        "float": pa.float64,
        "int8": pa.int8,
        "int16": pa.int16,
        "int32": pa.int32,
        "list": lambda: pa.list_(pa.string()),
    }
    return types[kind]()


def _kind(name: str) -> str:
    return STANDARD_TYPES.get(name) or RECOMMENDATION_TYPES.get(name) or "text"


def scored_schema(extra_columns: Sequence[str] = (), *, recommendations: bool = False) -> pa.Schema:
    """The Arrow schema of a scored table: the standard columns and ``reason``, then
    ``extra_columns`` (text: ``nhs_number``, ``nhs_pseudonym``, pass-through columns such as
    ``site``), then — with ``recommendations`` — the tailoring columns
    (:data:`RECOMMENDATION_TYPES`).

    It is what Parquet and JSON Lines outputs hold, and what every :class:`ScoredTable` holds
    whatever it was read from.

    >>> [str(t) for t in scored_schema().types][:4]
    ['string', 'string', 'date32[day]', 'string']
    """
    import pyarrow as pa

    names = [*STANDARD_TYPES, *(n for n in extra_columns if n not in STANDARD_TYPES)]
    if recommendations:
        names = [n for n in names if n not in RECOMMENDATION_TYPES]
        names += list(RECOMMENDATION_TYPES)
    return pa.schema([pa.field(n, _arrow_type(_kind(n))) for n in names])


# -- problems --------------------------------------------------------------------------------


#: How many rows of each kind of problem (code) a check keeps to list; the rest are counted.
_KEPT_PER_CODE = 10


@attrs.define
class _Problems:
    """The problems of a table's check: the first rows of each kind kept, every row counted.

    A table with no patient key or a date column of another format has a problem in every
    row; listing fifty of one kind would hide the other kinds. The first
    :data:`_KEPT_PER_CODE` rows of each code are kept, in row order (the same rows whether the
    table is checked whole or by blocks), and the error lists the first
    :data:`MAX_PROBLEMS` of those by row, with how many of each code there are in all."""

    source: str
    found: list[Problem] = attrs.field(factory=list)
    counts: Counter[str] = attrs.field(factory=Counter)
    #: Rows before the table being checked (a file checked block by block).
    offset: int = 0

    @property
    def n_more(self) -> int:
        """Problems counted but not kept."""
        return sum(self.counts.values()) - len(self.found)

    def add(self, bad: NDArray[np.bool_], code: str, message: str) -> None:
        self.add_rows(np.flatnonzero(bad), code, [message])

    def add_rows(self, rows: NDArray[np.intp], code: str, messages: list[str]) -> None:
        """A problem at each of ``rows``; ``messages`` holds one message, or one per row."""
        room = max(0, _KEPT_PER_CODE - self.counts[code])
        self.found += [
            Problem(
                f"{self.source}: row {i + 1 + self.offset}",
                code,
                messages[k if len(messages) > 1 else 0],
            )
            for k, i in enumerate(rows[:room].tolist())
        ]
        self.counts[code] += len(rows)

    def raise_if_any(self) -> None:
        if not self.found:
            return
        # By row, then code: the same list whether the table was checked whole or by blocks.
        self.found.sort(key=lambda p: (_row_number(p.where), p.code))
        listed = self.found[:MAX_PROBLEMS]
        total = sum(self.counts.values())
        summary = f"{self.source}: {total:,} problem(s) in the scored table"
        if total > len(listed):
            kinds = ", ".join(f"{code} {n:,}" for code, n in sorted(self.counts.items()) if n)
            summary += f" ({total - len(listed):,} more not listed; in all: {kinds})"
        if self.counts["no-patient-key"]:
            summary += (
                "; rows identified by NHS number only are linked when scored with "
                "--keep-nhs-number or --pseudonym-key (or reported straight from the export)"
            )
        raise FormatError(summary, listed)


def _row_number(where: str) -> int:
    """The row of a problem located ``source: row N`` (0 for the header and the file)."""
    head, _, number = where.rpartition(": row ")
    return int(number) if head and number.isdigit() else 0


# -- typing columns --------------------------------------------------------------------------


def _distinct(column: pa.Array | pa.ChunkedArray) -> tuple[list[Any], NDArray[np.intp]]:
    """Distinct texts of a column (``""`` for null) in order of first appearance, and each
    row's index into them: each distinct text is parsed once, whatever the row count. Arrow
    hashes the column; no Python object is made per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return _encoded(pc.dictionary_encode(pc.fill_null(column, _text_scalar(""))))


def _encoded(encoded: pa.DictionaryArray | pa.ChunkedArray) -> tuple[list[Any], NDArray[np.intp]]:
    """The dictionary and the indices (as NumPy) of a dictionary-encoded column. A chunked
    column is encoded chunk by chunk, not copied whole first; its chunks are given one
    dictionary."""
    dictionary, index = _encoded_arrow(encoded)
    return dictionary.to_pylist(), index.astype(np.intp, copy=False)


def _encoded_arrow(encoded: pa.DictionaryArray | pa.ChunkedArray) -> tuple[pa.Array, NDArray[Any]]:
    """:func:`_encoded` with the dictionary left in Arrow, the indices as Arrow made them."""
    import pyarrow as pa

    from pamlib.formats._arrow import text_array, to_numpy

    chunks = [encoded] if isinstance(encoded, pa.DictionaryArray) else encoded.chunks
    if not chunks:
        return text_array([]), np.zeros(0, dtype=np.int32)
    # Arrow encodes a chunked column against one table of values, which every chunk holds;
    # where the chunks' dictionaries are not that one, they are unified first.
    held = [(len(c.dictionary), [b.address for b in c.dictionary.buffers() if b]) for c in chunks]
    if any(h != held[0] for h in held):
        chunks = pa.chunked_array(chunks).unify_dictionaries().chunks
    parts = [to_numpy(c.indices) for c in chunks]
    return chunks[0].dictionary, parts[0] if len(parts) == 1 else np.concatenate(parts)


def _first_rows(codes: NDArray[np.intp]) -> NDArray[np.intp]:
    """For codes numbered in order of first appearance (as :func:`_distinct` gives them), the
    row where each row's code first appears."""
    if not len(codes):
        return codes
    seen_before = np.concatenate(([-1], np.maximum.accumulate(codes)[:-1]))
    return np.flatnonzero(codes > seen_before)[codes]


def _is_text(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or getattr(pa.types, "is_string_view", lambda _: False)(t)
    )


def _unreadable_columns(table: pa.Table, source: str) -> list[Problem]:
    """Columns no scored table holds (structs, maps, lists of lists: a Parquet or JSON file of
    something else), and text that is not UTF-8 (Parquet and JSON Lines readers pass bytes
    through): a problem each, naming the column, never a value."""
    import pyarrow as pa

    found = []
    for name in table.column_names:
        column = table.column(name)
        kind = column.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        item = kind.value_type if pa.types.is_list(kind) or pa.types.is_large_list(kind) else kind
        if not _is_scalar(item):
            found.append(
                Problem(source, "unreadable-column", f"column {name!r} holds {kind}, not text")
            )
            continue
        if _is_text(item) or pa.types.is_binary(item) or pa.types.is_large_binary(item):
            try:
                _plain(column).cast(pa.list_(pa.string()) if item is not kind else pa.string())
                column.validate(full=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                found.append(
                    Problem(source, "not-utf8", f"column {name!r} holds text that is not UTF-8")
                )
    return found


def _is_scalar(kind: pa.DataType) -> bool:
    """A type a scored table's cell may have: text, bytes, a number, a truth value, a date."""
    import pyarrow as pa

    t = pa.types
    return bool(
        _is_text(kind)
        or t.is_binary(kind)
        or t.is_large_binary(kind)
        or t.is_integer(kind)
        or t.is_floating(kind)
        or t.is_decimal(kind)
        or t.is_boolean(kind)
        or t.is_date(kind)
        or t.is_timestamp(kind)
        or t.is_null(kind)
    )


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encoded (pandas categories) and view/large string columns as plain ones."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if _is_text(column.type) and not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return column


def _texts(column: pa.Array | pa.ChunkedArray) -> TextArray:
    """A text column as a NumPy object array, ``""`` where null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import to_numpy

    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return to_numpy(pc.fill_null(column, _text_scalar("")))


@functools.cache
def _text_scalar(value: str) -> Any:
    """``value`` as an Arrow ``string`` scalar, for compute functions: given a Python string,
    they convert it with ``pyarrow.scalar``, which imports pandas wherever it is installed
    (see :func:`pamlib.formats._arrow.from_numpy`)."""
    from pamlib.formats._arrow import scalar

    return scalar(value, _arrow_type("text"))


def _mask(valid: NDArray[np.bool_]) -> Any:
    from pamlib.formats._arrow import from_numpy

    return from_numpy(~valid)


def _is_number(kind: pa.DataType) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(t.is_integer(kind) or t.is_floating(kind) or t.is_decimal(kind))


def _as_float64(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column of numbers as ``float64`` (null where null). A float16/32 or a decimal is the
    ``float64`` of its text — what an export of it holds: a float32 47.3 is 47.3, not
    47.29999923706055 (nor is a decimal's float always the nearest); an integer past 2**53 is
    the nearest float."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_decimal(kind) or (pa.types.is_floating(kind) and kind.bit_width < 64):
        return pc.cast(pc.cast(column, pa.string()), pa.float64())
    return pc.cast(column, pa.float64(), safe=False)


def _to_text(column: pa.ChunkedArray) -> pa.Array:
    """Any column as ``string``; empty text is null (a CSV cell cannot tell them apart)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import combined, texts, to_numpy

    if pa.types.is_floating(column.type):  # Arrow would write 1e-05 or nan
        values = np.asarray(to_numpy(_as_float64(column)), dtype=np.float64)  # NaN where null
        text = [
            "" if np.isnan(v) else np.format_float_positional(v, trim="-") for v in values.tolist()
        ]
        column = pa.chunked_array([texts(text)])
    elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        column = pc.binary_join(pc.cast(column, pa.list_(pa.string())), _text_scalar(";"))
    elif pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.date32())
    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    column = combined(column)
    return pc.if_else(pc.equal(column, _text_scalar("")), _null_text(), column)


@functools.cache
def _null_text() -> Any:
    """A null ``string`` scalar (see :func:`_text_scalar`)."""
    import pyarrow as pa

    return pa.nulls(1, pa.string())[0]


def _to_date(
    column: pa.ChunkedArray, name: str, problems: _Problems, *, required: bool
) -> pa.Array:
    """ISO dates ``YYYY-MM-DD``, strictly (no time part, no ``2024``); typed dates pass."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import combined, from_numpy, scalar, to_numpy

    message = f"{name} is not an ISO date (YYYY-MM-DD)"
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        days = combined(pc.cast(column, pa.date32()))
        if required:
            problems.add(to_numpy(days.is_null()), "bad-date", message)
        # as for text, four-digit years only: Python's dates, and ISO text, end there
        number = np.asarray(
            to_numpy(pc.fill_null(days.cast(pa.int32()), scalar(0, pa.int32()))), np.int64
        )
        problems.add((number < _FIRST_DAY) | (number > _LAST_DAY), "bad-date", message)
        return days
    distinct, index = _distinct(column)
    parsed = np.full(len(distinct) or 1, np.datetime64("NaT"), dtype="datetime64[D]")
    ok = np.zeros(len(distinct) or 1, dtype=np.bool_)
    for k, text in enumerate(distinct):
        if text == "":
            ok[k] = not required
        elif _DATE_TEXT.fullmatch(text):
            try:
                day = np.datetime64(text, "D")
            except ValueError:
                continue
            if str(day) == text:
                parsed[k], ok[k] = day, True
    problems.add(~ok[index], "bad-date", message)
    days_np = parsed[index] if len(index) else np.zeros(0, dtype="datetime64[D]")
    return from_numpy(days_np, np.isnat(days_np))


def _parse_text(
    column: pa.ChunkedArray, parse: Callable[[str], float | None]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Numbers from a text column, each distinct value parsed once (``parse`` gives ``None``
    for text it refuses); NaN where empty or refused, and where the text was acceptable."""
    distinct, index = _distinct(column)
    parsed = np.full(len(distinct) or 1, np.nan)
    valid = np.ones(len(distinct) or 1, dtype=np.bool_)
    for k, text in enumerate(distinct):
        if text == "":
            continue
        value = parse(text)
        if value is None:
            valid[k] = False
        else:
            parsed[k] = value
    if not len(index):
        return np.zeros(0), np.zeros(0, dtype=np.bool_)
    return parsed[index], valid[index]


def _to_int(
    column: pa.ChunkedArray,
    name: str,
    kind: str,
    problems: _Problems,
    *,
    allowed: tuple[int, int] | None = None,
    code: str = "bad-number",
    message: str = "",
) -> pa.Array:
    """Whole numbers (typed, whole floats as pandas makes of a column with gaps, or text)."""

    from pamlib.formats._arrow import from_numpy, to_numpy

    lo, hi = allowed or _INT_RANGE[kind]
    message = message or f"{name} must be empty or a whole number from {lo} to {hi}"
    if _is_number(column.type):
        # an integer past 2**53 is near enough to be refused by the range check
        numbers = np.asarray(to_numpy(_as_float64(column)), dtype=np.float64)  # NaN: null
        missing = np.isnan(numbers)
        good = missing | ((numbers == np.floor(np.nan_to_num(numbers))) & (numbers >= lo))
        good &= missing | (numbers <= hi)
    else:

        def whole(text: str) -> float | None:
            return float(text) if _INT_TEXT.fullmatch(text) and lo <= int(text) <= hi else None

        numbers, good = _parse_text(column, whole)
        missing = np.isnan(numbers)
    problems.add(~good, code, message)
    keep = good & ~missing
    out = np.where(keep, numbers, 0).astype(np.dtype(_arrow_type(kind).to_pandas_dtype()))
    return from_numpy(out, ~keep)


def _to_float(
    column: pa.ChunkedArray,
    name: str,
    problems: _Problems,
    *,
    score: bool = False,
) -> pa.Array:
    """Numbers; NaN is null. A ``score`` is from 0 to 100 and, as text, written as pamlib
    writes it (:data:`_SCORE_TEXT`): Python's ``float`` would also take ``" 47.0 "``,
    ``"４７.０"`` (full-width digits), ``"1e1"`` or ``"nan"``, none of which pamlib wrote."""

    from pamlib.formats._arrow import from_numpy, to_numpy

    grammar = _SCORE_TEXT if score else _FLOAT_TEXT
    if _is_number(column.type):
        numbers = np.asarray(to_numpy(_as_float64(column)), dtype=np.float64)  # NaN: null
        good = np.ones(len(numbers), dtype=np.bool_)
    else:
        numbers, good = _parse_text(
            column, lambda text: float(text) if grammar.fullmatch(text) else None
        )
    if score:
        with np.errstate(invalid="ignore"):
            good &= np.isnan(numbers) | ((numbers >= 0) & (numbers <= 100))
        problems.add(
            ~good,
            "bad-score",
            "score must be empty or a number from 0 to 100 written as pamlib writes it "
            "(digits, an optional decimal point: 47.0; no sign, spaces or leading zeros)",
        )
    else:
        good &= ~np.isinf(numbers)
        problems.add(~good, "bad-number", f"{name} must be empty or a number")
    numbers = np.where(good, numbers, np.nan)
    return from_numpy(numbers, np.isnan(numbers))


def _to_list(column: pa.ChunkedArray) -> pa.Array:
    """Lists of strings; text is split on ``;`` (as CSV holds them), blanks dropped; null is
    the empty list."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import combined, from_numpy, text_lists

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        if column.type != pa.list_(pa.string()):  # large lists (polars'), dictionary items
            column = pc.cast(column, pa.list_(pa.string()))
        lists = combined(column)
        return pc.if_else(lists.is_null(), text_lists([[]])[0], lists)
    distinct, index = _distinct(column)
    items = [[p.strip() for p in text.split(";") if p.strip()] for text in distinct]
    return text_lists(items or [[]]).take(from_numpy(index))


def _to_bool(column: pa.ChunkedArray, name: str, problems: _Problems) -> pa.Array:
    """Booleans: typed, or ``true``/``false`` in any case; empty is null."""
    import pyarrow as pa

    from pamlib.formats._arrow import combined, from_numpy

    if pa.types.is_boolean(column.type):
        return combined(column)
    distinct, index = _distinct(column)
    spelt = [str(t).strip().lower() for t in distinct]
    known = np.array([s in ("true", "false", "") for s in spelt] or [True], dtype=np.bool_)
    value = np.array([s == "true" for s in spelt] or [False], dtype=np.bool_)
    null = np.array([s == "" or s not in ("true", "false") for s in spelt] or [True])
    problems.add(~known[index], f"bad-{name}", f"{name} must be 'true' or 'false'")
    return from_numpy(value[index], null[index])


# -- checks ---------------------------------------------------------------------------------


def _check_repeats(ids: pa.Array, problems: _Problems) -> None:
    """A problem at every row whose ``assessment_id`` an earlier row already has: an assessment
    counts once, so a file with repeated rows (concatenated twice?) is refused, not summed."""
    distinct, codes = _distinct(ids)
    first = _first_rows(codes)
    repeated = np.flatnonzero(first != np.arange(len(codes)))
    if "" in distinct:  # rows with no id are a problem of their own
        repeated = repeated[codes[repeated] != distinct.index("")]
    messages = [f"assessment_id repeats row {first[i] + 1}" for i in repeated.tolist()]
    problems.add_rows(repeated, "duplicate-assessment-id", messages or [""])


def _id_hashes(ids: pa.Array) -> tuple[NDArray[np.intp], NDArray[np.uint64]]:
    """The rows of a block that have an assessment id, and a 64-bit hash of each of their ids
    (the first half of the 128-bit key the scorer's repeat check uses)."""
    from pamlib.formats._arrow import Text, to_numpy
    from pamlib.formats._columnar import _keys

    present = np.flatnonzero(~to_numpy(ids.is_null()))
    if not len(present):
        return present, np.zeros(0, dtype=np.uint64)
    return present, _keys(Text(ids), present)[0]


class _IdHashes:
    """Every assessment id of a file as a 64-bit hash, to find the ids it repeats.

    8 bytes an id (filled in place when the row count is known), sorted once after the last
    block. Ids whose hashes occur more than once — the repeats, and the rare different ids that
    share a hash — are then compared exactly, as text, in a second pass over the ids, so a
    shared hash never refuses a file and every repeat is found.
    """

    def __init__(self, n_rows: int | None) -> None:
        self._filled: NDArray[np.uint64] = np.empty(n_rows or 0, dtype=np.uint64)
        self._n = 0
        self._parts: list[NDArray[np.uint64]] = []

    def add(self, ids: pa.Array) -> None:
        _, found = _id_hashes(ids)
        if self._n + len(found) <= len(self._filled):
            self._filled[self._n : self._n + len(found)] = found
            self._n += len(found)
        else:
            self._parts.append(found)

    def _shared(self) -> tuple[NDArray[np.uint64], int]:
        """The hashes held by more than one id (sorted), and how many ids hold them."""
        hashes = self._filled[: self._n]
        if self._parts:
            hashes = np.concatenate([hashes, *self._parts])
        self._filled, self._parts = np.empty(0, dtype=np.uint64), []
        hashes.sort()
        again = hashes[1:][hashes[1:] == hashes[:-1]]
        del hashes
        keep = np.ones(len(again), dtype=np.bool_)
        np.not_equal(again[1:], again[:-1], out=keep[1:])
        shared = again[keep]
        return shared, len(again) + len(shared)

    def locate_repeats(self, path: Path, rows: int, problems: _Problems) -> None:
        """The problems of :func:`_check_repeats`, for the file these ids were read from: the
        rows with a shared hash are read again and their ids compared as text."""
        import pyarrow as pa

        from pamlib.formats._arrow import from_numpy

        shared, expected = self._shared()
        if not len(shared):
            return
        found_rows: list[NDArray[np.intp]] = []
        found_ids: list[pa.Array] = []
        offset = 0
        for raw in _raw_blocks(path, rows):
            ids = _to_text(_plain(raw.column("assessment_id")))
            present, hashes = _id_hashes(ids)
            at = np.minimum(np.searchsorted(shared, hashes), len(shared) - 1)
            hit = present[shared[at] == hashes]
            found_rows.append(offset + hit)
            found_ids.append(ids.take(from_numpy(hit)))
            offset += raw.num_rows
        if sum(map(len, found_rows)) != expected:
            raise FormatError(
                f"{path.name}: changed while it was read",
                [
                    Problem(
                        path.name, "changed", "the file changed while it was read: read it again"
                    )
                ],
            )
        file_rows = np.concatenate(found_rows)
        _, codes = _distinct(pa.concat_arrays(found_ids))
        first = _first_rows(codes)
        repeated = np.flatnonzero(first != np.arange(len(codes)))
        messages = [
            f"assessment_id repeats row {file_rows[first[i]] + 1}" for i in repeated.tolist()
        ]
        problems.add_rows(file_rows[repeated], "duplicate-assessment-id", messages or [""])


def known_row_count(path: str | os.PathLike[str]) -> int | None:
    """The number of rows of a scored file when it says so without being read (a Parquet
    file's metadata), else ``None``: what is kept of each row can then be filled in place."""
    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".pq"):
        return None
    pa = _pyarrow()
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except (pa.ArrowException, ValueError, OSError):
        return None  # reading it says why


def _demo_verdicts(
    stated: pa.Array,
    flags: pa.Array,
    provider: pa.Array,
    calibration: pa.Array,
    problems: _Problems,
) -> NDArray[np.bool_]:
    """Each row's demo status from :func:`~pamlib.tailoring.context.demo_evidence` (applied
    once per distinct combination of the four columns); contradictions are problems."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import from_numpy
    from pamlib.tailoring.context import demo_evidence

    n = len(stated)
    flag_text = pc.binary_join(flags, _text_scalar(";"))
    # One integer per row for the four columns together; each distinct combination is judged
    # once, at the first row that has it.
    combined = np.zeros(n, dtype=np.int64)
    for column in (stated, flag_text, provider, calibration):
        distinct, codes = _distinct(column)
        combined = combined * max(len(distinct), 1) + codes
    _, index = _distinct(pc.cast(from_numpy(combined), pa.string()))
    firsts = np.flatnonzero(_first_rows(index) == np.arange(n))
    verdicts = [
        demo_evidence(
            stated[i].as_py(),
            flag_text[i].as_py() or "",
            provider[i].as_py() or "",
            calibration[i].as_py() or "",
        )
        for i in firsts.tolist()
    ]
    if not n:
        return np.zeros(0, dtype=np.bool_)
    demo = np.array([d for d, _ in verdicts], dtype=np.bool_)[index]
    conflict = np.array([bool(c) for _, c in verdicts], dtype=np.bool_)[index]
    rows = np.flatnonzero(conflict)
    messages = [
        f"the demo column says false but {', '.join(verdicts[index[i]][1][1:])} say(s) these "
        "are demonstration scores (NOT PAM); fix the table rather than report them unmarked"
        for i in rows.tolist()
    ]
    problems.add_rows(rows, "demo-conflict", messages or [""])
    return demo


def _nhs_keys(
    values: pa.Array | pa.ChunkedArray | TextArray,
) -> tuple[pa.Array, NDArray[np.bool_], NDArray[np.bool_]]:
    """The patient key each NHS number gives (``nhs:`` and the number without spaces or
    dashes, ``""`` where there is none), as Arrow text; where there is one; and where it is
    not a valid number. Each distinct number is cleaned and checked once."""
    from pamlib.formats._arrow import from_numpy, text_array, texts
    from pamlib.identity import is_valid_nhs_number

    distinct, index = _distinct(
        texts(values.tolist()) if isinstance(values, np.ndarray) else values
    )
    cleaned = [_NHS_SEPARATORS.sub("", str(v)) for v in distinct]
    bad = np.array(
        [bool(c) and not is_valid_nhs_number(c) for c in cleaned] or [False], dtype=np.bool_
    )
    present = np.array([bool(c) for c in cleaned] or [False], dtype=np.bool_)
    # Trailing NULs dropped, as a NumPy string drops them (keys were once NumPy strings).
    keys = text_array(["nhs:" + c.rstrip("\x00") if c else "" for c in cleaned] or [""])
    return keys.take(from_numpy(index)), present[index], bad[index]


def blank_texts(values: Sequence[str | None] | TextArray) -> NDArray[np.bool_]:
    """Which texts are missing, empty or only whitespace — no identifier — for keys built from
    them (here and in tailoring). Arrow's whitespace is exactly what :meth:`str.strip` removes,
    and it looks at millions of cells without a Python call each; Python looks where Arrow
    cannot hold a text (a lone surrogate)."""
    import pyarrow as pa

    from pamlib.formats._arrow import texts

    try:
        text = texts(values.tolist() if isinstance(values, np.ndarray) else list(values))
    except (pa.ArrowException, UnicodeError):
        return np.array([not (t or "").strip() for t in values], dtype=np.bool_).reshape(
            len(values)
        )
    return _blank(text).reshape(len(values))


def _blank(text: pa.Array | pa.ChunkedArray) -> NDArray[np.bool_]:
    """:func:`blank_texts` of an Arrow string column (null is blank)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import scalar, to_numpy

    if not pa.types.is_string(text.type):
        text = pc.cast(text, pa.string())
    empty = pc.or_(pc.equal(text, _text_scalar("")), pc.utf8_is_space(text))
    blank = pc.fill_null(empty, scalar(True, empty.type))
    return np.asarray(to_numpy(blank), dtype=np.bool_).reshape(len(text))


def _held_text(
    values: pa.Array | pa.ChunkedArray | ArrayLike | None,
) -> pa.Array | TextArray | None:
    """Texts held apart from a table (its private NHS numbers) as an Arrow string array: a few
    bytes a row, where a Python string takes some sixty. Kept as given where Arrow cannot hold
    them (a lone surrogate); ``None`` stays ``None``."""
    if values is None:
        return None
    import pyarrow as pa

    from pamlib.formats._arrow import combined, texts

    if isinstance(values, pa.ChunkedArray):
        values = combined(values)
    if isinstance(values, pa.Array):
        return values if pa.types.is_string(values.type) else values.cast(pa.string())
    given = np.asarray(values, dtype=object).reshape(-1)
    try:
        return texts(given.tolist())
    except (pa.ArrowException, UnicodeError, TypeError):
        return given


def _patient_keys(
    patient_id: pa.Array | pa.ChunkedArray | TextArray,
    nhs_number: pa.Array | pa.ChunkedArray | TextArray | None,
    pseudonym: pa.Array | pa.ChunkedArray | TextArray | None,
) -> tuple[TextArray, NDArray[np.bool_]]:
    """:func:`_arrow_patient_keys` of Arrow or NumPy text, the keys as a NumPy object array."""
    from pamlib.formats._arrow import texts, to_numpy

    def arrow(values: Any) -> Any:
        return texts(values.tolist()) if isinstance(values, np.ndarray) else values

    keys, bad = _arrow_patient_keys(
        arrow(patient_id), nhs_number, None if pseudonym is None else arrow(pseudonym)
    )
    return to_numpy(keys), bad


def _arrow_patient_keys(
    patient_id: pa.Array | pa.ChunkedArray,
    nhs_number: pa.Array | pa.ChunkedArray | TextArray | None,
    pseudonym: pa.Array | pa.ChunkedArray | None,
) -> tuple[pa.Array | pa.ChunkedArray, NDArray[np.bool_]]:
    """The key of each row (see :class:`ScoredTable`) as Arrow text, ``""`` where there is
    none; and the rows whose key would be an NHS number that is not valid. The columns are
    Arrow text (the NHS numbers may be held as given: see :func:`_held_text`). Rows with a
    ``patient_id`` keep it as it is: only the others are looked at, and no Python string is
    made a row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import from_numpy, text_array

    if not pa.types.is_string(patient_id.type):
        patient_id = pc.cast(patient_id, pa.string())
    keys = pc.fill_null(patient_id, _text_scalar(""))
    n = len(keys)
    # A cell of only whitespace is no identifier (as ``pamlib score`` judges its input): kept as
    # a key, every such row would be one "patient", another person's score a previous one.
    rows = np.flatnonzero(_blank(patient_id))
    bad = np.zeros(n, dtype=np.bool_)
    if not rows.size:
        return keys, bad
    # Each row's key is taken from ``keys``, then the keys made for the rows without one, then
    # the empty text (which the rows left without a key take).
    parts: list[Any] = []

    def add(part: pa.Array | pa.ChunkedArray) -> None:
        parts.extend(part.chunks if isinstance(part, pa.ChunkedArray) else [part])

    add(keys)
    where = np.arange(n, dtype=np.int64)
    where[rows] = -1
    made = n
    if nhs_number is not None:
        # Only a row without a patient_id is keyed by its NHS number: the others' numbers are
        # neither cleaned nor checked (a cohort's patient ids are usually all there).
        nhs, present, invalid = _nhs_keys(_take(nhs_number, rows))
        bad[rows] = invalid & present
        where[rows[present]] = made + np.flatnonzero(present)
        add(nhs)
        made += len(nhs)
        rows = rows[~present]
    if pseudonym is not None and rows.size:
        given = _take(pseudonym, rows)
        use = ~_blank(given)
        if use.any():
            # Trailing NULs dropped, as for an NHS number's key.
            text = pc.utf8_rtrim(_take(given, np.flatnonzero(use)), characters="\x00")
            prefix = _text_scalar("pseudonym:")
            add(pc.binary_join_element_wise(prefix, text, _text_scalar("")))
            where[rows[use]] = made + np.arange(int(use.sum()))
            made += int(use.sum())
    where[where < 0] = made
    add(text_array([""]))
    return pa.chunked_array(parts, type=pa.string()).take(from_numpy(where)), bad


def _take(
    values: pa.Array | pa.ChunkedArray | TextArray, rows: NDArray[np.intp]
) -> pa.Array | pa.ChunkedArray | TextArray:
    """``values[rows]``, Arrow or NumPy."""
    if isinstance(values, np.ndarray):
        return values[rows]
    from pamlib.formats._arrow import from_numpy

    return values.take(from_numpy(rows))


def _standard_columns(
    col: Callable[[str], pa.ChunkedArray],
    names: Sequence[str],
    nhs_number: TextArray | None,
    problems: _Problems,
    *,
    repeats: bool = True,
) -> tuple[dict[str, pa.Array], pa.Array | None, pa.Array | None]:
    """The standard columns typed and checked; and the ``nhs_number`` and ``nhs_pseudonym``
    columns when the table has them."""
    import pyarrow.compute as pc

    from pamlib.formats._arrow import from_numpy, to_numpy

    out: dict[str, pa.Array] = {}
    # Patient key first, then the checks in the order problems were always listed.
    patient_id = _to_text(col("patient_id"))
    public_nhs = _to_text(col("nhs_number")) if "nhs_number" in names else None
    pseudonym = _to_text(col("nhs_pseudonym")) if "nhs_pseudonym" in names else None
    keys, bad_nhs = _arrow_patient_keys(
        patient_id, nhs_number if public_nhs is None else public_nhs, pseudonym
    )
    problems.add(
        to_numpy(pc.equal(keys, _text_scalar(""))),
        "no-patient-key",
        "no patient_id, NHS number or pseudonym to link this row",
    )
    problems.add(bad_nhs, "bad-nhs-number", "the NHS number linking this row is not valid")
    out["assessment_id"] = _to_text(col("assessment_id"))
    out["patient_id"] = patient_id
    if "assessment_id" in names:
        ids = out["assessment_id"]
        problems.add(to_numpy(ids.is_null()), "empty-assessment-id", "assessment_id is empty")
        if repeats:
            _check_repeats(ids, problems)
    out["assessed_on"] = _to_date(col("assessed_on"), "assessed_on", problems, required=True)
    status = _to_text(col("status"))
    text = _texts(status)
    problems.add(
        (text != "scored") & (text != "not-scored"),
        "bad-status",
        "status must be 'scored' or 'not-scored'",
    )
    for name in ("n_answered", "raw_score"):
        out[name] = _to_int(col(name), name, STANDARD_TYPES[name], problems)
    for name in ("theta", "theta_se"):
        out[name] = _to_float(col(name), name, problems)
    out["score"] = _to_float(col("score"), "score", problems, score=True)
    out["score_se"] = _to_float(col("score_se"), "score_se", problems)
    out["level"] = _to_int(
        col("level"),
        "level",
        "int8",
        problems,
        allowed=(1, 4),
        code="bad-level",
        message="level must be empty or 1, 2, 3 or 4",
    )
    out["flags"] = _to_list(col("flags"))
    stated = _to_bool(col("demo"), "demo", problems)
    for name in ("instrument", "status", "cutpoint_set", "provider", "provider_version"):
        out[name] = status if name == "status" else _to_text(col(name))
    for name in ("calibration_id", "calibration_sha256", "reason"):
        out[name] = _to_text(col(name))
    demo = _demo_verdicts(stated, out["flags"], out["provider"], out["calibration_id"], problems)
    out["demo"] = from_numpy(demo)
    return out, public_nhs, pseudonym


def _validate(
    table: pa.Table,
    source: str,
    nhs_number: TextArray | None,
    *,
    problems: _Problems | None = None,
) -> tuple[pa.Table, TextArray | None]:
    """``table`` in :func:`scored_schema`, with its private NHS numbers, or one FormatError.

    With ``problems`` given (a file checked block by block), row problems are added there and
    not raised, and repeated assessment ids are left to the caller, who sees every block."""
    import pyarrow as pa

    names = table.column_names
    if len(set(names)) != len(names):
        raise FormatError(
            f"{source}: not a scored table",
            [Problem(f"{source}: header", "duplicate-column", "a column name repeats")],
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if nhs_number is None and not any(c in names for c in IDENTITY_COLUMNS):
        missing.insert(0, "patient_id")
    if missing:
        raise FormatError(
            f"{source}: not a scored table",
            [Problem(source, "missing-column", f"no column {c!r}") for c in missing],
        )
    unreadable = _unreadable_columns(table, source)
    if unreadable:
        raise FormatError(f"{source}: not a scored table", unreadable)
    if nhs_number is not None and "nhs_number" in names:
        raise ConfigurationError("an NHS number column is given twice (in the table and apart)")
    n = table.num_rows
    if nhs_number is not None and len(nhs_number) != n:
        raise ConfigurationError("the NHS numbers and the table differ in length")
    by_block = problems is not None
    problems = problems if problems is not None else _Problems(source)

    def col(name: str) -> pa.ChunkedArray:
        if name in names:
            return _plain(table.column(name))
        return pa.chunked_array([pa.nulls(n, _arrow_type(_kind(name)))])

    out, public_nhs, pseudonym = _standard_columns(
        col, names, nhs_number, problems, repeats=not by_block
    )
    extras = [c for c in names if c not in STANDARD_TYPES]
    for name in extras:
        kind = _kind(name)
        if kind == "list":
            out[name] = _to_list(col(name))
        elif kind == "date":
            out[name] = _to_date(col(name), name, problems, required=False)
        elif name == "nhs_number" and public_nhs is not None:
            out[name] = public_nhs
        elif name == "nhs_pseudonym" and pseudonym is not None:
            out[name] = pseudonym
        else:
            out[name] = _to_text(col(name))
    if not by_block:
        problems.raise_if_any()
    schema = pa.schema([pa.field(c, _arrow_type(_kind(c))) for c in [*STANDARD_TYPES, *extras]])
    typed = pa.Table.from_arrays([out[c] for c in schema.names], schema=schema)
    return typed, nhs_number


def _as_table(data: object, source: str) -> pa.Table:
    import pyarrow as pa

    from pamlib.tables._text import is_pandas, pandas_table

    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif is_pandas(data):
        # Column by column, as score_table reads a DataFrame: pandas' own Arrow export refuses
        # a column of mixed values (ids as numbers and text, dates and Timestamps) quoting one,
        # refuses repeated names with a bare error, and keeps a filtered frame's index as a
        # column "__index_level_0__" that would be passed through to every output.
        try:
            table = pandas_table(data, lists=True)
        except FormatError as exc:
            found = [Problem(source, p.code, p.message) for p in exc.problems]
            raise FormatError(f"{source}: not a scored table", found) from None
    elif hasattr(data, "__arrow_c_stream__"):
        try:
            table = pa.RecordBatchReader.from_stream(data).read_all()
        except pa.ArrowException as exc:
            raise ConfigurationError(
                f"{source}: the data given cannot be read through Arrow "
                f"({type(exc).__name__}); give columns of text, numbers, dates or lists of text"
            ) from None
    else:
        try:
            table = pa.table(data)
        except (TypeError, ValueError, pa.ArrowException):
            raise ConfigurationError(
                f"cannot read a scored table from a {type(data).__name__}: give a pyarrow "
                "Table or RecordBatch, or a table with __arrow_c_stream__ (pandas>=2.2, polars)"
            ) from None
    return _without_extensions(table)


def _without_extensions(table: pa.Table) -> pa.Table:
    """Extension columns (pandas' periods, Arrow's UUIDs) as the text they print as, as
    ``score_table`` reads them; one it cannot read is left to be refused by name."""
    import pyarrow as pa

    from pamlib.formats._arrow import combined
    from pamlib.tables._text import extension_text

    for i, field in enumerate(table.schema):
        if isinstance(field.type, pa.BaseExtensionType):
            try:
                text = extension_text(combined(table.column(i)))
            except ConfigurationError:
                continue
            table = table.set_column(i, field.name, text)
    return table


def python_table(columns: Mapping[Any, Sequence[Any] | NDArray[Any]], source: str) -> pa.Table:
    """Columns of Python values (rows as JSON or ``DataFrame.to_dict`` gives them: numbers,
    dates, truth values, lists of flags, ``None``) as a table of text, each value as a scored
    CSV holds it, for :meth:`ScoredTable.from_arrow` to check and type: a level ``3`` or
    ``3.0`` is ``"3"``, a list of flags is ``;``-joined, a date ISO. A value of another kind
    is a problem naming its column, never a value; a column name that is not text is its
    text, as pandas' are (``None``, :class:`csv.DictReader`'s key of surplus fields, is no
    column)."""
    import pyarrow as pa

    from pamlib.tables._text import values_as_text

    named = [(str(k), v) for k, v in columns.items() if k is not None]
    names = [name for name, _ in named]
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems = [Problem(source, "duplicate-column", f"the column {n!r} repeats") for n in repeated]
    arrays = []
    for name, values in named:
        given = values.tolist() if isinstance(values, np.ndarray) else list(values)
        try:
            arrays.append(values_as_text(name, given, lists=True))
        except FormatError as exc:
            problems += [Problem(source, p.code, p.message) for p in exc.problems]
    if problems:
        raise FormatError(f"{source}: not a scored table", problems)
    return pa.Table.from_arrays(arrays, names=names)


def _optional_text(values: ArrayLike | None) -> TextArray | None:
    if values is None:
        return None
    items = [("" if v is None else str(v)) for v in np.asarray(values, dtype=object).tolist()]
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "reading a scored table needs pyarrow, which pamlib depends on: reinstall pamlib"
        ) from None
    return pyarrow


@attrs.frozen(eq=False, repr=False)
class ScoredTable:
    """One validated scored table: a :class:`pyarrow.Table` in :func:`scored_schema`.

    Build it with :meth:`from_arrow` (typed or text columns, from Arrow, pandas or polars) or
    :meth:`read` (CSV, Parquet, JSON Lines): both check every row and raise one
    :class:`~pamlib.errors.FormatError` listing every problem by row. The constructor takes a
    table already in the schema (it checks the types, not the rows).

    **Patient key.** Rows are linked into a patient's history by one rule, for reports and
    tailoring alike: the key of a row is its ``patient_id`` when that is not empty, else its
    NHS number (spaces and dashes removed; it must be valid), else its ``nhs_pseudonym``; a row
    with none of them is refused (``no-patient-key``). A cell of only whitespace is empty, as
    ``pamlib score`` reads it; any other identifier is used as written (``" P1"`` and ``"P1"``
    are two keys: ``pamlib score`` writes both unchanged). :meth:`patient_keys` gives the keys.
    An NHS number may be held apart from the columns (``nhs_number=``): it links rows but is not
    part of :meth:`to_arrow`, so it is written nowhere unless the table has it as a column.

    The repr shows the row count and column names only: never an identifier or a value.
    """

    _table: pa.Table = attrs.field(alias="table")
    #: Held as Arrow text (a few bytes a row; as Python strings some sixty), else as given.
    _nhs_number: pa.Array | TextArray | None = attrs.field(
        default=None, alias="nhs_number", kw_only=True, converter=_held_text
    )
    #: The files its rows were read from (:meth:`read`, ``TableScorer.score_source``), which
    #: no writer of the table writes over.
    read_from: tuple[str, ...] = attrs.field(default=(), kw_only=True, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        standard = scored_schema()
        fields = list(self._table.schema)[: len(standard)]
        if [(f.name, f.type) for f in fields] != [(f.name, f.type) for f in standard]:
            raise ConfigurationError(
                "a ScoredTable holds a table in scored_schema(): build one with "
                "ScoredTable.from_arrow"
            )
        if self._nhs_number is not None and len(self._nhs_number) != self._table.num_rows:
            raise ConfigurationError("the NHS numbers and the table differ in length")

    def __len__(self) -> int:
        return int(self._table.num_rows)

    @property
    def links_by_private_nhs_number(self) -> bool:
        """Whether some rows are linked by an NHS number held apart from the columns: their
        keys (``nhs:`` and the digits) must not be written where the number is not wanted."""
        return self._nhs_number is not None and "nhs_number" not in self._table.column_names

    def __repr__(self) -> str:
        return f"ScoredTable(n_rows={len(self)}, columns={self.column_names!r})"

    @property
    def column_names(self) -> list[str]:
        """The table's columns, in order (a private NHS number is not one of them)."""
        return list(self._table.column_names)

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_arrow(
        cls, data: object, *, source: str = "table", nhs_number: ArrayLike | None = None
    ) -> ScoredTable:
        """Check and type a table: a pyarrow Table or RecordBatch, or any object with
        ``__arrow_c_stream__`` (a pandas>=2.2 or polars DataFrame).

        Columns may be typed (as pamlib writes Parquet) or text (as CSV is read): dates as
        ISO text, ``date32`` or timestamps; scores and levels as numbers or text; ``flags`` as
        lists or ``;``-joined text; ``demo`` as booleans or ``true``/``false``. Missing
        optional standard columns are added, empty. ``source`` names the input in problem
        locations; ``nhs_number`` holds NHS numbers kept apart from the columns (see above).
        """
        _pyarrow()
        typed, private = _validate(_as_table(data, source), source, _optional_text(nhs_number))
        return cls(typed, nhs_number=private)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ScoredTable:
        """Read a scored table from CSV, Parquet (``.parquet``, ``.pq``) or JSON Lines
        (``.jsonl``, ``.ndjson``, ``.json``) — every format ``pamlib score`` writes.

        CSV columns are all read as strings first and typed afterwards, so a column of dates or
        identifiers is never reinterpreted by type inference; quoted values may hold line
        breaks. A file that is not a table (empty, not UTF-8, a row with the wrong number of
        fields) is a :class:`~pamlib.errors.FormatError` naming the line, never quoting it. A
        file with a header and no rows is an empty table. The table records the file
        (:attr:`read_from`): :func:`~pamlib.pipeline.write_scored` never writes over it.
        """
        table = cls._read(path)
        return attrs.evolve(table, read_from=(os.fspath(path),))

    @classmethod
    def _read(cls, path: str | os.PathLike[str]) -> ScoredTable:
        """:meth:`read`'s work, before the table records the file it came from."""
        path = Path(path)
        pa = _pyarrow()
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                parquet = pq.read_table(path)
            except (pa.ArrowException, ValueError):
                raise FormatError(
                    f"{path.name}: not a scored table",
                    [Problem(path.name, "parquet", "cannot be read as a Parquet file")],
                ) from None
            return cls.from_arrow(parquet, source=path.name)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return cls.from_arrow(_read_json_lines(path), source=path.name)
        return cls.from_arrow(_read_csv(path), source=path.name)

    @classmethod
    def read_blocks(
        cls, path: str | os.PathLike[str], *, block_rows: int = BLOCK_ROWS
    ) -> Iterator[ScoredTable]:
        """Read and check a scored file as :meth:`read` does, one block of rows at a time, so
        that a file larger than memory can be summarised.

        Every block is checked as it is read; problems are collected over the whole file, with
        rows numbered in the file, and an assessment id repeated anywhere in it is found. Blocks
        are yielded while no problem has been found; after the last block, any problem raises
        one :class:`~pamlib.errors.FormatError` listing them all, as :meth:`read` would. Repeated
        ids are found after the last block (the ids are kept as 8-byte hashes until then), so
        blocks after a repeat are still yielded before the error. A file with no rows yields one
        empty block.
        """
        from pamlib.formats._arrow import combined

        path = Path(path)
        problems = _Problems(path.name)
        hashes = _IdHashes(known_row_count(path))
        for raw in _raw_blocks(path, max(1, block_rows)):
            typed, private = _validate(raw, path.name, None, problems=problems)
            hashes.add(combined(typed.column("assessment_id")))
            problems.offset += typed.num_rows
            if not problems.found:
                yield cls(typed, nhs_number=private)
            del raw, typed, private
            release_freed_memory()
        problems.offset = 0
        hashes.locate_repeats(path, max(1, block_rows), problems)
        problems.raise_if_any()

    def with_columns(self, columns: Mapping[str, Any]) -> ScoredTable:
        """This table with columns appended (or, under an existing name, replaced), the rows
        and any NHS numbers held apart unchanged. Each column is an Arrow array of the
        table's length, typed as :func:`scored_schema` types its name (text otherwise)."""
        import pyarrow as pa

        table = self._table
        for name, values in columns.items():
            column = pa.chunked_array([values]) if isinstance(values, pa.Array) else values
            field = pa.field(name, _arrow_type(_kind(name)))
            if column.type != field.type:
                raise ConfigurationError(f"column {name!r} must be {field.type}, not {column.type}")
            if name in STANDARD_TYPES:
                raise ConfigurationError(f"{name!r} is a standard column: it cannot be replaced")
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), field, column)
            else:
                table = table.append_column(field, column)
        return ScoredTable(table, nhs_number=self._nhs_number, read_from=self.read_from)

    # -- out -------------------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """The table (immutable; a private NHS number is not in it)."""
        return self._table

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame`` (needs pandas; typed ``Any`` as pandas ships no
        type stubs)."""
        try:
            importlib.import_module("pandas")
        except ImportError:
            raise ConfigurationError(
                "ScoredTable.to_pandas needs pandas: pip install pandas"
            ) from None
        return self._table.to_pandas()

    def to_polars(self) -> polars.DataFrame:
        """The table as a polars DataFrame (needs polars)."""
        try:
            import polars
        except ImportError:
            raise ConfigurationError(
                "ScoredTable.to_polars needs polars: pip install polars"
            ) from None
        frame = polars.from_arrow(self._table)
        if not isinstance(frame, polars.DataFrame):  # pragma: no cover - a Table gives one
            raise TypeError("polars.from_arrow did not give a DataFrame")
        return frame

    def column(self, name: str) -> pa.ChunkedArray:
        """One typed column (:func:`scored_schema`); ``KeyError`` if the table has none."""
        if name not in self._table.column_names:
            raise KeyError(name)
        return self._table.column(name)

    def text(self, name: str) -> TextArray:
        """A column as a NumPy object array of strings, ``""`` where null or where the table
        has no such column (lists ``;``-joined, dates ISO)."""
        if name not in self._table.column_names:
            out = np.empty(len(self), dtype=object)
            out[:] = ""
            return out
        column = self._table.column(name)
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_list(column.type):
            column = pc.binary_join(column, _text_scalar(";"))
        return _texts(column)

    def text_codes(self, name: str) -> tuple[list[str], NDArray[np.intp]]:
        """:meth:`text` as its distinct values, in order of first appearance, and each row's
        index into them: Arrow hashes the column, and no Python object is made per row. For a
        column of few values (sites, flags, reasons) whatever the number of rows."""
        if name not in self._table.column_names:
            return [""], np.zeros(len(self), dtype=np.intp)
        column = self._table.column(name)
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_list(column.type):
            column = pc.binary_join(column, _text_scalar(";"))
        return _distinct(column)

    def patient_keys(self) -> TextArray:
        """Each row's patient key (see the class), as a NumPy object array of strings.

        Keys are identifiers: never log or print them. An NHS number key is ``nhs:`` and the
        digits, a pseudonym key ``pseudonym:`` and the pseudonym, so neither can be taken for
        a ``patient_id`` of another kind.
        """
        from pamlib.formats._arrow import to_numpy

        return to_numpy(self._patient_key_text())

    def _patient_key_text(self) -> pa.Array | pa.ChunkedArray:
        """:meth:`patient_keys` as Arrow text: no Python string a row."""
        keys, _ = _arrow_patient_keys(
            self._table.column("patient_id"),
            self._identity("nhs_number"),
            self._identity("nhs_pseudonym"),
        )
        return keys

    def patient_key_codes(self) -> NDArray[np.int64]:
        """Each row's patient key (:meth:`patient_keys`) as a number: rows with equal keys
        have equal numbers (keys compared as NumPy strings compare them, trailing NULs
        dropped), a row without a key ``-1``.

        What linking a person's rows needs, without a Python string a row: Arrow numbers the
        keys, and only the rows without a ``patient_id`` look at their NHS number or
        pseudonym.
        """
        import pyarrow.compute as pc

        keys = self._patient_key_text()
        if len(keys) and pc.any(pc.ends_with(keys, pattern="\x00")).as_py():
            keys = pc.utf8_rtrim(keys, characters="\x00")
        dictionary, index = _encoded_arrow(pc.dictionary_encode(keys))
        codes = index.astype(np.int64)
        codes[_blank(dictionary)[codes]] = -1
        return codes

    def _identity(self, name: str) -> pa.Array | pa.ChunkedArray | TextArray | None:
        """The ``nhs_number`` (held apart or a column) or ``nhs_pseudonym`` column: Arrow
        text, or NumPy where held so; ``None`` where the table has none."""
        held = self._nhs_number if name == "nhs_number" else None
        if held is None and name in self._table.column_names:
            held = self._table.column(name)
        return held


# -- files ----------------------------------------------------------------------------------


def _csv_options(path: Path) -> tuple[list[str], Any, Any]:
    """The header of a scored CSV, and pyarrow's options to read every column as text."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error):
        raise _unreadable_csv(path, 0) from None
    if not header:
        raise FormatError(
            f"{path.name}: not a scored table",
            [Problem(f"{path.name}: line 1", "empty", "the file is empty: no header row")],
        )
    if len(set(header)) != len(header):
        raise FormatError(
            f"{path.name}: not a scored table",
            [Problem(f"{path.name}: header", "duplicate-column", "a column name repeats")],
        )
    as_text = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
    )
    # Quoted values may hold line breaks (free-text columns passed through by the scorer).
    quoted_newlines = pa_csv.ParseOptions(newlines_in_values=True)
    return header, quoted_newlines, as_text


def _read_csv(path: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    header, parse, convert = _csv_options(path)
    try:
        table = pa_csv.read_csv(path, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid:  # its message quotes the offending row: never shown
        raise _unreadable_csv(path, len(header)) from None
    return _unprotected(table)


def _unprotected(table: pa.Table) -> pa.Table:
    """A scored CSV's cells and column names as they were before the writer's spreadsheet
    protection (:func:`pamlib.formats.output.protect`): one leading apostrophe dropped, so a
    CSV reads back with the values a Parquet or JSON Lines file holds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats.output import unprotect

    columns = []
    for column in table.columns:
        starts = pc.starts_with(column, "'")
        protected = pc.any(starts).as_py()
        columns.append(
            pc.if_else(starts, pc.utf8_slice_codeunits(column, 1), column) if protected else column
        )
    return pa.table(columns, names=[unprotect(n) for n in table.column_names])


def _raw_blocks(path: Path, rows: int) -> Iterator[pa.Table]:
    """A scored file's rows, unchecked, in tables of about ``rows`` rows (at least one table,
    empty for a file with no rows): Parquet by record batch, CSV streamed as text columns,
    JSON Lines read whole and sliced."""
    pa = _pyarrow()
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        unreadable = FormatError(
            f"{path.name}: not a scored table",
            [Problem(path.name, "parquet", "cannot be read as a Parquet file")],
        )
        try:
            # Decoded a batch at a time, not a row group (a million rows as ``pamlib score``
            # writes them): no pre-buffering of whole column chunks, reads of 1 MiB.
            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            batches = parquet.iter_batches(batch_size=rows, use_threads=False)
            first = next(batches, None)
            # ``pyarrow.table`` of a batch asks pandas whether it is a data frame
            yield _empty(parquet.schema_arrow) if first is None else pa.Table.from_batches([first])
            for batch in batches:
                yield pa.Table.from_batches([batch])
        except (pa.ArrowException, ValueError, OSError):
            raise unreadable from None
        return
    if suffix in (".jsonl", ".ndjson", ".json"):
        table = _read_json_lines(path)
        yield table.slice(0, rows)
        for start in range(rows, table.num_rows, rows):
            yield table.slice(start, rows)
        return
    import pyarrow.csv as pa_csv

    from pamlib.formats._arrow import batch_groups

    header, parse, convert = _csv_options(path)
    yielded = False
    try:
        reader = pa_csv.open_csv(path, parse_options=parse, convert_options=convert)
        for group in batch_groups(reader, rows):
            yield _unprotected(pa.Table.from_batches(group, schema=reader.schema))
            yielded = True
        if not yielded:
            yield _unprotected(pa.Table.from_batches([], schema=reader.schema))
    except pa.ArrowInvalid:  # its message quotes the offending row: never shown
        raise _unreadable_csv(path, len(header)) from None


def _empty(schema: pa.Schema) -> pa.Table:
    """A table of no rows (``Schema.empty_table`` makes its columns with ``pyarrow.array``:
    see :func:`_text_scalar`)."""
    import pyarrow as pa

    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def _read_json_lines(path: Path) -> pa.Table:
    """A scored table written as JSON Lines, its columns typed as pamlib writes them (text stays
    text, so an id of digits is never read as a number; other columns are inferred)."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    fields = [
        pa.field(f.name, pa.string()) if f.name == "assessed_on" else f for f in scored_schema()
    ]
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema(fields), unexpected_field_behavior="infer"
    )
    try:
        return pa_json.read_json(path, parse_options=options)
    except (pa.ArrowException, ValueError):  # its message may quote a row: never shown
        pass
    raise _unreadable_json_lines(path, {f.name: f.type for f in fields})


def _json_kind(kind: pa.DataType) -> tuple[type, ...]:
    """The JSON values (as :func:`json.loads` gives them) a column of Arrow type ``kind`` takes
    from a scored JSON Lines file; ``None`` (JSON null) is always taken."""
    import pyarrow as pa

    if pa.types.is_boolean(kind):
        return (bool,)
    if pa.types.is_integer(kind):
        return (int,)
    if pa.types.is_floating(kind):
        return (int, float)
    if pa.types.is_list(kind):
        return (list,)
    return (str,)


def _unreadable_json_lines(path: Path, kinds: Mapping[str, pa.DataType]) -> FormatError:
    """Why pyarrow could not read ``path``, found again line by line: each line that is not a
    JSON object, and each value of a scored column that is not of its kind, by line and
    column, never by content."""
    import json

    found: list[Problem] = []
    others: dict[str, tuple[str, int]] = {}  # a column not scored: its first kind, and where

    def add(number: int, code: str, message: str) -> bool:
        found.append(Problem(f"{path.name}: line {number}", code, message))
        return len(found) >= MAX_PROBLEMS

    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except UnicodeDecodeError:
                if add(number, "encoding", "not UTF-8 text"):
                    break
                continue
            except (ValueError, RecursionError):
                if add(number, "json", "not a JSON object (cut short or not JSON)"):
                    break
                continue
            if not isinstance(row, dict):
                if add(number, "json", "not a JSON object"):
                    break
                continue
            for name, value in row.items():
                kind = kinds.get(name)
                if value is None:
                    continue
                if kind is None:  # another column: of one JSON kind throughout, as inferred
                    first = others.setdefault(name, (_json_word(value), number))
                    if first[0] != _json_word(value):
                        message = (
                            f"column {name}: a JSON {first[0]} on line {first[1]}, a "
                            f"{_json_word(value)} here"
                        )
                        if add(number, "json", message):
                            break
                    continue
                wanted = _json_kind(kind)
                wrong_bool = isinstance(value, bool) and bool not in wanted  # bool is an int
                if wrong_bool or not isinstance(value, wanted):
                    got = _json_word(value)
                    message = f"column {name}: expected {_KIND_WORDS[wanted]}, got a JSON {got}"
                    if add(number, "json", message):
                        break
            if len(found) >= MAX_PROBLEMS:
                break
    if not found:
        found.append(Problem(path.name, "json", "cannot be read as JSON Lines of scored rows"))
    return FormatError(f"{path.name}: not a scored table", found)


_KIND_WORDS: dict[tuple[type, ...], str] = {
    (bool,): "true or false",
    (int,): "a whole number",
    (int, float): "a number",
    (list,): "a list",
    (str,): "text",
}


def _json_word(value: object) -> str:
    """What kind of JSON value ``value`` is, in words (never the value)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _unreadable_csv(path: Path, n_fields: int) -> FormatError:
    """Why pyarrow could not read ``path``, found again line by line: each line that is not
    UTF-8, or each row with the wrong number of fields, by number, never by content."""
    found: list[Problem] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                found.append(Problem(f"{path.name}: line {number}", "encoding", "not UTF-8 text"))
                if len(found) >= MAX_PROBLEMS:
                    break
    if not found and n_fields:
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.reader(fh, strict=True)
                for row in reader:
                    if row and len(row) != n_fields:
                        message = f"{len(row)} fields where the header has {n_fields}"
                        where = f"{path.name}: line {reader.line_num}"
                        found.append(Problem(where, "fields", message))
                        if len(found) >= MAX_PROBLEMS:
                            break
        except csv.Error:
            where = f"{path.name}: line {reader.line_num}"
            found.append(Problem(where, "csv", "the CSV quoting is broken"))
    if not found:
        found.append(Problem(path.name, "csv", "cannot be read as a CSV table"))
    return FormatError(f"{path.name}: not a scored table", found)
