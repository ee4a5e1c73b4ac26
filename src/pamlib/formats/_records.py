"""The rules every delimited-text reader follows: splitting records, and checking one row.

pamlib reads delimited exports (CSV, ``;`` or tab separated) with its columnar reader
(:mod:`pamlib.formats._columnar`), which checks whole columns at once. This module holds what it
shares with the in-memory table reader (:mod:`pamlib.formats.tables`) and what it falls back on:
the :mod:`csv` module's split of records (headers, and blocks whose bytes quote counting cannot
trust), the checks of one row (:class:`RowValidator`, whose problems become a reject's code and
message), blank and structural rejects, and the reject itself.

Reject codes (stable; see the documentation for the full table): ``field-count``,
``unclosed-quote``, ``encoding``, ``no-identity``, ``nhs-number``, ``no-assessment-id``,
``date``, ``unknown-instrument``, ``missing-item-column``, ``impossible-answer``,
``unknown-label``, ``unknown-item``, ``duplicate-assessment-id``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
from collections.abc import Generator, Iterable, Iterator, Mapping
from pathlib import Path

import attrs

from pamlib.errors import FormatError, Problem, ValidationError
from pamlib.formats.base import ReadOptions, Reject
from pamlib.formats.layout import Layout
from pamlib.formats.values import (
    IMPOSSIBLE_ANSWER,
    UNKNOWN_LABEL,
    InstrumentResolver,
    answer_code,
    is_absent,
    label_key,
    parse_date,
)
from pamlib.identity import normalise_nhs_number
from pamlib.instruments import Instrument
from pamlib.responses import UNANSWERED_CODE

_MOVED = {
    "iter_assessments": "pamlib.formats.delimited",
    "LocatedAssessment": "pamlib.formats.delimited",
}


def __getattr__(name: str) -> object:
    """A name that moved, with a :class:`~pamlib.errors.PamlibDeprecationWarning`."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    from pamlib.errors import PamlibDeprecationWarning

    warnings.warn(
        f"pamlib.formats._records.{name} moved to {module}.{name}, which reads through the "
        "columnar reader; the old name is removed in pamlib 0.3 (the compatibility policy)",
        PamlibDeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)


#: Delimiters recognised when none is given: comma, semicolon, tab.
DELIMITERS = (",", ";", "\t")
_SURROGATE = re.compile("[\udc80-\udcff]")
_LINE_END = re.compile(r"(?:\r\n|\r|\n)\Z")

#: The longest field pamlib reads, in characters (1 MiB of ASCII text). A record with a longer
#: field is rejected (``field-too-long``) by every reader, however it is split.
MAX_FIELD_CHARS = 1 << 20
#: The :mod:`csv` module's own field limit while a pamlib reader is open (its default, 131,072,
#: would stop it in the middle of a record): far above :data:`MAX_FIELD_CHARS`, so records are
#: rejected whole instead. Only a field of more than 2 GiB reaches it, which stops the read
#: with a located error.
_CSV_FIELD_LIMIT = 2**31 - 1


# -- splitting text into records ---------------------------------------------------------------


def detect_delimiter(header: str) -> str:
    """The delimiter of a header line: whichever of ``,`` ``;`` tab occurs most outside quotes.

    >>> detect_delimiter("NHS Number;Date Completed;Q1"), detect_delimiter("a,b;c,d")
    (';', ',')
    """
    outside = re.sub(r'"[^"]*"', "", header)
    counts = [(outside.count(d), -i, d) for i, d in enumerate(DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] > 0 else ","


@attrs.frozen
class RawRecord:
    """One record as split by the CSV rules: where it starts, its fields and its raw text.

    ``raw`` is the record's text without its final line ending; ``unclosed`` is true when a
    quoted field was still open at the end of the input (so the record swallowed the rest).
    """

    line: int
    fields: list[str]
    raw: str
    unclosed: bool = False


class _LineTape:
    """Hands lines to :mod:`csv` while keeping the ones the current record used."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.used: list[str] = []

    def __iter__(self) -> _LineTape:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.used.append(line)
        return line


def ends_inside_quotes(text: str, delimiter: str) -> bool:
    """Whether ``text`` (one record) ends inside a quoted field, by the :mod:`csv` rules.

    >>> ends_inside_quotes('1,"open\\n', ","), ends_inside_quotes('1,"a""b",x"y\\n', ",")
    (True, False)
    """
    state = "start"
    for ch in text:
        if state == "quoted":
            if ch == '"':
                state = "quote"
        elif state == "quote":
            state = "quoted" if ch == '"' else ("start" if ch in (delimiter, "\r", "\n") else "in")
        elif state == "start":
            if ch == '"':
                state = "quoted"
            elif ch not in (delimiter, "\r", "\n"):
                state = "in"
        elif ch in (delimiter, "\r", "\n"):  # state == "in"
            state = "start"
    return state == "quoted"


def _csv_reader(tape: _LineTape, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(tape, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)


class _WideFields:
    """While entered, the :mod:`csv` module's field limit is :data:`_CSV_FIELD_LIMIT`.

    The limit is global to the process: it is raised while any reader is open (readers may be
    open at once, in any thread) and put back as it was when the last one closes.
    """

    _lock = threading.Lock()
    _users = 0
    _saved = 0

    def __enter__(self) -> None:
        with self._lock:
            if _WideFields._users == 0:
                _WideFields._saved = csv.field_size_limit(_CSV_FIELD_LIMIT)
            _WideFields._users += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            _WideFields._users -= 1
            if _WideFields._users == 0:
                csv.field_size_limit(_WideFields._saved)


def _next_fields(reader: Iterator[list[str]], line: int) -> list[str] | None:
    """The next row of ``reader`` (``None`` at the end); call within :class:`_WideFields`."""
    try:
        return next(reader, None)
    except csv.Error as exc:  # only a field over _CSV_FIELD_LIMIT gets here
        raise FormatError(
            f"cannot read the record starting at line {line}: {exc}",
            [Problem(f"line {line}", "field-too-long", str(exc))],
        ) from None


def first_record(text: str, delimiter: str) -> tuple[RawRecord | None, int, int]:
    """The first non-blank record of ``text`` by the :mod:`csv` rules (``None`` if there is
    none), with how many characters and physical lines it and the blank lines before it use.

    >>> record, chars, lines = first_record('\\na,"b\\nc"\\nd,e\\n', ",")
    >>> record.line, record.fields, chars, lines
    (2, ['a', 'b\\nc'], 9, 3)
    """
    tape = _LineTape(io.StringIO(text, newline=""))
    reader = _csv_reader(tape, delimiter)
    chars = lines = 0
    with _WideFields():
        while (fields := _next_fields(reader, lines + 1)) is not None:
            used = tape.used
            tape.used = []
            raw = "".join(used)
            chars += len(raw)
            lines += len(used)
            if fields:
                record = RawRecord(lines - len(used) + 1, fields, _LINE_END.sub("", raw, count=1))
                return record, chars, lines
    return None, chars, lines


def split_records(
    lines: Iterable[str], *, delimiter: str, first_line: int = 1
) -> Generator[RawRecord, None, None]:
    """Split text lines (universal newlines, line endings kept) into records, skipping blank
    lines; ``first_line`` is the physical line number of the first line given."""
    tape = _LineTape(lines)
    reader = _csv_reader(tape, delimiter)
    line = first_line
    pending: RawRecord | None = None
    with _WideFields():  # left when the records run out or the caller closes this generator
        while (fields := _next_fields(reader, line)) is not None:
            used = tape.used
            tape.used = []
            start = line
            line += len(used)
            if not fields:
                continue
            if pending is not None:
                yield pending
            raw = "".join(used)
            pending = RawRecord(start, fields, _LINE_END.sub("", raw, count=1))
            last_raw = raw
    if pending is not None:
        if ends_inside_quotes(last_raw, delimiter):
            pending = attrs.evolve(pending, unclosed=True)
        yield pending


# -- checking one row ------------------------------------------------------------------------


@attrs.frozen
class ValidRow:
    """A row that passed every check, with its values read."""

    assessment_id: str
    patient_id: str
    nhs_number: str
    assessed_on: dt.date
    instrument: Instrument
    codes: tuple[int, ...]
    site: str
    extras: Mapping[str, str]


_MESSAGES = {
    "field-count": "expected {n} fields, as in the header, found {m}",
    "field-too-long": "a field is longer than pamlib's limit of {limit:,} characters",
    "unclosed-quote": "a quoted field is still open at the end of the file",
    "encoding": "the record is not valid {encoding}",
    "no-identity": "the record has neither a patient id nor an NHS number",
    "no-assessment-id": "the assessment id is empty",
    "date-empty": "the date is empty",
    "date": "not a valid date: expected yyyy-mm-dd or {order}",
    "unknown-instrument": "not a known instrument (known: {known})",
    "missing-item-column": "no column for {items} ({instrument} has {n} items): map the "
    "{columns} that {hold}",
    "impossible-answer": "not an answer: a number other than 1-4",
    "unknown-label": "not an answer: expected 1-4, an agreement label or N/A",
    "unknown-item": "{instrument} has {n} items, so this cell must be empty",
    "duplicate-assessment-id": "the assessment id was used by an earlier record in the file",
}


#: How many distinct answer cells a :class:`RowValidator` remembers the codes of.
_MAX_CACHED_ANSWERS = 1024


def reject_message(problems: Iterable[Problem]) -> str:
    """Every problem of one record on one line: ``message @ column; …``."""
    return "; ".join(str(p) for p in problems)


class RowValidator:
    """Checks one row of a resolved layout, cell by cell, reporting every problem at once."""

    def __init__(
        self,
        layout: Layout,
        options: ReadOptions,
        resolver: InstrumentResolver,
        *,
        source: str,
    ) -> None:
        self.layout = layout
        self.options = options
        self.resolver = resolver
        self.source = source
        self.labels = {label_key(k): v for k, v in options.answer_labels.items()}
        # Answer cells take few distinct values; reading each once makes a file of rejects
        # cost little more than one of scored rows. Bounded: a column of free text stays small.
        self._codes: dict[str, int] = {}
        self.order = "dd/mm/yyyy" if options.day_first else "mm/dd/yyyy"
        self.known = ", ".join(sorted(i.id for i in resolver.instruments))
        cols = layout.columns
        self.identity_where = " / ".join(
            layout.header[cols[c]] for c in ("patient_id", "nhs_number") if c in cols
        )
        self._missing: dict[str, Problem | None] = {}

    def cell(self, fields: list[str], name: str) -> str:
        position = self.layout.columns.get(name)
        return "" if position is None else fields[position]

    def generated_id(self, line: int) -> str:
        """The assessment id of a record in a file without an id column: ``file:line``."""
        return f"{Path(self.source).name}:{line}"

    def _identity(self, fields: list[str], problems: list[Problem]) -> tuple[str, str]:
        """The patient id and normalised NHS number (``""`` where absent)."""
        pid = self.cell(fields, "patient_id")
        nhs_raw = self.cell(fields, "nhs_number")
        pid_absent = is_absent(pid)
        nhs_absent = is_absent(nhs_raw)
        if pid_absent and nhs_absent:
            problems.append(Problem(self.identity_where, "no-identity", _MESSAGES["no-identity"]))
        nhs = ""
        if not nhs_absent:
            try:
                nhs = normalise_nhs_number(nhs_raw)
            except ValidationError as exc:
                why = exc.problems[0].message if exc.problems else exc.summary
                problems.append(Problem(self.layout.where("nhs_number"), "nhs-number", why))
        return ("" if pid_absent else pid), nhs

    def missing_columns(self, instrument: Instrument) -> Problem | None:
        """The problem of every row of ``instrument`` when the layout has no column for some of
        its items, else ``None``: decided once per instrument, for the whole table.

        A whole column missing is a header or mapping mistake (``Q13 response`` left unmapped),
        not a person who skipped the item: reading it as unanswered would score every row
        without an answer it may hold, so the rows are rejected instead.
        """
        if instrument.id not in self._missing:
            items = self.layout.missing_items(instrument.n_items)
            problem = None
            if items:
                several = len(items) > 1
                message = _MESSAGES["missing-item-column"].format(
                    items=", ".join(items),
                    instrument=instrument.id,
                    n=instrument.n_items,
                    columns="columns" if several else "column",
                    hold="hold them" if several else "holds it",
                )
                problem = Problem("", "missing-item-column", message)
            self._missing[instrument.id] = problem
        return self._missing[instrument.id]

    def _answer_code(self, text: str) -> int:
        code = self._codes.get(text)
        if code is None:
            code = answer_code(text, self.labels)
            if len(self._codes) < _MAX_CACHED_ANSWERS:
                self._codes[text] = code
        return code

    def _answers(
        self, fields: list[str], instrument: Instrument | None, problems: list[Problem]
    ) -> list[int]:
        """Answer codes in item order; cells past the instrument's last item must be empty."""
        layout = self.layout
        header = layout.header
        codes_of = self._codes
        n_items = len(layout.items) if instrument is None else instrument.n_items
        name = "" if instrument is None else instrument.id
        codes: list[int] = []
        for k, position in enumerate(layout.items):
            if position is None:
                codes.append(UNANSWERED_CODE)
                continue
            text = fields[position]
            code = codes_of.get(text)
            if code is None:
                code = self._answer_code(text)
            if k >= n_items:
                if code != UNANSWERED_CODE:
                    message = _MESSAGES["unknown-item"].format(instrument=name, n=n_items)
                    problems.append(Problem(header[position], "unknown-item", message))
                continue
            if code == IMPOSSIBLE_ANSWER:
                message = _MESSAGES["impossible-answer"]
                problems.append(Problem(header[position], "impossible-answer", message))
            elif code == UNKNOWN_LABEL:
                message = _MESSAGES["unknown-label"]
                problems.append(Problem(header[position], "unknown-label", message))
            codes.append(code)
        return codes

    def check(
        self, fields: list[str], line: int, *, duplicate: bool
    ) -> tuple[ValidRow | None, list[Problem]]:
        """Read and check ``fields``; problems come in a fixed order, the first one's code is
        the reject's code."""
        layout = self.layout
        problems: list[Problem] = []
        pid, nhs = self._identity(fields, problems)
        if "assessment_id" in layout.columns:
            aid = self.cell(fields, "assessment_id")
            if is_absent(aid):
                problems.append(
                    Problem(
                        layout.where("assessment_id"),
                        "no-assessment-id",
                        _MESSAGES["no-assessment-id"],
                    )
                )
        else:
            aid = self.generated_id(line)
        date_text = self.cell(fields, "assessed_on")
        date = parse_date(date_text, day_first=self.options.day_first)
        if date is None:
            message = (
                _MESSAGES["date-empty"]
                if not date_text.strip()
                else _MESSAGES["date"].format(order=self.order)
            )
            problems.append(Problem(layout.where("assessed_on"), "date", message))
        instrument = self.resolver.resolve(self.cell(fields, "instrument"))
        if instrument is None:
            problems.append(
                Problem(
                    layout.where("instrument"),
                    "unknown-instrument",
                    _MESSAGES["unknown-instrument"].format(known=self.known),
                )
            )
        if instrument is not None and (missing := self.missing_columns(instrument)) is not None:
            problems.append(missing)
        codes = self._answers(fields, instrument, problems)
        if duplicate:
            problems.append(self.repeat_problem())
        if problems or instrument is None or date is None:
            return None, problems
        n = instrument.n_items
        codes = (codes + [UNANSWERED_CODE] * n)[:n]
        extras = {
            name: fields[position]
            for position, name in zip(layout.extras, layout.extra_names, strict=True)
            if name != "site"
        }
        row = ValidRow(
            assessment_id=aid,
            patient_id=pid,
            nhs_number=nhs,
            assessed_on=date,
            instrument=instrument,
            codes=tuple(codes),
            site=self.cell(fields, "site"),
            extras=extras,
        )
        return row, []

    def repeat_problem(self) -> Problem:
        """The problem of a record whose assessment id an earlier record used."""
        return Problem(
            self.layout.where("assessment_id"),
            "duplicate-assessment-id",
            _MESSAGES["duplicate-assessment-id"],
        )

    def fields_of(self, fields: list[str]) -> dict[str, str]:
        """The original values by source column name, for the rejects file."""
        header = self.layout.header
        text = "".join(fields)  # one look at the row, not at each field
        if text.isascii() or _SURROGATE.search(text) is None:
            return dict(zip(header, fields, strict=True))
        return {name: _printable(value) for name, value in zip(header, fields, strict=True)}


def _printable(text: str) -> str:
    """Undecodable bytes (kept as surrogates while reading) as U+FFFD, for output."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def is_blank(record: RawRecord) -> bool:
    """Whether a record holds nothing: every field empty or whitespace (``,,,,`` as Excel
    writes below a table, ``;; ;``), whatever the number of fields. Such a record is skipped
    and counted as blank, never rejected; one whose quoted field is still open at the end of
    the file is an ``unclosed-quote`` reject instead.

    >>> is_blank(RawRecord(5, ["", " ", ""], ",  ,")), is_blank(RawRecord(5, ["", "x"], ",x"))
    (True, False)
    """
    return not record.unclosed and all(not field.strip() for field in record.fields)


def encoding_label(encoding: str) -> str:
    """How messages name an encoding: ``UTF-8``, or the codec's name (``cp1252``)."""
    return "UTF-8" if encoding in ("utf-8", "utf-8-sig") else encoding


def structural_reject(
    record: RawRecord, n_fields: int, *, encoding: str = "utf-8"
) -> tuple[str, str] | None:
    """The code and message of a record that cannot be read as fields, else ``None``.

    ``encoding`` is what the input was read as, for the message of bytes it could not decode.
    """
    if record.unclosed:
        return "unclosed-quote", _MESSAGES["unclosed-quote"]
    if len(record.fields) != n_fields:
        return "field-count", _MESSAGES["field-count"].format(n=n_fields, m=len(record.fields))
    if len(record.raw) > MAX_FIELD_CHARS and max(map(len, record.fields)) > MAX_FIELD_CHARS:
        return "field-too-long", _MESSAGES["field-too-long"].format(limit=MAX_FIELD_CHARS)
    if _SURROGATE.search(record.raw) is not None:
        return "encoding", _MESSAGES["encoding"].format(encoding=encoding_label(encoding))
    return None


def make_reject(
    source: str,
    line: int,
    code: str,
    message: str,
    *,
    fields: Mapping[str, str] | None = None,
    record: str = "",
    unit: str = "line",
) -> Reject:
    """A reject at ``line`` (``unit`` is ``row`` for tables, whose rows have no lines)."""
    return Reject(
        source=source,
        location=f"{unit} {line}",
        code=code,
        message=message,
        fields=dict(fields or {}),
        line=line,
        record=_printable(record),
    )
