"""The scored table as columns: read once, typed once, then computed on as NumPy arrays.

A *scored table* is what ``pamlib score`` writes, one row per assessment::

    assessment_id,patient_id,assessed_on,instrument,status,n_answered,raw_score,theta,theta_se,
    score,score_se,level,cutpoint_set,flags,provider,provider_version,calibration_id,
    calibration_sha256,demo[,extra columns such as site]

Every way in — plain Python rows, a pyarrow Table, a CSV or Parquet file — goes through the same
text parser (:meth:`ScoredColumns.from_text`), so the rules cannot drift apart between inputs.
Problems are collected for the whole table and raised together as one
:class:`~pamlib.errors.FormatError` whose locations are row numbers, never identifiers or values.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.reporting.privacy import check_name, is_identifier_name
from pamlib.results import SCORED_TABLE_COLUMNS
from pamlib.tailoring.context import demo_evidence

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SCORED_TABLE_COLUMNS", "ScoredColumns", "factorize", "load_scored"]

#: Columns a report cannot do without.
_REQUIRED = ("patient_id", "assessed_on", "status", "score", "level")
#: Identifier columns: parsed into their own arrays and never offered as text for grouping.
_IDENTIFIERS = ("assessment_id", "patient_id")
#: A score as pamlib writes it: ASCII digits, no sign, no padding, no leading zero, an optional
#: decimal point followed by digits (``47.0``, ``100``, ``0.5``).
_SCORE_TEXT = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.[0-9]+)?")
#: Problems listed in one error before the rest are summarised as a count.
_MAX_PROBLEMS = 50

TextArray = NDArray[np.object_]


#: Strings up to this length are sorted as fixed-width NumPy unicode (about ten times faster
#: than Python objects); a column with a longer value is sorted as objects to bound memory.
_FIXED_WIDTH_LIMIT = 64


def factorize(values: TextArray) -> tuple[TextArray, NDArray[np.int64]]:
    """Sorted distinct strings and, for each value, the index of its string among them."""
    sortable: NDArray[Any] = values
    if len(values) and max(map(len, values)) <= _FIXED_WIDTH_LIMIT:
        sortable = values.astype(str)
    distinct, codes = np.unique(sortable, return_inverse=True)
    return distinct.astype(object), codes.astype(np.int64).reshape(-1)


def _text_array(values: Iterable[str]) -> TextArray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@attrs.frozen(eq=False, repr=False)
class ScoredColumns:
    """A scored table held as equal-length NumPy arrays, one element per assessment.

    ``score`` is NaN and ``level`` is 0 where the table has no value. ``scored`` is
    ``status == "scored"``. ``demo`` follows from the provider, the calibration, the flags and
    the ``demo`` column (see :func:`~pamlib.tailoring.context.demo_evidence`). ``text`` holds
    every column but the identifiers (``instrument``, ``cutpoint_set``, ``site``, ``level``, …)
    as the table's strings, for grouping and provenance.

    Build one with :meth:`from_rows` (tests, small inputs), :meth:`from_arrow` or
    :func:`load_scored`. Its repr shows sizes and column names only, never identifiers.
    """

    assessment_id: TextArray
    patient_id: TextArray
    assessed_on: NDArray[np.datetime64]
    scored: NDArray[np.bool_]
    score: NDArray[np.float64]
    level: NDArray[np.int8]
    flags: TextArray
    demo: NDArray[np.bool_]
    text: Mapping[str, TextArray] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        n = len(self.patient_id)
        arrays = [self.assessment_id, self.assessed_on, self.scored, self.score, self.level]
        arrays += [self.flags, self.demo, *self.text.values()]
        if any(len(a) != n for a in arrays):
            raise ConfigurationError("every column of a scored table must have the same length")

    def __len__(self) -> int:
        return len(self.patient_id)

    def __repr__(self) -> str:
        return f"ScoredColumns(n_rows={len(self)}, text_columns={sorted(self.text)!r})"

    @property
    def usable(self) -> NDArray[np.bool_]:
        """Rows a trajectory may use: scored, with a 0–100 score and a level 1–4."""
        return self.scored & ~np.isnan(self.score) & (self.level > 0)

    @property
    def score_tenths(self) -> NDArray[np.int64]:
        """Scores in integer tenths of a point (0 where missing): change is computed exactly."""
        return np.rint(np.nan_to_num(self.score, nan=0.0) * 10).astype(np.int64)

    def has_flag(self, flag: str) -> NDArray[np.bool_]:
        """Rows whose ``;``-separated ``flags`` contain ``flag``."""
        found = np.zeros(len(self), dtype=np.bool_)
        flagged = np.flatnonzero(self.flags != "")  # most rows have no flags at all
        found[flagged] = [flag in str(f).split(";") for f in self.flags[flagged]]
        return found

    def column(self, name: str) -> TextArray:
        """The text of a column (``site``, ``instrument``, ``level``, …), for grouping.

        Raises :class:`~pamlib.reporting.privacy.IdentifyingColumnError` for an identifier
        column (``patient_id``, ``nhs_number``, ``date_of_birth``, …): see
        :mod:`pamlib.reporting.privacy`.
        """
        check_name(name)
        if name in self.text:
            return self.text[name]
        available = sorted(c for c in self.text if not is_identifier_name(c))
        raise ConfigurationError(
            f"no column {name!r} to group by; available: {', '.join(available) or 'none'}"
        )

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> ScoredColumns:
        """Build from plain rows, e.g. ``{"patient_id": "p1", "assessed_on": "2024-01-31", …}``.

        Values may be strings as in the CSV or Python values (``None``, numbers, ``date``,
        ``bool``). Missing keys are empty. ``assessment_id`` defaults to the row number,
        ``flags`` to none and ``demo`` to false.
        """
        materialised = [dict(r) for r in rows]
        names: dict[str, None] = dict.fromkeys(() if materialised else _REQUIRED)
        for row in materialised:
            names.update(dict.fromkeys(row))
        columns = {name: _text_array(_as_text(r.get(name)) for r in materialised) for name in names}
        return cls.from_text(columns, source="rows", n_rows=len(materialised))

    @classmethod
    def from_arrow(cls, table: pa.Table, *, source: str = "table") -> ScoredColumns:
        """Build from a pyarrow Table (any column types; non-text columns are cast to text)."""
        # pyarrow is an optional extra: imported only when a Table is actually handed over.
        import pyarrow as pa
        import pyarrow.compute as pc

        columns: dict[str, TextArray] = {}
        for name in table.column_names:
            column = table.column(name)
            if pa.types.is_floating(column.type):  # Arrow would write 1e-05 or nan
                values = np.asarray(pc.fill_null(column, np.nan).to_numpy(), dtype=np.float64)
                columns[name] = _text_array(
                    "" if math.isnan(v) else np.format_float_positional(v, trim="-")
                    for v in values.tolist()
                )
                continue
            if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
                column = pc.binary_join(column, ";")  # ``flags`` as CSV writes it
            elif pa.types.is_timestamp(column.type):  # JSON readers see dates as timestamps
                column = pc.cast(pc.cast(column, pa.date32()), pa.string())
            elif not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                column = pc.cast(column, pa.string())
            filled = pc.fill_null(column, "")
            columns[name] = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=object)
        return cls.from_text(columns, source=source, n_rows=table.num_rows)

    @classmethod
    def from_text(
        cls, columns: Mapping[str, TextArray], *, source: str, n_rows: int
    ) -> ScoredColumns:
        """Type a table given as text columns; raise one :class:`FormatError` for all problems.

        ``source`` names the input in problem locations (a file name, ``"rows"``).
        """
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise FormatError(
                f"{source}: not a scored table",
                [Problem(source, "missing-column", f"no column {c!r}") for c in missing],
            )
        problems = _Problems(source)

        def text(name: str, default: str) -> TextArray:
            if name in columns:
                return np.asarray(columns[name], dtype=object)
            return _text_array(default for _ in range(n_rows))

        patient_id = text("patient_id", "")
        problems.add(patient_id == "", "empty-patient-id", "patient_id is empty")
        if "assessment_id" in columns:
            assessment_id = text("assessment_id", "")
            problems.add(assessment_id == "", "empty-assessment-id", "assessment_id is empty")
            _check_repeats(assessment_id, problems)
        else:
            assessment_id = _text_array(f"row-{i + 1:09d}" for i in range(n_rows))

        assessed_on = _parse_dates(text("assessed_on", ""), problems)

        status = text("status", "")
        scored = np.asarray(status == "scored", dtype=np.bool_)
        problems.add(
            ~scored & (status != "not-scored"),
            "bad-status",
            "status must be 'scored' or 'not-scored'",
        )

        score = _parse_scores(text("score", ""), problems)
        level = _parse_levels(text("level", ""), problems)

        demo = _parse_demo(columns, n_rows, _parse_booleans(text("demo", ""), problems), problems)
        problems.raise_if_any()
        return cls(
            assessment_id=assessment_id,
            patient_id=patient_id,
            assessed_on=assessed_on,
            scored=scored,
            score=score,
            level=level,
            flags=text("flags", ""),
            demo=demo,
            text={
                k: np.asarray(v, dtype=object) for k, v in columns.items() if k not in _IDENTIFIERS
            },
        )


@attrs.define
class _Problems:
    source: str
    found: list[Problem] = attrs.field(factory=list)
    n_more: int = 0

    def add(self, bad: NDArray[np.bool_], code: str, message: str) -> None:
        self.add_rows(np.flatnonzero(bad), code, [message])

    def add_rows(self, rows: NDArray[np.int64], code: str, messages: list[str]) -> None:
        """A problem at each of ``rows``; ``messages`` holds one message, or one per row."""
        room = max(0, _MAX_PROBLEMS - len(self.found))
        self.found += [
            Problem(f"{self.source}: row {i + 1}", code, messages[k if len(messages) > 1 else 0])
            for k, i in enumerate(rows[:room].tolist())
        ]
        self.n_more += max(0, len(rows) - room)

    def raise_if_any(self) -> None:
        if not self.found:
            return
        summary = f"{self.source}: {len(self.found) + self.n_more} problem(s) in the scored table"
        if self.n_more:
            summary += f" ({self.n_more} more not listed)"
        raise FormatError(summary, self.found)


def _parse_dates(values: TextArray, problems: _Problems) -> NDArray[np.datetime64]:
    """ISO dates ``YYYY-MM-DD``, strictly (numpy alone would accept ``2024`` or ``NaT``)."""
    try:
        dates = values.astype("datetime64[D]")
    except ValueError:  # some value is not a date at all: go row by row
        dates = np.empty(len(values), dtype="datetime64[D]")
        for i, value in enumerate(values):
            try:
                dates[i] = np.datetime64(str(value), "D")
            except ValueError:
                dates[i] = np.datetime64("NaT")
    round_trips = np.asarray(np.datetime_as_string(dates) == values, dtype=np.bool_)
    ok = round_trips & ~np.isnat(dates)
    problems.add(~ok, "bad-date", "assessed_on is not an ISO date (YYYY-MM-DD)")
    dates[~ok] = np.datetime64("NaT")
    return dates


def _check_repeats(ids: TextArray, problems: _Problems) -> None:
    """A problem at every row whose ``assessment_id`` an earlier row already has: an assessment
    counts once, so a file with repeated rows (concatenated twice?) is refused, not summed."""
    seen: dict[object, int] = {}
    first = np.fromiter(
        (seen.setdefault(v, i) for i, v in enumerate(ids.tolist())), dtype=np.int64, count=len(ids)
    )
    repeated = np.flatnonzero((first != np.arange(len(ids))) & (ids != ""))
    messages = [f"assessment_id repeats row {first[i] + 1}" for i in repeated.tolist()]
    problems.add_rows(repeated, "duplicate-assessment-id", messages or [""])


def _parse_scores(values: TextArray, problems: _Problems) -> NDArray[np.float64]:
    """Scores in the grammar pamlib writes (:data:`_SCORE_TEXT`), from 0 to 100; empty is none.

    Each distinct text is checked once. Python's ``float`` would also take ``" 47.0 "``,
    ``"４７.０"`` (full-width digits), ``"1e1"`` or ``"nan"``: none is a score pamlib wrote.
    """
    empty = np.asarray(values == "", dtype=np.bool_)
    distinct: dict[object, int] = {}
    index = np.fromiter(
        (distinct.setdefault(v, len(distinct)) for v in values.tolist()),
        dtype=np.int64,
        count=len(values),
    )
    parsed = np.full(len(distinct) or 1, np.nan)
    valid = np.zeros(len(distinct) or 1, dtype=np.bool_)
    for k, text in enumerate(distinct):
        if isinstance(text, str) and _SCORE_TEXT.fullmatch(text):
            number = float(text)
            if number <= 100:
                parsed[k], valid[k] = number, True
    score = parsed[index] if len(values) else np.zeros(0)
    bad = ~empty & ~valid[index] if len(values) else np.zeros(0, dtype=np.bool_)
    problems.add(
        bad,
        "bad-score",
        "score must be empty or a number from 0 to 100 written as pamlib writes it "
        "(digits, an optional decimal point: 47.0; no sign, spaces or leading zeros)",
    )
    score[bad] = np.nan
    return score


def _parse_demo(
    columns: Mapping[str, TextArray],
    n_rows: int,
    column: NDArray[np.bool_],
    problems: _Problems,
) -> NDArray[np.bool_]:
    """Each row's demo status from :func:`~pamlib.tailoring.context.demo_evidence` (applied
    once per distinct combination of the four columns); contradictions are problems."""

    def cells(name: str) -> list[object]:
        values = columns.get(name)
        return [None] * n_rows if values is None else list(values)

    combos: dict[tuple[object, ...], int] = {}
    keys = zip(
        column.tolist(),
        cells("demo"),
        cells("flags"),
        cells("provider"),
        cells("calibration_id"),
        strict=True,
    )
    index = np.fromiter(
        (combos.setdefault(k, len(combos)) for k in keys), dtype=np.int64, count=n_rows
    )
    verdicts = []
    for flag, cell, flags, provider, calibration in combos:
        stated = bool(flag) if cell is not None and str(cell).strip() else None
        verdicts.append(
            demo_evidence(
                stated,
                None if flags is None else str(flags),
                None if provider is None else str(provider),
                None if calibration is None else str(calibration),
            )
        )
    if not n_rows:
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


def _parse_booleans(values: TextArray, problems: _Problems) -> NDArray[np.bool_]:
    """``true``/``false`` in any case, empty meaning false."""
    true = np.asarray(values == "true", dtype=np.bool_)
    other = np.flatnonzero(~true & (values != "false") & (values != ""))
    spelt = np.asarray([str(v).strip().lower() for v in values[other]], dtype=object)
    true[other] = spelt == "true"
    bad = np.zeros(len(values), dtype=np.bool_)
    bad[other] = (spelt != "true") & (spelt != "false") & (spelt != "")
    problems.add(bad, "bad-demo", "demo must be 'true' or 'false'")
    return true


def _parse_levels(values: TextArray, problems: _Problems) -> NDArray[np.int8]:
    level = np.zeros(len(values), dtype=np.int8)
    known = np.asarray(values == "", dtype=np.bool_)
    for n in (1, 2, 3, 4):
        hit = np.asarray(values == str(n), dtype=np.bool_)
        level[hit] = n
        known |= hit
    problems.add(~known, "bad-level", "level must be empty or 1, 2, 3 or 4")
    return level


def load_scored(path: str | os.PathLike[str]) -> ScoredColumns:
    """Read a scored table from CSV, Parquet (``.parquet``, ``.pq``) or JSON Lines (``.jsonl``,
    ``.ndjson``, ``.json``) — every format ``pamlib score`` writes — with pyarrow.

    CSV columns are all read as strings first and typed afterwards, so a column of dates or
    identifiers is never reinterpreted by type inference. Needs the ``arrow`` extra. A file
    that is not a table (empty, not UTF-8, a row with the wrong number of fields) is a
    :class:`~pamlib.errors.FormatError` naming the line, never quoting it. A file with a
    header and no rows is an empty table.
    """
    path = Path(path)
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "reading a scored table needs pyarrow: install pamlib[arrow]"
        ) from None
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
        return ScoredColumns.from_arrow(parquet, source=path.name)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return ScoredColumns.from_arrow(_read_json_lines(path), source=path.name)

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
    try:
        # Quoted values may hold line breaks (free-text columns passed through by the scorer).
        quoted_newlines = pa_csv.ParseOptions(newlines_in_values=True)
        table = pa_csv.read_csv(path, parse_options=quoted_newlines, convert_options=as_text)
    except pa.ArrowInvalid:  # its message quotes the offending row: never shown
        raise _unreadable_csv(path, len(header)) from None
    return ScoredColumns.from_arrow(table, source=path.name)


def _read_json_lines(path: Path) -> pa.Table:
    """A scored table written as JSON Lines, its columns typed as pamlib writes them (text stays
    text, so an id of digits is never read as a number; other columns are inferred)."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    from pamlib.formats.output import typed_schema

    schema = typed_schema(())
    fields = [pa.field(f.name, pa.string()) if f.name == "assessed_on" else f for f in schema]
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema(fields), unexpected_field_behavior="infer"
    )
    try:
        return pa_json.read_json(path, parse_options=options)
    except (pa.ArrowException, ValueError):  # its message may quote a row: never shown
        raise FormatError(
            f"{path.name}: not a scored table",
            [Problem(path.name, "json", "cannot be read as JSON Lines of scored rows")],
        ) from None


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
                if len(found) >= _MAX_PROBLEMS:
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
                        if len(found) >= _MAX_PROBLEMS:
                            break
        except csv.Error:
            where = f"{path.name}: line {reader.line_num}"
            found.append(Problem(where, "csv", "the CSV quoting is broken"))
    if not found:
        found.append(Problem(path.name, "csv", "cannot be read as a CSV table"))
    return FormatError(f"{path.name}: not a scored table", found)
