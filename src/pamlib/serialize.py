"""JSON-shaped dictionaries to and from pamlib's models.

The models know nothing of wire formats; this module owns the one private cattrs converter that
does. Structuring reports *every* problem at once, each with a JSON path, as a
:class:`~pamlib.errors.ValidationError`.

>>> from pamlib.identity import Patient
>>> to_dict(Patient("p1"))
{'id': 'p1', 'nhs_number': None}
>>> from_dict({"id": "", "nhs_number": "123"}, Patient)
Traceback (most recent call last):
...
pamlib.errors.ValidationError: invalid Patient
  - an NHS number has exactly 10 digits @ $.nhs_number
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.preconf.json import make_converter
from cattrs.v import format_exception

from pamlib._documents import DocumentError, decode_utf8, parse_json
from pamlib.errors import Problem, ValidationError
from pamlib.instruments import Instrument, InstrumentRegistry
from pamlib.results import Flag

__all__ = ["dumps", "from_dict", "loads", "to_dict"]

T = TypeVar("T")


def _join(path: str, where: str) -> str:
    if not where:
        return path
    return f"{path}{where}" if where.startswith("[") else f"{path}.{where}"


def _problems(exc: BaseException, path: str, type_: Any = None) -> list[Problem]:
    """Flatten cattrs' exception groups (and pamlib's own errors inside them) into problems."""
    if isinstance(exc, ValidationError):
        return [Problem(_join(path, p.where), p.code, p.message) for p in exc.problems] or [
            Problem(path, "invalid", exc.summary)
        ]
    if isinstance(exc, cattrs.IterableValidationError):
        indexed, unplaced = exc.group_exceptions()
        out = [
            p
            for inner, index in indexed
            for p in _problems(inner, f"{path}[{index.index!r}]", index.type)
        ]
        return out + [p for inner in unplaced for p in _problems(inner, path)]
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, without = exc.group_exceptions()
        out = [
            p
            for inner, note in with_notes
            for p in _problems(inner, f"{path}.{note.name}", note.type)
        ]
        return out + [p for inner in without for p in _problems(inner, path)]
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return [
            Problem(_join(path, key), "unknown-field", "unknown field")
            for key in sorted(exc.extra_fields)
        ]
    return [Problem(path, "invalid", format_exception(exc, type_))]


def _make(instruments: InstrumentRegistry | None) -> cattrs.Converter:
    conv = make_converter(detailed_validation=True, forbid_extra_keys=True)
    conv.register_unstructure_hook(dt.date, lambda d: d.isoformat())
    conv.register_structure_hook(dt.date, lambda v, _: dt.date.fromisoformat(v))
    conv.register_unstructure_hook(Instrument, lambda i: i.id)

    # weakly: the converter is cached by the registry's identity and dropped with it
    registry_ref = None if instruments is None else weakref.ref(instruments)

    def structure_instrument(value: Any, _: Any) -> Instrument:
        if not isinstance(value, str):
            raise TypeError("an instrument is given by its id")
        registry = None if registry_ref is None else registry_ref()
        if registry is None:  # pragma: no cover - from_dict always names a live registry
            raise TypeError("no instrument registry to resolve instrument ids with")
        return registry.get(value)

    conv.register_structure_hook(Instrument, structure_instrument)
    conv.register_unstructure_hook_func(
        lambda t: t == frozenset[Flag], lambda flags: sorted(str(f) for f in flags)
    )
    conv.register_unstructure_hook(MappingProxyType, lambda m: conv.unstructure(dict(m)))
    return conv


_converters: dict[int, cattrs.Converter] = {}


def _converter(instruments: InstrumentRegistry | None) -> cattrs.Converter:
    """The converter resolving instrument ids in ``instruments`` (``None``: only for
    unstructuring), cached while the registry lives."""
    key = id(instruments)
    conv = _converters.get(key)
    if conv is None:
        conv = _converters[key] = _make(instruments)
        if instruments is not None:  # the id may be reused once the registry is gone
            weakref.finalize(instruments, _converters.pop, key, None)
    return conv


def to_dict(obj: object) -> Any:
    """``obj`` as plain JSON-compatible Python data."""
    return _converter(None).unstructure(obj)


def from_dict(data: Any, cls: type[T], *, instruments: InstrumentRegistry | None = None) -> T:
    """Build a ``cls`` from JSON-shaped data, or raise a :class:`ValidationError` listing all
    problems with their paths (``$.responses['pam13.03']``).

    ``instruments`` resolves instrument ids (default: every instrument of the process-wide
    plugin host; pass a host's ``instruments()`` to use that host's).
    """
    if instruments is None:
        from pamlib.plugins import get_host

        instruments = get_host().instruments()
    if attrs.has(cls) and not isinstance(data, Mapping):
        # cattrs checks the fields of an object, not that it was given one
        kind = "null" if data is None else f"a {type(data).__name__}"
        problem = Problem("$", "type", f"expected an object, not {kind}")
        raise ValidationError(f"invalid {cls.__name__}", [problem])
    conv = _converter(instruments)
    try:
        return conv.structure(data, cls)
    except (cattrs.BaseValidationError, ValidationError) as exc:
        raise ValidationError(f"invalid {cls.__name__}", _problems(exc, "$")) from None


def dumps(obj: object, **kwargs: Any) -> str:
    """``obj`` as a JSON string (keyword arguments go to :func:`json.dumps`)."""
    return json.dumps(to_dict(obj), **kwargs)


def loads(text: str | bytes, cls: type[T], *, instruments: InstrumentRegistry | None = None) -> T:
    """Parse JSON text into a ``cls`` (see :func:`from_dict`).

    Text that is not JSON, not UTF-8, nested too deeply or holding an integer too long to
    convert raises a :class:`ValidationError` with one located problem (``line 1 column 2``, or
    ``$`` for the whole document).
    """
    try:
        if isinstance(text, bytes):
            text = decode_utf8(text, "$")
        data = parse_json(text, "$")
    except DocumentError as exc:
        problem = exc.problem
        where = problem.where.removeprefix("$: ")
        summary = "not JSON" if problem.code == "json" and where != "$" else problem.message
        raise ValidationError(summary, [Problem(where, problem.code, problem.message)]) from None
    return from_dict(data, cls, instruments=instruments)
