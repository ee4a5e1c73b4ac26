"""Configuration documents (rule files, mapping files) structured by cattrs, faults as problems.

Each document kind describes its TOML as private frozen attrs classes; the models the rest of
pamlib uses know nothing of it. A document class says how its generic faults read through a
:class:`Wording` class variable (what a value that is not a table, an unknown key or a missing
key is called, with which problem code), and may add :meth:`cross-field checks <Wording.check>`
that see the raw table. Structure hooks refuse a value by raising :class:`FieldError`. Whatever goes
wrong, :func:`structure` returns every fault at once, each with its path in the document
(``("rule", 2, "when", "level")``); the document kind turns paths into the locations people
read (``site.toml: rule 'r1': when.level``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

# cattrs is imported where a document is structured: the classes that describe documents are
# defined whenever their modules are imported (a CSV read needs the layout's), cattrs only when
# a document is read.
if TYPE_CHECKING:
    import cattrs

#: Where a value sits in a document: table keys and array indices, outermost first.
KeyPath = tuple[str | int, ...]


class FieldError(ValueError):
    """A value a structure hook or a cross-field check refuses; ``path`` is relative to the
    value being structured (empty: the value itself)."""

    def __init__(self, code: str, message: str, path: KeyPath = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


@attrs.frozen
class Located:
    """One fault with its path from the document's root."""

    path: KeyPath
    code: str
    message: str


def _no_checks(raw: Mapping[str, Any]) -> list[FieldError]:
    return []


@attrs.frozen
class Wording:
    """How a document class words generic faults: ``(code, message)`` for a value that is not a
    table, for an unknown key (``{key!r}`` is filled in) and for each required key left out;
    ``check`` finds the faults between fields in the raw table (run whether or not the fields
    themselves are valid, so every problem is reported at once)."""

    not_table: tuple[str, str]
    unknown: tuple[str, str]
    missing: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    check: Callable[[Mapping[str, Any]], list[FieldError]] = _no_checks


def _wording(cl: type) -> Wording:
    wording = getattr(cl, "wording", None)
    if not isinstance(wording, Wording):  # pragma: no cover - a programming error
        raise TypeError(f"{cl.__name__} is a document class without a wording")
    return wording


def make_converter() -> cattrs.Converter:
    """A converter for configuration documents: every fault collected, unknown keys refused,
    each attrs class guarded by its :class:`Wording` (a non-table is one fault, not many)."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn

    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)

    def factory(cl: type) -> Callable[[Any, type], Any]:
        inner: Callable[[Any, type], Any] = make_dict_structure_fn(
            cl, conv, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
        )
        wording = _wording(cl)

        def hook(value: Any, _: type) -> Any:
            if not isinstance(value, dict):
                raise FieldError(*wording.not_table)
            checked = wording.check(value)
            try:
                made = inner(value, cl)
            except cattrs.ClassValidationError as exc:
                raise ExceptionGroup("invalid table", [exc, *checked]) from None
            if checked:
                raise ExceptionGroup("invalid table", checked)
            return made

        return hook

    conv.register_structure_hook_factory(attrs.has, factory)
    for kind in (str, int, float, bool):  # never coerced: documents declare their own types
        conv.register_structure_hook(kind, _strict(kind))
    return conv


def _strict(kind: type) -> Callable[[Any, type], Any]:
    def hook(value: Any, _: type) -> Any:
        if type(value) is not kind:
            raise FieldError("type", f"must be {_NAMES[kind]}")
        return value

    return hook


_NAMES = {str: "a text", int: "a whole number", float: "a number", bool: "true or false"}


def faults(exc: BaseException, path: KeyPath = (), cl: type | None = None) -> list[Located]:
    """``exc`` (a :class:`FieldError`, cattrs' exception groups, or any mix) as located faults."""
    import cattrs

    if isinstance(exc, FieldError):
        return [Located(path + exc.path, exc.code, exc.message)]
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        code, message = _wording(exc.cl).unknown
        return [
            Located((*path, key), code, message.format(key=key)) for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, without = exc.group_exceptions()
        out: list[Located] = []
        for inner, note in with_notes:
            if isinstance(inner, KeyError) and str(note.name) in _wording(exc.cl).missing:
                code, message = _wording(exc.cl).missing[note.name]
                out.append(Located((*path, note.name), code, message))
            else:
                out += faults(inner, (*path, note.name))
        return out + [f for inner in without for f in faults(inner, path, exc.cl)]
    if isinstance(exc, cattrs.IterableValidationError):
        indexed, unplaced = exc.group_exceptions()
        out = [f for inner, note in indexed for f in faults(inner, (*path, note.index))]
        return out + [f for inner in unplaced for f in faults(inner, path)]
    if isinstance(exc, BaseExceptionGroup):
        return [f for inner in exc.exceptions for f in faults(inner, path)]
    # A cattrs built-in refusing a value (a text for an integer …): worded by the document.
    return [Located(path, "invalid", f"not a valid value ({type(exc).__name__})")]


def structure(
    conv: cattrs.Converter, value: Any, cl: Any, path: KeyPath = ()
) -> tuple[Any, list[Located]]:
    """``value`` structured as ``cl``, or ``None`` and every fault, located under ``path``."""
    import cattrs

    try:
        return conv.structure(value, cl), []
    except (cattrs.BaseValidationError, FieldError, ExceptionGroup) as exc:
        return None, faults(exc, path)


def structure_fields(
    conv: cattrs.Converter, value: Mapping[str, Any], cl: type, path: KeyPath = ()
) -> tuple[dict[str, Any], list[Located]]:
    """A document's top-level table field by field: the fields that are valid (left out when
    absent), and every fault. Unlike structuring ``cl`` whole, one bad table leaves the others
    for the cross-table checks."""
    wording = _wording(cl)
    found = [f for fault in wording.check(value) for f in faults(fault, path)]
    fields = attrs.fields_dict(attrs.resolve_types(cl))
    code, message = wording.unknown
    found += [
        Located((*path, key), code, message.format(key=key)) for key in value if key not in fields
    ]
    out: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in value:
            if name in wording.missing:
                found.append(Located((*path, name), *wording.missing[name]))
            continue
        made, problems = structure(conv, value[name], field.type, (*path, name))
        found += problems
        if not problems:
            out[name] = made
    return out, found


def structure_each(
    conv: cattrs.Converter, values: Sequence[Any] | Mapping[str, Any], cl: Any, path: KeyPath
) -> tuple[list[tuple[Any, Any]], list[Located]]:
    """Each item of an array (or entry of a table) structured on its own, so one bad item
    leaves the others usable and the checks across items see every valid one: ``(index or
    key, item)`` pairs for the valid items, and every fault."""
    pairs = values.items() if isinstance(values, Mapping) else enumerate(values)
    out: list[tuple[Any, Any]] = []
    found: list[Located] = []
    for key, value in pairs:
        made, problems = structure(conv, value, cl, (*path, key))
        found += problems
        if not problems:
            out.append((key, made))
    return out, found


def dotted(path: Iterable[str | int]) -> str:
    """A path as TOML keys are written in messages: ``then[0].recommend``, ``columns.A``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def in_document_order(found: Iterable[Located], document: Mapping[str, Any]) -> list[Located]:
    """``found`` sorted by where their top-level key (and array index) stands in ``document``;
    faults under one table keep the order they were found in (field order)."""
    keys = {key: i for i, key in enumerate(document)}

    def position(fault: Located) -> tuple[int, int]:
        head = fault.path[0] if fault.path else ""
        index = fault.path[1] if len(fault.path) > 1 and isinstance(fault.path[1], int) else -1
        return keys.get(str(head), len(keys)), index

    return sorted(found, key=position)
