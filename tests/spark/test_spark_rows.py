"""The per-row rules pamlib.spark adds on the executors agree with ``pamlib score``'s (no Spark
needed: these run wherever pyarrow is installed)."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from pamlib.formats._records import RawRecord, is_blank, split_records, structural_reject
from pamlib.spark import _blank_rows, _pamlib_message, _structural, _undecoded_rows

cells = st.text(
    alphabet=st.sampled_from([" ", "\t", "a", "1", ",", ";", '"', "\n", "é"]), max_size=6
)


@given(st.lists(st.lists(st.one_of(st.none(), cells), min_size=3, max_size=3), max_size=8))
def test_blank_rows_are_pamlib_blank_records(rows: list[list[str | None]]) -> None:
    columns = [pa.array([r[k] for r in rows], pa.string()) for k in range(3)]
    expected = [is_blank(RawRecord(1, [c or "" for c in r], "")) for r in rows]
    assert _blank_rows(columns).tolist() == expected


field_bytes = st.binary(max_size=6).filter(lambda b: b"\xef\xbf\xbd" not in b)


@given(st.lists(st.lists(field_bytes, min_size=3, max_size=3), max_size=8))
def test_rows_spark_decoded_with_replacements_are_pamlib_encoding_rejects(
    rows: list[list[bytes]],
) -> None:
    """A row is flagged exactly when ``pamlib score`` finds bytes it cannot decode in it."""
    columns = [
        pa.array([r[k].decode("utf-8", "replace") for r in rows], pa.string()) for k in range(3)
    ]
    expected = [
        structural_reject(RawRecord(1, f, ",".join(f)), 3) is not None
        for f in ([b.decode("utf-8", "surrogateescape") for b in r] for r in rows)
    ]
    assert _undecoded_rows(columns).tolist() == expected


@given(
    st.lists(cells, min_size=1, max_size=6),
    st.integers(min_value=1, max_value=6),
    st.sampled_from([",", ";", "\t"]),
)
def test_a_record_spark_could_not_split_is_rejected_as_pamlib_rejects_it(
    fields: list[str], n_fields: int, delimiter: str
) -> None:
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="", delimiter=delimiter).writerow(fields)
    raw = text.getvalue()
    records = list(split_records(io.StringIO(raw, newline=""), delimiter=delimiter))
    verdict = _structural(raw, n_fields, delimiter)
    if not records or all(is_blank(r) for r in records):
        assert verdict is None
        return
    assert verdict is not None
    expected = structural_reject(records[0], n_fields) if len(records) == 1 else None
    if expected is not None:
        assert verdict[:2] == expected
    else:  # pamlib would read it; only Spark could not
        assert verdict[0] == "field-count"
    assert "\x00" not in verdict[2]


def test_pamlib_s_refusal_is_found_in_a_python_worker_s_error() -> None:
    text = (
        "Traceback (most recent call last):\n  ...\n"
        "pamlib.spark.SparkJobError: pamlib: the calibration changed since it was read\n"
    )
    assert _pamlib_message(text) == "the calibration changed since it was read"
    assert _pamlib_message("java.lang.OutOfMemoryError") is None
