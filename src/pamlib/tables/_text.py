"""In-memory tables (pandas, Arrow, Python values) read as text, as an export of them holds it.

Both an export handed over in memory (:mod:`pamlib.formats.tables`) and a scored table given
as a DataFrame (:mod:`pamlib.tables.scored`) are read through these: one reading of a pandas
column, a decimal, a float32, a period or a list of flags, whichever stage takes the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.formats._arrow import compute, from_numpy, pyarrow_module

__all__ = [
    "extension_text",
    "is_pandas",
    "pandas_table",
    "rows_table",
    "text_column",
    "values_as_text",
]


#: A decimal's text holding a whole number (``3.00``): the number's digits alone (``3``).
_WHOLE_DECIMAL = re.compile(r"^(-?[0-9]+)\.0+$")


def is_pandas(data: Any) -> bool:
    """A pandas DataFrame (or a subclass of one from pandas' own modules)."""
    kind = type(data)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pandas")


def pandas_table(frame: Any, *, lists: bool = False) -> Any:
    """A DataFrame's columns as Arrow, one at a time, as an export holds them: a column of
    mixed Python values (``[3, "N/A"]`` from JSON, ids as numbers and text) is read value by
    value as text — where pyarrow refuses the whole column, naming a value in its message —
    and a repeated column name is a problem, not an exception of pyarrow's. With ``lists`` (a
    scored table's ``flags``), a column of lists of text stays one."""
    pa = pyarrow_module()
    if getattr(frame.columns, "nlevels", 1) > 1:  # (q01, "") would be no column pamlib knows
        raise ConfigurationError(
            "the DataFrame's columns have several levels (a MultiIndex): give one name a "
            "column, e.g. with frame.columns = frame.columns.to_flat_index() and a rename"
        )
    named = [level for level in frame.index.names if level is not None]
    if named:  # a named index is a column, as pandas' own Arrow export makes it
        clash = sorted({str(n) for n in named} & {str(c) for c in frame.columns})
        # set_index("patient_id", drop=False): the column is there already, and it is read
        frame = frame.reset_index(drop=True) if clash else frame.reset_index(level=named)
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems = [
            Problem("the data given", "duplicate-column", f"the column {n!r} repeats")
            for n in repeated
        ]
        raise FormatError("the data given: not a table of assessments", problems)
    arrays = []
    for position, name in enumerate(names):
        series = frame.iloc[:, position]
        try:
            array = pa.array(series, from_pandas=True)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            if series.dtype != object:
                raise ConfigurationError(
                    f"the column {name!r} (of {series.dtype}) cannot be read as text; give "
                    "text, numbers or dates"
                ) from None
            array = None
        # Python objects that are not all text: pyarrow infers one type for them all (a date
        # and a 3 become two dates), so each is read as what it is
        kept = array is not None and (
            series.dtype != object
            or _is_text_type(array.type)
            or (lists and pa.types.is_list(array.type) and _is_text_type(array.type.value_type))
        )
        if not kept:
            array = values_as_text(name, series.tolist(), lists=lists)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=names)


def values_as_text(name: str, values: Sequence[Any], *, lists: bool = False) -> Any:
    """Python values of one column as text, each kind as a column of that kind alone would be
    read (:func:`text_column`): whole numbers as digits, other floats as pyarrow writes them,
    decimals as a decimal column is read, dates ISO (a date and time: its own calendar date),
    truth values ``true``/``false``. With ``lists`` (a scored table's rows: ``flags``), a list
    is its texts ``;``-joined, as a scored CSV holds it."""
    import datetime as dt
    import decimal
    import math

    pa = pyarrow_module()
    out: list[str | None] = [None] * len(values)
    floats: list[int] = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, str):
            out[i] = value
        elif lists and isinstance(value, list | tuple | np.ndarray):
            items = values_as_text(name, list(np.asarray(value, dtype=object).reshape(-1)))
            out[i] = ";".join(t for t in items.to_pylist() if t)
        elif isinstance(value, decimal.Decimal):
            if value.is_nan():
                continue
            out[i] = _WHOLE_DECIMAL.sub(r"\1", format(value, "f"))
        elif isinstance(value, np.datetime64) and not np.isnat(value):
            out[i] = str(value.astype("datetime64[D]"))
        elif isinstance(value, bool | np.bool_):
            out[i] = "true" if value else "false"
        elif isinstance(value, int | np.integer):
            out[i] = str(int(value))
        elif isinstance(value, float | np.floating):
            floats.append(i)
        elif isinstance(value, dt.datetime):  # before date: a datetime is a date
            out[i] = value.date().isoformat()
        elif isinstance(value, dt.date):
            out[i] = value.isoformat()
        elif isinstance(value, bytes):
            try:
                out[i] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise _unreadable(name, "bytes that are not UTF-8") from None
        elif _is_missing(value):
            continue
        else:
            raise _unreadable(name, f"a value of type {type(value).__name__}")
    if floats:
        texts = text_column(pa.array([float(values[i]) for i in floats], pa.float64()))
        for i, text in zip(floats, texts.to_pylist(), strict=True):
            out[i] = text
    return pa.array(out, pa.string())


def _is_text_type(kind: Any) -> bool:
    pa = pyarrow_module()
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
    )


def _is_missing(value: Any) -> bool:
    """pandas' own missing values (``pd.NA``, ``pd.NaT``) and NumPy's NaT."""
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return type(value).__name__ in ("NAType", "NaTType")


def _unreadable(name: str, what: str) -> FormatError:
    return FormatError(
        "the data given: not a table of assessments",
        [Problem("the data given", "unreadable-column", f"the column {name!r} holds {what}")],
    )


def text_column(column: Any) -> Any:
    """One column as an Arrow ``string`` array, as an export would hold it (nulls empty)."""
    pa = pyarrow_module()
    pc = compute()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if isinstance(kind, pa.BaseExtensionType):
        column = extension_text(column)
        kind = column.type
    if pa.types.is_dictionary(kind):  # categoricals (polars' values are string views)
        column = pc.take(pc.cast(column.dictionary, pa.string()), column.indices)
        kind = column.type
    if pa.types.is_floating(kind):
        column = _float_column(column)
        kind = column.type
    if pa.types.is_decimal(kind) and kind.scale < 0:
        # NUMERIC with a negative scale (tens, hundreds): its digits, "30", not "3E+1"
        digits = kind.precision - kind.scale
        whole = pa.decimal128(digits, 0) if digits <= 38 else pa.decimal256(min(digits, 76), 0)
        column = pc.cast(column, whole)
        kind = column.type
    if pa.types.is_decimal(kind) and kind.scale > 0:
        # A database's NUMERIC(5,2) answer 3.00 is the answer 3, as a whole float's text is
        # "3": "3.00" would be no answer at all. Other values keep their digits.
        from pyarrow import _compute as kernels

        whole = kernels.ReplaceSubstringOptions(r"^(-?[0-9]+)\.0+$", r"\1")
        column = pc.call("replace_substring_regex", pc.cast(column, pa.string()), options=whole)
        kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:  # the calendar date where the assessment took place
            column = pc.call("local_timestamp", column)
        column = pc.call("cast", column, options=_unsafe_cast(pa.date32()))
        kind = column.type
    if pa.types.is_duration(kind) or pa.types.is_interval(kind):  # not an answer, id or date
        raise ConfigurationError(
            f"a column of type {kind} cannot be read as text; give text, numbers or dates"
        )
    if pa.types.is_boolean(kind):
        column = pc.take(pa.array(["false", "true"]), pc.cast(column, pa.int8()))
    elif kind != pa.string():
        try:
            column = pc.cast(column, pa.string())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            raise ConfigurationError(
                f"a column of type {kind} cannot be read as text; give text, numbers or dates"
            ) from None
    if column.null_count:
        column = pc.fill_null(column, "")
    if column.offset:  # the byte-level checks read the buffers from the start
        column = pa.concat_arrays([column])
    return column


def _float_column(column: Any) -> Any:
    """A float column as the whole numbers (int64) or floats an export of it holds."""
    pa = pyarrow_module()
    pc = compute()
    kind = column.type
    # float16/32 are widened to be looked at (NumPy would warn of overflow), but written
    # as themselves: a float32 0.1 is "0.1" in an export, not 0.10000000149011612
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    present = ~np.isnan(values)
    whole = present & np.isfinite(values) & (np.floor(values) == values)
    whole &= np.abs(values) < 2.0**53
    if bool((whole == present).all()):  # whole numbers with gaps: pandas' integer answers
        column = pa.array(
            np.where(whole, values, 0).astype(np.int64), mask=~present, type=pa.int64()
        )
    else:  # NaN is a gap (polars and Arrow keep it apart from null), never the text "nan"
        narrow = pa.float32() if kind.bit_width < 64 else kind
        if kind.bit_width == 16:  # a fraction's shortest text as a float16 (NumPy's)
            shortest = [float(str(v)) for v in values.astype(np.float16)]
            values = np.where(whole, values, np.array(shortest, dtype=np.float64))
            narrow = pa.float64()
        column = pc.call("cast", from_numpy(values, ~present), options=_unsafe_cast(narrow))
    return column


def extension_text(column: Any) -> Any:
    """An extension column (pandas' periods, Arrow's UUIDs, JSON and 8-bit booleans) as the
    values an export of it holds: a period as pandas writes it (``2024-03-01``), a UUID in its
    usual form. Others are refused: read as their storage, a period would be a count of days
    and a UUID sixteen raw bytes."""
    pa = pyarrow_module()
    kind = column.type
    values: list[Any]
    if kind.extension_name == "pandas.period":
        values = column.to_pandas().tolist()
    elif kind.extension_name in ("arrow.uuid", "arrow.json"):
        values = column.to_pylist()
    elif kind.extension_name == "arrow.bool8":
        return compute().cast(column.storage, pa.bool_())
    else:
        raise ConfigurationError(
            f"a column of type {kind} cannot be read as text; give text, numbers or dates"
        )
    return pa.array([None if _is_missing(v) or v is None else str(v) for v in values], pa.string())


def _unsafe_cast(target: Any) -> Any:
    from pyarrow import _compute as kernels

    return kernels.CastOptions.unsafe(target)


def rows_table(rows: Sequence[Mapping[Any, Any]]) -> Any:
    """Rows as dictionaries (a JSON array of objects, :class:`csv.DictReader`'s rows) as a table
    of text, each value read as :func:`values_as_text` reads a column of them: the columns are
    every key of every row, in the order first seen, and a row without a key holds null there.
    (:meth:`pyarrow.Table.from_pylist` takes its columns from the first row alone: a key first
    seen in a later row, an answer among them, would be dropped without a word.)

    A key that is not text is its text, as pandas' column names are; two keys of one text, and
    values under no key (``None``: :class:`csv.DictReader`'s fields past the header), are a
    :class:`~pamlib.errors.FormatError`, naming no value."""
    pa = pyarrow_module()
    names: dict[Any, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    problems = []
    if None in names:
        message = (
            "a row holds values under no column name (more fields than the header): "
            "read such a file with pamlib score, which rejects those rows"
        )
        problems.append(Problem("rows", "field-count", message))
    texts = [str(name) for name in names if name is not None]
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    problems += [Problem("rows", "duplicate-column", f"the column {t!r} repeats") for t in repeated]
    if problems:
        raise FormatError("the rows given cannot be read as a table", problems)
    arrays = []
    for name in (n for n in names if n is not None):
        arrays.append(values_as_text(str(name), [row.get(name) for row in rows]))
    return pa.Table.from_arrays(arrays, names=texts) if texts else pa.table({})
