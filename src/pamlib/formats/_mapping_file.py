"""A column mapping file's document: the classes and hooks that check it as it is structured.

Kept out of :mod:`pamlib.formats.layout`, which every table reader imports, so that their
classes are made, and ``cattrs`` imported, only when a mapping file is read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NewType, NoReturn

import attrs

from pamlib._config import (
    FieldError,
    Wording,
    dotted,
    make_converter,
    structure_each,
    structure_fields,
)
from pamlib.errors import FormatError, Problem
from pamlib.formats.layout import (
    _DATE_ORDERS,
    InputMapping,
    _answer_value,
    _check_answers,
    _check_drop,
    _check_instruments,
    _column_target,
    _same_column_twice,
    delimiter_problem,
)

if TYPE_CHECKING:
    import cattrs  # imported by make_converter, when a mapping file is read


_CsvKind = NewType("_CsvKind", str)
_Text = NewType("_Text", str)
_DateOrder = NewType("_DateOrder", bool)
_Delimiter = NewType("_Delimiter", str)
_Drop = NewType("_Drop", tuple[str, ...])
_Table = NewType("_Table", dict[str, Any])
_Column = NewType("_Column", str)
_Answer = NewType("_Answer", str)
_Name = NewType("_Name", str)


@attrs.frozen(kw_only=True)
class _InputDoc:
    """A mapping file's ``[input]`` table."""

    wording: ClassVar = Wording(("mapping", "must be a table"), ("mapping", "unknown key"))
    instrument: _Text | None = None
    dates: _DateOrder | None = None
    delimiter: _Delimiter | None = None
    drop: _Drop = _Drop(())


@attrs.frozen(kw_only=True)
class _MappingDoc:
    """A column mapping file's top level; each entry of its tables is structured on its own."""

    wording: ClassVar = Wording(("mapping", "must be a table"), ("mapping", "unknown table or key"))
    kind: _CsvKind = _CsvKind("csv")
    input: _Table = attrs.field(factory=lambda: _Table({}))
    columns: _Table = attrs.field(factory=lambda: _Table({}))
    answers: _Table = attrs.field(factory=lambda: _Table({}))
    instruments: _Table = attrs.field(factory=lambda: _Table({}))


def _refuse(message: str) -> NoReturn:
    raise FieldError("mapping", message)


def _text(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        _refuse("must be a string")
    return value


def _entry_text(check: Callable[[str], str | None] | None) -> Callable[[Any, Any], str]:
    """A table entry's value: a string (a whole number is read as one), passing ``check``."""

    def hook(raw: Any, _: Any) -> str:
        value = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else _text(raw, _)
        why = check(value) if check is not None else None
        if why:
            _refuse(why)
        return value

    return hook


def _date_order(value: Any, _: Any) -> bool:
    if not isinstance(value, str) or value not in _DATE_ORDERS:
        _refuse('must be "day-first" or "month-first"')
    return _DATE_ORDERS[value]


def _delimiter(value: Any, _: Any) -> str:
    why = delimiter_problem(value) if isinstance(value, str) else "must be one character"
    if why:
        _refuse(why)
    return str(value)


def _drop(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        _refuse("must be a list of strings")
    return tuple(value)


def _table(value: Any, _: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        _refuse("must be a table")
    return value


def _kind(value: Any, _: Any) -> str:
    if value != "csv":
        _refuse('must be "csv" in a column mapping')
    return "csv"


@functools.cache
def _converter() -> cattrs.Converter:
    conv = make_converter()
    conv.register_structure_hook(_CsvKind, _kind)
    conv.register_structure_hook(_Text, _text)
    conv.register_structure_hook(_DateOrder, _date_order)
    conv.register_structure_hook(_Delimiter, _delimiter)
    conv.register_structure_hook(_Drop, _drop)
    conv.register_structure_hook(_Table, _table)
    conv.register_structure_hook(_Column, _entry_text(_column_target))
    conv.register_structure_hook(_Answer, _entry_text(_answer_value))
    conv.register_structure_hook(_Name, _entry_text(None))
    return conv


def structure_mapping(data: dict[str, Any], where: str) -> InputMapping:
    """The checks of :func:`load_mapping` on a parsed document: each table, each entry of a
    table, structured on its own, so the checks across entries see every valid one."""
    conv = _converter()
    top, found = structure_fields(conv, data, _MappingDoc)
    section, problems = structure_fields(conv, top.get("input", {}), _InputDoc, ("input",))
    found += problems
    tables: dict[str, dict[str, str]] = {}
    for name, kind in (("columns", _Column), ("answers", _Answer), ("instruments", _Name)):
        valid, problems = structure_each(conv, top.get(name, {}), kind, (name,))
        found += problems
        tables[name] = dict(valid)
    out = [Problem(f"{where}: {dotted(f.path)}", f.code, f.message) for f in found]
    columns, answers, instruments = tables["columns"], tables["answers"], tables["instruments"]
    drop: tuple[str, ...] = section.get("drop", ())
    _same_column_twice(columns, where, out)
    _check_drop(drop, columns, where, out)
    _check_answers(answers, where, out)
    _check_instruments(instruments, where, out)
    if out:
        raise FormatError(f"mapping file {where} is invalid", out)
    return InputMapping(
        columns=columns,
        drop=frozenset(drop),
        instrument=section.get("instrument"),
        day_first=section.get("dates"),
        delimiter=section.get("delimiter"),
        answers={k: v.strip().upper() for k, v in answers.items()},
        instruments=instruments,
    )
