"""Reading single cells: answers, dates, identifiers, instruments; spreadsheet protection."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError
from pamlib.formats._records import detect_delimiter, ends_inside_quotes
from pamlib.formats.output import protect
from pamlib.formats.values import (
    IMPOSSIBLE_ANSWER,
    UNKNOWN_LABEL,
    InstrumentResolver,
    answer_code,
    parse_date,
)
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.responses import Response, parse_response


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1", 1),
        ("4", 4),
        ("", 0),
        ("   ", 0),
        ("NA", -1),
        ("na", -1),
        ("N/A", -1),
        ("n / a", -1),
        ("Not applicable", -1),
        ("Disagree Strongly", 1),
        ("strongly  DISAGREE", 1),
        ("Disagree", 2),
        (" agree ", 3),
        ("Agree strongly", 4),
        ("Strongly agree", 4),
        ("5", IMPOSSIBLE_ANSWER),
        ("0", IMPOSSIBLE_ANSWER),
        ("-1", IMPOSSIBLE_ANSWER),
        ("2.5", IMPOSSIBLE_ANSWER),
        ("Neutral", UNKNOWN_LABEL),
        ("４", UNKNOWN_LABEL),
    ],
)
def test_answer_spellings(text: str, code: int) -> None:
    assert answer_code(text) == code


def test_extra_labels_from_a_mapping() -> None:
    labels = {"agree a lot": "4", "does not apply": "NA"}
    assert answer_code("Agree  a LOT", labels) == 4
    assert answer_code("does not apply", labels) == -1
    assert answer_code("agree a little", labels) == UNKNOWN_LABEL


@given(st.text(max_size=30))
def test_answer_code_agrees_with_parse_response(text: str) -> None:
    """Everything parse_response accepts gets its code; everything else is a problem."""
    code = answer_code(text)
    try:
        response = parse_response(text)
    except ValueError:
        assert code in (IMPOSSIBLE_ANSWER, UNKNOWN_LABEL)
    else:
        assert code == (0 if response is None else int(response))


@given(st.dates(min_value=dt.date(1000, 1, 1)), st.booleans())
def test_dates_in_both_layouts_read_back(day: dt.date, day_first: bool) -> None:
    slashed = (
        f"{day.day:02d}/{day.month:02d}/{day.year:04d}"
        if day_first
        else f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
    )
    assert parse_date(day.isoformat(), day_first=day_first) == day
    assert parse_date(slashed, day_first=day_first) == day
    assert parse_date(f" {day.isoformat()}T23:59:59Z ", day_first=day_first) == day


@pytest.mark.parametrize(
    "text",
    ["", "31/02/2024", "29/02/2023", "2024-13-01", "2024-00-10", "32/01/2024", "2024/03/01",
     "24-03-01", "yesterday", "2024-03-01 garbage", "٢٠٢٤-٠٣-٠١"],
)  # fmt: skip
def test_impossible_or_malformed_dates(text: str) -> None:
    assert parse_date(text) is None


def test_day_first_is_configurable() -> None:
    assert parse_date("03/04/2024") == dt.date(2024, 4, 3)
    assert parse_date("03/04/2024", day_first=False) == dt.date(2024, 3, 4)
    assert parse_date("13/04/2024", day_first=False) is None


def test_instrument_resolution() -> None:
    resolver = InstrumentResolver(BUILTIN_INSTRUMENTS, aliases={"PAM13": "PAM-13"}, default=None)
    assert resolver.resolve(" pam-10 ").id == "PAM-10"  # type: ignore[union-attr]
    assert resolver.resolve("PAM13").id == "PAM-13"  # type: ignore[union-attr]
    assert resolver.resolve("PAM-99") is None
    assert resolver.resolve("") is None
    with_default = InstrumentResolver(BUILTIN_INSTRUMENTS, default="pam-13")
    assert with_default.resolve("  ").id == "PAM-13"  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="unknown"):
        InstrumentResolver(BUILTIN_INSTRUMENTS, default="PAM-99")
    with pytest.raises(ConfigurationError, match="alias"):
        InstrumentResolver(BUILTIN_INSTRUMENTS, aliases={"x": "PAM-99"})


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("a,b,c", ","),
        ("a;b;c", ";"),
        ("a\tb\tc", "\t"),
        ('"x;y",b,c', ","),
        ("single", ","),
    ],
)
def test_delimiter_detection(header: str, delimiter: str) -> None:
    assert detect_delimiter(header) == delimiter


def test_ends_inside_quotes() -> None:
    assert ends_inside_quotes('a,"b\n', ",")
    assert not ends_inside_quotes('a,"b""c"\n', ",")
    assert not ends_inside_quotes('a,b"c\n', ",")  # a quote inside a field is text
    assert ends_inside_quotes('a;"b\n', ";")
    assert not ends_inside_quotes('a;"b"\n', ";")


@given(st.text(max_size=20))
def test_protected_cells_never_start_a_formula(text: str) -> None:
    out = protect(text)
    number = out == text and text[:1] in ("-", "+") and _is_number(text)
    assert number or not out[:1] or out[0] not in "=+-@\t\r"
    assert out in (text, "'" + text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@given(st.lists(st.text(alphabet="=+-@\t\r1.a ", max_size=5), max_size=30), st.integers(0, 3))
def test_protected_columns_are_protected_cell_by_cell(values: list[str], skip: int) -> None:
    """A column is protected as each of its cells is on its own, whether or not some byte
    that can start a formula appears anywhere in it, in a slice of a longer column or not."""
    import pyarrow as pa

    from pamlib.formats.output import protect_column

    column = pa.array(["=x"] * skip + values, type=pa.string())[skip:]
    assert protect_column(column).to_pylist() == [protect(v) for v in values]


def test_protection_keeps_numbers_and_plain_text() -> None:
    assert protect("-1.5") == "-1.5"
    assert protect("+44") == "+44"
    assert protect("-") == "'-"
    assert protect("=1+1") == "'=1+1"
    assert protect("\tx") == "'\tx"
    assert protect("a=b") == "a=b"
    assert protect("") == ""


def test_responses_have_the_documented_codes() -> None:
    assert [int(r) for r in Response] == [1, 2, 3, 4, -1]
    assert np.int8(answer_code("Not applicable")) == -1


@given(
    st.lists(st.integers(-800_000, 800_000), max_size=40)
    | st.tuples(st.integers(-30_000, 30_000), st.integers(0, 500)).flatmap(
        lambda span: st.lists(st.integers(span[0], span[0] + span[1]), max_size=300)
    )
)
def test_dates_are_written_as_pyarrow_writes_them(days: list[int]) -> None:
    """The output's dates, looked up by day where their range is small, are pyarrow's text
    for each day."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats.output import _date_text, _made

    values = np.array(days, dtype=np.int64).astype("datetime64[D]")
    expected = pc.cast(pa.array(values, type=pa.date32()), pa.string()).to_pylist()
    assert _made(_date_text(values)).to_pylist() == expected


@given(
    st.lists(
        st.tuples(st.sampled_from(["", "PAM-13", "demo", "ü;x", "e" * 70]), st.integers(0, 300)),
        max_size=30,
    )
)
def test_constant_columns_hold_their_text_on_every_row(calls: list[tuple[str, int]]) -> None:
    """A constant column, made anew or sliced from a longer one made before, is ``n`` copies
    of its text, whatever was asked before it; the columns kept hold no more text in all than
    the limit (made small here so that it is met)."""
    from unittest import mock

    from pamlib.formats import output

    output._CONSTANTS.clear()
    with mock.patch.object(output, "_CONSTANT_BYTES", 2_000):
        for value, n in calls:
            column = output._constant(value, n)
            assert len(column) == n
            assert column.to_pylist() == [value] * n
            kept = output._CONSTANTS
            assert sum(len(k) * len(v) for k, v in kept.items()) <= 2_000
            assert len(kept) <= output._CONSTANT_TEXTS
    output._CONSTANTS.clear()


@given(
    st.lists(st.floats(0, 100) | st.just(float("nan")), min_size=1, max_size=80),
    st.sampled_from([0, 1, 2, 4]),
)
def test_scores_are_written_as_rounded_one_at_a_time(values: list[float], decimals: int) -> None:
    """The output's scores, whether every row has one or some have none (empty), and whether
    looked up in the kept table or in one made for the block: each score rounded half away from
    zero on its own, with exactly ``decimals`` decimals."""
    import math

    from pamlib.formats.output import _made, _score_text
    from pamlib.levels import round_half_away

    expected = [
        "" if math.isnan(v) else f"{round_half_away(v, decimals):.{decimals}f}" for v in values
    ]
    assert _made(_score_text(np.array(values), decimals)).to_pylist() == expected


#: Few values, so that rows repeat them (as the scoring table's rows do): zeros of both signs,
#: infinities, NaN, and the measures' own kind of numbers.
_few_floats = st.sampled_from([0.0, -0.0, 1.5, -2.25, 0.1, 1e300, float("inf")])


@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, -0.0, 1.5]), _few_floats, _few_floats),
        min_size=12,  # a dictionary of 3 values is used from 12 rows on
        max_size=60,
    ),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 59), st.integers(0, 2)), max_size=2) | st.just([]),
    st.booleans(),
)
def test_float_columns_written_together_are_written_as_one_at_a_time(
    rows: list[tuple[float, float, float]],
    dependent: bool,
    nans: list[tuple[int, int]],
    zeros: bool,
) -> None:
    """Columns that share the first one's dictionary, or that cannot (another value for the
    same value of the first, a zero of the other sign, nulls), read the same as each column
    written on its own."""
    import math

    from pamlib.formats.output import _float_text, _float_texts, _made

    if zeros:  # later columns equal as numbers everywhere, but not as text
        rows = [(a, math.copysign(0.0, b), math.copysign(0.0, c)) for a, b, c in rows]
    elif dependent:  # the later columns a function of the first, as standard errors are
        table = {repr(a): (b, c) for a, b, c in rows}
        rows = [(a, *table[repr(a)]) for a, _, _ in rows]
    columns = [np.array([row[j] for row in rows], dtype=np.float64) for j in range(3)]
    for i, j in nans:
        columns[j][i % len(rows)] = np.nan
    together = [_made(t).to_pylist() for t in _float_texts(*columns)]
    assert together == [_float_text(c).to_pylist() for c in columns]


@given(
    st.lists(st.text(max_size=5), min_size=1, max_size=8),
    st.lists(st.integers(-3, 10), max_size=50),
)
def test_lookups_are_indexing_and_refuse_indices_outside_the_table(
    table: list[str], indices: list[int]
) -> None:
    """A looked-up column is ``table[i]`` for each index (pyarrow's bounds check skipped only
    where every index lies inside the table); an index outside it is an error, not a read of
    memory past the table."""
    import pyarrow as pa

    from pamlib.formats.output import _lookup, _made

    array = np.array(indices, dtype=np.int32)
    if all(0 <= i < len(table) for i in indices):
        assert _made(_lookup(table, array)).to_pylist() == [table[i] for i in indices]
    elif len(set(indices)) > 1:
        with pytest.raises((pa.ArrowIndexError, IndexError)):
            _made(_lookup(table, array))


@given(
    st.lists(st.sampled_from(["", "7", "42", "ü", "2024-04-05", "é" * 40, "x" * 80]), max_size=9),
    st.data(),
)
def test_texts_taken_by_index_are_indexing_whatever_their_lengths(
    values: list[str], data: st.DataObject
) -> None:
    """A column taken from a table by indices inside ``lo..hi`` is ``table[i]`` for each
    index, whether the texts of ``lo..hi`` are all of one length in bytes (picked as items of
    that size) or not (pyarrow's ``take``), from a table that is a slice of another or not."""
    from pamlib.formats._arrow import text_array
    from pamlib.formats.output import _take_text

    skip = data.draw(st.integers(0, 2))
    table = text_array(["pad"] * skip + values + ["x", "yy"])[skip:]
    texts = [*values, "x", "yy"]
    lo = data.draw(st.integers(0, len(texts) - 1))
    hi = data.draw(st.integers(lo, len(texts) - 1))
    indices = data.draw(st.lists(st.integers(lo, hi), max_size=40))
    if indices:  # lo and hi as the callers give them: the least and the greatest index
        lo, hi = min(indices), max(indices)
    array = np.array(indices, dtype=np.int32)
    taken = _take_text(table, array, lo, hi)
    assert taken.to_pylist() == [texts[i] for i in indices]
    taken.validate(full=True)


@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, -0.0, 1.5, -2.25, 0.1]), st.floats(-1e3, 1e3)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["dependent", "free", "nan"]),
    st.sampled_from([0, 1, 2]),
)
def test_scores_written_with_their_measures_are_written_as_on_their_own(
    rows: list[tuple[float, float]], kind: str, decimals: int
) -> None:
    """Scores looked up through their measures' dictionary (where each is one value for each
    measure, as the scoring table gives them) read the same as scores written on their own,
    and so do scores that are not (another score for the same measure, missing scores)."""
    from pamlib.formats.output import _float_texts, _made, _score_text

    if kind == "dependent":  # a score a function of the measure, as the scale makes it
        table = {repr(a): b for a, b in rows}
        rows = [(a, table[repr(a)]) for a, _ in rows]
    theta = np.array([a for a, _ in rows], dtype=np.float64)
    score = np.array([b for _, b in rows], dtype=np.float64)
    if kind == "nan":
        score[len(rows) // 2] = np.nan
    texts = _float_texts(theta, theta * 2.0, score=score, decimals=decimals)
    assert len(texts) == 3
    assert _made(texts[2]).to_pylist() == _made(_score_text(score, decimals)).to_pylist()


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "", "1.5", "x,y", 'q"', "é"]), st.text(max_size=4)),
        max_size=40,
    ),
    st.integers(1, 7),
    st.booleans(),
)
def test_scored_csv_text_is_pyarrows_whatever_rows_it_writes_at_a_time(
    rows: list[tuple[str, str]], at_a_time: int, quoted: bool
) -> None:
    """The scored CSV's rows, turned to text many at a time, are the bytes pyarrow's writer
    gives with its own defaults."""
    import io
    from unittest import mock

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from pamlib.formats import delimited
    from pamlib.formats.base import WriteOptions

    if not quoted:
        rows = [(a, b) for a, b in rows if not any(c in a + b for c in ',"\r\n')]
    table = pa.table({"a": [a for a, _ in rows], "b": [b for _, b in rows]})
    style = "needed" if quoted else "none"
    expected = io.BytesIO()
    pacsv.write_csv(table, expected, pacsv.WriteOptions(include_header=False, quoting_style=style))
    out = io.BytesIO()
    with mock.patch.object(delimited, "_WRITE_ROWS", at_a_time):
        writer = delimited.CsvResultWriter(out, WriteOptions())
        start = out.tell()
        writer._write_table(table, needs_quotes=quoted)
        assert out.getvalue()[start:] == expected.getvalue()


@given(st.lists(st.none() | st.booleans(), max_size=40))
def test_a_column_of_flags_is_written_as_true_false_or_empty(flags: list[bool | None]) -> None:
    """Both values in one column (a run of several providers, some demonstration) and missing
    ones are written, not refused: booleans are no indices of a lookup."""
    import pyarrow as pa

    from pamlib.formats.output import csv_text_table

    table, _ = csv_text_table(pa.table({"demo": pa.array(flags, type=pa.bool_())}), 1)
    expected = ["" if f is None else ("true" if f else "false") for f in flags]
    assert table.column("demo").to_pylist() == expected
