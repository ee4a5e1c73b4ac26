"""Which column of a tabular export is which: canonical names, mapping files, resolved layouts.

pamlib's canonical layout is ``patient_id, nhs_number, assessment_id, assessed_on, instrument,
site, q01 … q13`` (``q01 … q10`` for the 10-item forms). Real exports rename and reorder these;
a *mapping file* (TOML) says which of a file's columns is which, so the file can be read as it
is. :class:`Layout` is the result of matching one header against the canonical names.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.formats.base import ReadOptions

if TYPE_CHECKING:
    from pamlib.fhir.mapping import FhirMapping

__all__ = [
    "CANONICAL_COLUMNS",
    "HEADER_SYNONYMS",
    "InputMapping",
    "Layout",
    "MappingKind",
    "header_key",
    "item_number",
    "load_any_mapping",
    "load_mapping",
    "mapping_kind",
    "recognise",
    "with_mapping",
]

#: The canonical columns before the item columns, in the canonical order.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "nhs_number",
    "assessment_id",
    "assessed_on",
    "instrument",
    "site",
)

_ITEM = re.compile(r"q0*([1-9][0-9]?)", re.IGNORECASE)
_SURROGATE = re.compile("[\udc80-\udcff]")
#: The most items any instrument has (PAM-22).
MAX_ITEMS = 22


def item_number(name: str) -> int | None:
    """The 1-based item number a column name stands for (``q01``, ``Q1`` → 1), else ``None``.

    >>> item_number("q07"), item_number("Q13"), item_number("question")
    (7, 13, None)
    """
    match = _ITEM.fullmatch(name.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= MAX_ITEMS else None


def _clean(name: str) -> str:
    """A column name as passed through: surrounding spaces and any byte-order mark removed."""
    return name.replace("\ufeff", "").strip()


def _match(name: str) -> str:
    """A column name as matched: without invisible format characters (byte-order marks,
    zero-width spaces and joiners, direction marks, soft hyphens), with full-width letters and
    digits as ASCII (``Ｑ１`` is ``Q1``) and any Unicode space as a space, and without
    surrounding spaces.

    A spreadsheet shows a name that differs from ``Q13`` only in these as ``Q13``; passed
    through as a column of its own, its answers would be read as unanswered without a word.
    Other compatibility forms are left alone: ``Q1¹`` (a footnote mark) must not become ``Q11``.
    """
    if name.isascii():
        return name.strip()
    return "".join(_visible(ch) for ch in name).strip()


def _visible(ch: str) -> str:
    """One character of a column name as :func:`_match` compares it."""
    if "\uff01" <= ch <= "\uff5e":  # the full-width forms of ASCII's printable characters
        return chr(ord(ch) - 0xFEE0)
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""
    return " " if category == "Zs" else ch


#: Canonical columns pamlib reads a record with; only ``site`` (which it merely passes through)
#: may be dropped from the output.
_READ = ("patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument")


def _drop_problem(name: str, target: str, via: str) -> str | None:
    """Why dropping column ``name`` (which reads as ``target``) is refused, or ``None``."""
    if target in _READ or target.startswith("q"):
        return (
            f"{name!r} is read as {target}{via}: 'drop' only leaves pass-through columns out of "
            "the output and never changes what is scored"
        )
    return None


def _refuse_undecodable(header: Sequence[str], source: str) -> None:
    """A header name with bytes that are not UTF-8 (kept as surrogates while reading) cannot be
    matched reliably — it might be ``patient_id`` — so the file is refused, naming the column."""
    problems = [
        Problem(f"{source}: column {position + 1}", "encoding", "the column's name is not UTF-8")
        for position, name in enumerate(header)
        if _SURROGATE.search(name) is not None
    ]
    if problems:
        raise FormatError(
            "the header is not valid UTF-8: save or export the file as 'CSV UTF-8'", problems
        )


def _canonical(name: str) -> str | None:
    """``name`` as a canonical column (``Patient_ID`` → ``patient_id``; ``Q1`` → ``q01``)."""
    key = name.strip().casefold()
    if key in CANONICAL_COLUMNS:
        return key
    number = item_number(key)
    return None if number is None else f"q{number:02d}"


#: Other names exports commonly give pamlib's columns, matched as loosely as the canonical names
#: (see :func:`header_key`). Only names that can mean nothing else are here: ``Patient Number``
#: might be an NHS number, ``Date`` any date, and ``Practice`` or ``Clinic`` is often a column
#: beside ``Site`` (``site`` is only passed through, so a wrong guess would cost more than it
#: saves). Item columns are ``Q1`` … ``Q22``, ``Item 1`` … or ``Question 1`` … in any spacing.
HEADER_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "patient_id": ("Patient Identifier", "Patient Ref", "Patient Reference", "Local Patient ID"),
    "nhs_number": ("NHS No", "NHS No.", "NHS Num"),
    "assessment_id": (
        "Assessment Identifier",
        "Assessment Ref",
        "Assessment Reference",
        "Response ID",
    ),
    "assessed_on": (
        "Assessment Date",
        "Assessed Date",
        "Date of Assessment",
        "Date Assessed",
        "Date Completed",
        "Completed On",
        "Completion Date",
        "Date of Completion",
    ),
    "instrument": ("Instrument ID", "Instrument Name", "Questionnaire"),
    "site": (),
}

_IGNORED = re.compile(r"[\s_.\-]+")
_LOOSE_ITEM = re.compile(r"(?:q|item|question)0*([1-9][0-9]?)")


def header_key(name: str) -> str:
    """A column name as compared loosely: in any case, without spaces, underscores, hyphens or
    full stops (``Patient ID``, ``patient-id`` and ``PATIENT_ID`` are all ``patientid``).

    >>> header_key(" NHS No. "), header_key("Date-of_Assessment")
    ('nhsno', 'dateofassessment')
    """
    return _IGNORED.sub("", name.replace("\ufeff", "").casefold())


def _loose_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for column in CANONICAL_COLUMNS:
        for spelling in (column, *HEADER_SYNONYMS[column]):
            key = header_key(spelling)
            if names.setdefault(key, column) != column:  # pragma: no cover - a list error
                raise AssertionError(f"{spelling!r} would mean two columns")
    return names


_LOOSE = _loose_names()


def recognise(name: str) -> str | None:
    """The canonical column a header name stands for when compared loosely (its case, spaces,
    underscores, hyphens and full stops ignored, and the synonyms of :data:`HEADER_SYNONYMS`
    known), else ``None``. An exact name (:func:`item_number`, a canonical name in any case)
    always takes precedence over a column recognised this way.

    >>> recognise("Patient ID"), recognise("Date of assessment"), recognise("Item 7")
    ('patient_id', 'assessed_on', 'q07')
    >>> recognise("Patient Number") is None
    True
    """
    key = header_key(name)
    column = _LOOSE.get(key)
    if column is not None:
        return column
    match = _LOOSE_ITEM.fullmatch(key)
    if match is None or int(match.group(1)) > MAX_ITEMS:
        return None
    return f"q{int(match.group(1)):02d}"


def _claims(
    header: Sequence[str],
    mapping: Mapping[str, str],
    drop: set[str],
    source: str,
    problems: list[Problem],
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """The positions claiming each canonical column: by a mapping entry or their exact name
    (first), and by a name only :func:`recognise` knows (second). Dropped columns claim none."""
    exact: dict[str, list[int]] = {}
    loose: dict[str, list[int]] = {}
    for position, raw in enumerate(header):
        name = _match(raw)
        target = _canonical(mapping[name]) if name in mapping else _canonical(name)
        if name in drop:
            why = None if target is None else _drop_problem(name, target, "")
            if why is not None:
                problems.append(Problem(f"{source}: column {position + 1}", "drop", why))
            continue
        if target is not None:
            exact.setdefault(target, []).append(position)
        elif name not in mapping and (recognised := recognise(name)) is not None:
            loose.setdefault(recognised, []).append(position)
    return exact, loose


def _choose(
    header: Sequence[str],
    exact: Mapping[str, list[int]],
    loose: Mapping[str, list[int]],
    source: str,
    problems: list[Problem],
) -> tuple[dict[int, str], set[str]]:
    """Which position is read as which canonical column, and the columns claimed ambiguously.

    A second exact claim is a ``duplicate-column`` problem; a recognised name is passed through
    when an exact claim exists, and two recognised names for one column are ``ambiguous-column``.
    """
    chosen: dict[int, str] = {}
    ambiguous: set[str] = set()
    for target, positions in exact.items():
        chosen[positions[0]] = target
        for position in positions[1:]:
            problems.append(
                Problem(
                    f"{source}: column {position + 1}",
                    "duplicate-column",
                    f"a second column maps to {target}",
                )
            )
    for target, positions in loose.items():
        if target in exact:
            continue  # named exactly elsewhere: this one is passed through as it is
        if len(positions) == 1:
            chosen[positions[0]] = target
            continue
        ambiguous.add(target)
        names = " and ".join(repr(_clean(header[p])) for p in positions)
        problems.append(
            Problem(
                f"{source}: columns {', '.join(str(p + 1) for p in positions)}",
                "ambiguous-column",
                f"{names} could each be {target}: name the one to read in the mapping file's "
                "[columns]",
            )
        )
    return chosen, ambiguous


def _missing(found: Set[str], options: ReadOptions, source: str) -> list[Problem]:
    """What the header lacks: ``found`` holds the canonical columns present (or claimed
    ambiguously, which is reported already; any item as ``q01``)."""
    problems = []
    if not any(name.startswith("q") for name in found):
        problems.append(Problem(f"{source}: header", "no-items", "no item columns (q01 …)"))
    if "assessed_on" not in found:
        problems.append(Problem(f"{source}: header", "no-date", "no assessed_on column"))
    if not {"patient_id", "nhs_number"} & found:
        problems.append(
            Problem(
                f"{source}: header", "no-identity", "neither a patient_id nor an nhs_number column"
            )
        )
    if "instrument" not in found and options.instrument is None:
        problems.append(
            Problem(
                f"{source}: header",
                "no-instrument",
                "no instrument column and no default instrument",
            )
        )
    return problems


@attrs.frozen
class Layout:
    """One header matched against the canonical columns.

    ``header`` is the source's own column names; ``columns`` maps each canonical name found to
    its position; ``items[k]`` is the position of item ``k + 1`` (or ``None``); ``extras`` are
    the positions passed through to the output, in source order, named by ``extra_names``
    (``site`` under its canonical name, the others as in the source).
    """

    header: tuple[str, ...]
    columns: Mapping[str, int]
    items: tuple[int | None, ...]
    extras: tuple[int, ...]
    extra_names: tuple[str, ...]

    @property
    def n_fields(self) -> int:
        return len(self.header)

    def where(self, name: str) -> str:
        """The source's name for canonical column ``name`` (for messages: ``NHS Number``)."""
        position = self.columns.get(name)
        return name if position is None else self.header[position]

    def missing_items(self, n_items: int) -> tuple[str, ...]:
        """The canonical names of the first ``n_items`` items that have no column (``q13``).

        The rows of an instrument with such an item are rejected (``missing-item-column``): a
        missing column is a header or mapping mistake, and reading its item as unanswered would
        score every row without an answer the person may have given.

        >>> Layout((), {}, (0, None, 1), (), ()).missing_items(4)
        ('q02', 'q04')
        """
        return tuple(
            f"q{k + 1:02d}" for k in range(n_items) if k >= len(self.items) or self.items[k] is None
        )

    @classmethod
    def resolve(cls, header: Sequence[str], options: ReadOptions, *, source: str = "") -> Layout:
        """Match ``header`` using ``options.mapping`` (source name → canonical name), or raise a
        :class:`~pamlib.errors.FormatError` listing every problem with the header.

        A column is read as the canonical column its mapping entry names, else as the one its
        own name is (``Q1``, ``Patient_ID``), else as the one it is :func:`recognised <recognise>`
        as (``Patient ID``, ``Date of assessment``). A recognised column is passed through
        under its own name when another column names the same canonical column more exactly;
        two columns recognised as one canonical column are an error naming both, never a guess.
        """
        header = tuple(header)
        _refuse_undecodable(header, source)
        problems: list[Problem] = []
        mapping = {_match(k): v for k, v in options.mapping.items()}
        drop = {_match(d) for d in options.drop}
        exact, loose = _claims(header, mapping, drop, source, problems)
        chosen, ambiguous = _choose(header, exact, loose, source, problems)
        columns: dict[str, int] = {}
        items: list[int | None] = [None] * MAX_ITEMS
        extras: list[int] = []
        extra_names: list[str] = []
        duplicates = {p for positions in exact.values() for p in positions[1:]}
        for position, raw in enumerate(header):
            if _match(raw) in drop or position in duplicates:
                continue
            target = chosen.get(position)
            if target is None:
                extras.append(position)
                extra_names.append(_clean(raw))
            elif target.startswith("q"):
                items[int(target[1:]) - 1] = position
            else:
                columns[target] = position
                if target == "site":
                    extras.append(position)
                    extra_names.append("site")
        while items and items[-1] is None:
            items.pop()
        present = {_match(h) for h in header}
        for name in sorted(set(mapping) | drop):
            if name not in present:
                problems.append(
                    Problem(
                        f"{source}: header",
                        "missing-column",
                        f"the mapping names a column {name!r} the file does not have",
                    )
                )
        found = columns.keys() | ambiguous | ({"q01"} if items else set())
        problems += _missing(found, options, source)
        if problems:
            raise FormatError(
                "the columns do not match pamlib's layout; map them with a mapping file "
                "(--mapping; mapping= in Python)",
                problems,
            )
        return cls(
            header=header,
            columns=columns,
            items=tuple(items),
            extras=tuple(extras),
            extra_names=tuple(extra_names),
        )


# -- mapping files ----------------------------------------------------------------------------

_DATE_ORDERS = {"day-first": True, "month-first": False}
_ANSWER_VALUES = {"1", "2", "3", "4", "NA"}


@attrs.frozen
class InputMapping:
    """What a mapping file says about one export layout; see :func:`load_mapping`."""

    columns: Mapping[str, str] = attrs.field(factory=dict)
    drop: frozenset[str] = frozenset()
    instrument: str | None = None
    day_first: bool | None = None
    delimiter: str | None = None
    answers: Mapping[str, str] = attrs.field(factory=dict)
    instruments: Mapping[str, str] = attrs.field(factory=dict)

    def apply(self, options: ReadOptions) -> ReadOptions:
        """``options`` with this mapping's settings (command-line choices still win later)."""
        settings = dict(options.settings)
        if self.delimiter is not None:
            settings["delimiter"] = self.delimiter
        return attrs.evolve(
            options,
            mapping={**options.mapping, **self.columns},
            drop=options.drop | self.drop,
            instrument=self.instrument if self.instrument is not None else options.instrument,
            day_first=self.day_first if self.day_first is not None else options.day_first,
            answer_labels={**options.answer_labels, **self.answers},
            instrument_aliases={**options.instrument_aliases, **self.instruments},
            settings=settings,
        )


def _column_target(value: str) -> str | None:
    if _canonical(value) is None:
        return f"not a pamlib column: expected one of {', '.join(CANONICAL_COLUMNS)} or q01 … q22"
    return None


def _answer_value(value: str) -> str | None:
    return None if value.strip().upper() in _ANSWER_VALUES else "must be 1, 2, 3, 4 or NA"


def delimiter_problem(delimiter: str) -> str | None:
    """Why ``delimiter`` cannot separate fields, or ``None``: it must be one ASCII character
    other than a quote or a line break.

    >>> delimiter_problem(";"), delimiter_problem('"')
    (None, 'must be one ASCII character other than a quote or a line break')
    """
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n\x00':
        return "must be one ASCII character other than a quote or a line break"
    return None


def _entry(table: str, key: str, value: str) -> str:
    return f"{table}.{key!r} = {value!r}"


def _same_column_twice(columns: Mapping[str, str], where: str, problems: list[Problem]) -> None:
    """Source columns named twice, in spellings that match the same header cell."""
    first: dict[str, str] = {}
    for key in columns:
        name = _match(key)
        if name in first:
            other = first[name]
            problems.append(
                Problem(
                    f"{where}: columns.{key}",
                    "mapping",
                    f"{_entry('columns', other, columns[other])} and "
                    f"{_entry('columns', key, columns[key])} name the same source column",
                )
            )
        else:
            first[name] = key


def _check_drop(
    drop: Sequence[str], columns: Mapping[str, str], where: str, problems: list[Problem]
) -> None:
    """``drop`` only leaves pass-through columns out of the output: it may not name a column
    pamlib reads, by its own name or through ``[columns]``."""
    mapped = {_match(k): k for k in columns}
    for i, raw in enumerate(drop):
        name = _match(raw)
        entry = f"input.drop[{i}] = {raw!r}"
        if name in mapped:
            key = mapped[name]
            problems.append(
                Problem(
                    f"{where}: input.drop[{i}]",
                    "mapping",
                    f"{entry} and {_entry('columns', key, columns[key])} name the same column: "
                    "a column is either read or dropped",
                )
            )
            continue
        target = _canonical(name)
        why = None if target is None else _drop_problem(name, target, " by its name")
        if why is not None:
            problems.append(Problem(f"{where}: input.drop[{i}]", "mapping", f"{entry}: {why}"))


def _check_answers(answers: Mapping[str, str], where: str, problems: list[Problem]) -> None:
    """Extra answer spellings may neither redefine a built-in one nor contradict each other
    (they are compared in any case and spacing, so two such entries are one label)."""
    from pamlib.formats.values import label_key
    from pamlib.responses import parse_response

    first: dict[str, str] = {}
    for key, value in answers.items():
        code = value.strip().upper()
        try:
            builtin = parse_response(key)
        except ValueError:
            builtin = None
        else:
            if builtin is not None and int(builtin) == _CODES[code]:
                continue  # says what pamlib already reads it as: harmless
            meaning = "unanswered" if builtin is None else _BUILTIN_NAMES[int(builtin)]
            problems.append(
                Problem(
                    f"{where}: answers.{key}",
                    "mapping",
                    f"{_entry('answers', key, value)} redefines pamlib's own answer {key!r} "
                    f"({meaning}); built-in answers cannot be changed",
                )
            )
            continue
        label = label_key(key)
        other = first.setdefault(label, key)
        if other != key and answers[other].strip().upper() != code:
            problems.append(
                Problem(
                    f"{where}: answers.{key}",
                    "mapping",
                    f"{_entry('answers', other, answers[other])} and "
                    f"{_entry('answers', key, value)} are the same label in another case or "
                    "spacing, with different answers",
                )
            )


def _check_instruments(instruments: Mapping[str, str], where: str, problems: list[Problem]) -> None:
    """Instrument spellings are compared in any case: two entries for one spelling must agree."""
    first: dict[str, str] = {}
    for key, value in instruments.items():
        other = first.setdefault(key.strip().casefold(), key)
        if other != key and instruments[other].strip().casefold() != value.strip().casefold():
            problems.append(
                Problem(
                    f"{where}: instruments.{key}",
                    "mapping",
                    f"{_entry('instruments', other, instruments[other])} and "
                    f"{_entry('instruments', key, value)} are the same spelling in another "
                    "case, for different instruments",
                )
            )


_CODES = {"1": 1, "2": 2, "3": 3, "4": 4, "NA": -1}
_BUILTIN_NAMES = {
    1: "disagree strongly, 1",
    2: "disagree, 2",
    3: "agree, 3",
    4: "agree strongly, 4",
    -1: "not applicable",
}


def load_mapping(path: str | os.PathLike[str]) -> InputMapping:
    """Read a mapping file (TOML), reporting every problem with its place in the file.

    A FHIR mapping (``[[questionnaire]]`` tables, :mod:`pamlib.fhir.mapping`) is refused here
    with a message saying so; :func:`load_any_mapping` reads either kind. The file has up to
    four tables, and may say ``kind = "csv"`` at the top::

        [input]                       # all optional
        instrument = "PAM-13"         # for rows (or files) that name no instrument
        dates = "day-first"           # or "month-first": how to read 03/04/2024
        delimiter = ";"               # detected from the header when left out
        drop = ["Clinician"]          # source columns to leave out of the output

        [columns]                     # source column → pamlib column
        "NHS Number" = "nhs_number"
        "Q1" = "q01"

        [answers]                     # extra answer spellings → 1, 2, 3, 4 or NA
        "Agree a lot" = 4

        [instruments]                 # extra instrument spellings → instrument id
        "PAM13" = "PAM-13"
    """
    document, where = _read_document(path)
    if mapping_kind(document, where) == "fhir":
        raise FormatError(
            f"mapping file {where} maps a FHIR questionnaire, not the columns of a table: "
            "use it with FHIR input (pamlib.fhir.load_mapping reads it)",
            [Problem(f"{where}: questionnaire", "mapping-kind", "a FHIR mapping's table")],
        )
    return _mapping(document, where)


def _read_document(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """A mapping file parsed, with the name its problems are reported under."""
    from pamlib._documents import DocumentError, decode_utf8, parse_toml

    where = Path(path).name
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read mapping file {where}: {exc.strerror or exc}"
        ) from None
    try:
        document = parse_toml(decode_utf8(data, where), where)
    except DocumentError as exc:
        raise FormatError(f"mapping file {where} is not valid TOML", [exc.problem]) from None
    return document, where


#: What a mapping file maps: the columns of a table (CSV, and any reader of named columns), or
#: a FHIR questionnaire's linkIds and answer codes.
MappingKind = Literal["csv", "fhir"]
_TABLES: dict[str, frozenset[str]] = {
    "csv": frozenset({"input", "columns", "answers", "instruments"}),
    "fhir": frozenset({"questionnaire"}),
}


def mapping_kind(document: Mapping[str, Any], where: str = "<mapping>") -> MappingKind:
    """What a parsed mapping file maps, told by its tables: ``"fhir"`` for
    ``[[questionnaire]]``, ``"csv"`` for ``[input]``, ``[columns]``, ``[answers]`` or
    ``[instruments]`` (and for a file with none of them, which changes nothing).

    A top-level ``kind = "csv"`` or ``"fhir"`` may say so explicitly; it must agree with the
    tables. A file holding both kinds of table is refused rather than half-used.

    >>> mapping_kind({"columns": {"NHS No": "nhs_number"}}), mapping_kind({"questionnaire": []})
    ('csv', 'fhir')
    """
    found = {kind for kind, tables in _TABLES.items() if tables & set(document)}
    declared = document.get("kind")
    problems: list[Problem] = []
    if declared is not None and declared not in _TABLES:
        problems.append(Problem(f"{where}: kind", "mapping-kind", 'must be "csv" or "fhir"'))
        declared = None
    if len(found) > 1:
        problems.append(
            Problem(
                f"{where}: questionnaire",
                "mapping-kind",
                "a FHIR table ([[questionnaire]]) beside a table's column mapping "
                f"([{', '.join(sorted(_TABLES['csv'] & set(document)))}]): one file maps one "
                "kind of input",
            )
        )
    elif declared is not None and found and declared not in found:
        (other,) = found
        tables = ", ".join(f"[{t}]" for t in sorted(_TABLES[other] & set(document)))
        problems.append(
            Problem(
                f"{where}: kind",
                "mapping-kind",
                f"kind = {declared!r} but the file's tables ({tables}) are a {other} mapping's",
            )
        )
    if problems:
        raise FormatError(f"mapping file {where} is invalid", problems)
    if declared is not None:
        return "fhir" if declared == "fhir" else "csv"
    return "fhir" if found == {"fhir"} else "csv"


def load_any_mapping(path: str | os.PathLike[str]) -> InputMapping | FhirMapping:
    """Read a mapping file of either kind, told by its tables (:func:`mapping_kind`): an
    :class:`InputMapping` for the columns of a table, or a
    :class:`~pamlib.fhir.mapping.FhirMapping` for a FHIR questionnaire. Every problem in the
    file is reported at once, as the loader of its kind reports it."""
    document, where = _read_document(path)
    if mapping_kind(document, where) == "fhir":
        from pamlib.fhir.mapping import parse_mapping

        return parse_mapping(document, where)
    return _mapping(document, where)


def _mapping(data: dict[str, Any], where: str) -> InputMapping:
    """The checks of :func:`load_mapping` on a parsed document (in a module of its own, with
    the document classes, imported when a mapping file is read)."""
    from pamlib.formats._mapping_file import structure_mapping

    return structure_mapping(data, where)


def with_mapping(
    options: ReadOptions, mapping: str | os.PathLike[str] | Mapping[str, str] | None
) -> ReadOptions:
    """``options`` with a mapping applied: a mapping file's path (:func:`load_mapping`: its
    columns and settings) or ``{source column: pamlib column}`` added to the columns mapped
    already. What :class:`~pamlib.pipeline.TableScorer` and :mod:`pamlib.spark` read with."""
    if isinstance(mapping, (str, os.PathLike)):
        return load_mapping(mapping).apply(options)
    if mapping is not None:
        _check_columns(mapping)
        return attrs.evolve(options, mapping={**options.mapping, **mapping})
    return options


def _check_columns(mapping: Mapping[str, str]) -> None:
    """A mapping given as a dictionary gets the checks of a mapping file's ``[columns]``: a
    target that is no pamlib column would otherwise be ignored and its column passed through
    (an item read as unanswered, assessment ids made up so that repeats go unseen)."""
    from pamlib.formats._mapping_file import structure_mapping

    if not isinstance(mapping, Mapping):
        raise ConfigurationError(
            "mapping must be a mapping file's path or a dictionary of source column to pamlib "
            f"column, not {type(mapping).__name__}"
        )
    try:
        structure_mapping({"columns": dict(mapping)}, "mapping")
    except FormatError as exc:
        raise FormatError("the column mapping given is invalid", exc.problems) from None
