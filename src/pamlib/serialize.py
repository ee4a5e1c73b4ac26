"""JSON-shaped dictionaries to and from pamlib's models.

The models know nothing of wire formats; this module owns the one private cattrs converter that
does. Structuring reports every problem with a value at once, each with a JSON path, as a
:class:`~pamlib.errors.ValidationError`; the checks a model makes of itself (an item its
instrument lacks, a patient with no identifier) follow once every value could be read.

Values are taken as JSON gives them, never converted from another type: text is text (``null``
is not ``'None'``), a whole number may be written ``2`` or ``2.0`` but not ``true``, ``2.5`` or
``"2"``, numbers are finite, a date is ``yyyy-mm-dd``, an array is an array. :func:`loads` also
refuses a key repeated in one object (two answers to one item), which :mod:`json` would drop.
Messages say what kind of value was found, never the value.

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

import contextlib
import datetime as dt
import enum
import functools
import json
import math
import re
import weakref
from collections.abc import Mapping
from types import GenericAlias, MappingProxyType
from typing import Any, NoReturn, TypeVar, get_args, get_origin

import attrs
import cattrs
import cattrs.cols
from cattrs.gen import make_hetero_tuple_structure_fn
from cattrs.preconf.json import make_converter

from pamlib._documents import DocumentError, decode_utf8, parse_json
from pamlib._documents import json_kind as _kind
from pamlib.errors import InstrumentError, Problem, ValidationError
from pamlib.identity import Patient
from pamlib.instruments import Instrument, InstrumentRegistry
from pamlib.levels import CutpointSet
from pamlib.responses import Response
from pamlib.results import Flag

__all__ = ["dumps", "from_dict", "loads", "to_dict"]

T = TypeVar("T")


def _join(path: str, where: str) -> str:
    if not where:
        return path
    return f"{path}{where}" if where.startswith(("[", ".")) else f"{path}.{where}"


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
        # keys as given: a Python caller's may be of any type (and of several)
        return [
            Problem(_join(path, key) if isinstance(key, str) else f"{path}[{key!r}]",
                    "unknown-field", "unknown field")
            for key in sorted(exc.extra_fields, key=repr)
        ]  # fmt: skip
    return [Problem(path, "invalid", _message(exc, type_))]


def _message(exc: BaseException, type_: Any) -> str:
    """Why a value was refused, from an exception a hook or cattrs raised: never its text,
    which may quote the value (``'9434765919' is not a valid Mode``)."""
    if isinstance(exc, KeyError):
        return "required field missing"
    name = getattr(type_, "__name__", None)
    return f"invalid value, expected {name}" if name else "invalid value"


def _refuse(message: str, code: str = "invalid") -> NoReturn:
    """Raised by a hook; :func:`_problems` puts it at the path of the value."""
    raise ValidationError(message, [Problem("", code, message)])


#: Whole numbers are held to what an int64 column (a scored table, Arrow) holds.
_WHOLE = 2**63


def _text(value: Any, _: Any = None) -> str:
    if not isinstance(value, str):
        _refuse(f"expected text, not {_kind(value)}")
    return value


def _whole(value: Any, _: Any = None) -> int:
    """A whole number: ``2`` or ``2.0`` (JSON has one kind of number), never ``true`` or
    ``2.5`` (which would be truncated) or text."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        _refuse(f"expected a whole number, not {_kind(value)}")
    if not -_WHOLE <= value < _WHOLE:
        _refuse("a whole number out of range")
    return value


def _number(value: Any, _: Any = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _refuse(f"expected a number, not {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        _refuse("a number out of range")
    if not math.isfinite(number):
        _refuse("expected a finite number")
    return number


def _boolean(value: Any, _: Any = None) -> bool:
    if not isinstance(value, bool):
        _refuse(f"expected true or false, not {_kind(value)}")
    return value


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(value: Any, _: Any = None) -> dt.date:
    """``yyyy-mm-dd`` only, as written out and as a table reads it: ``fromisoformat`` alone
    would also take ``20250301`` and week dates."""
    if not isinstance(value, str):
        _refuse(f"not a date: expected yyyy-mm-dd text, not {_kind(value)}")
    if _DATE.fullmatch(value):
        with contextlib.suppress(ValueError):
            return dt.date.fromisoformat(value)
    _refuse("not a date: expected yyyy-mm-dd")


@functools.cache
def _enum_rule(type_: type[enum.Enum]) -> tuple[bool, str, str]:
    """Whether ``type_``'s values are whole numbers, and the code and words of a refusal."""
    values = [member.value for member in type_]
    if type_ is Response:
        return True, "impossible-answer", "an answer is 1-4 or not applicable (-1)"
    why = "expected one of " + ", ".join(json.dumps(v) for v in values)
    return all(isinstance(v, int) for v in values), "invalid", why


def _enum(value: Any, type_: type[enum.Enum]) -> enum.Enum:
    """One of an enum's values, given as its value's type: ``true`` is not level 1."""
    whole, code, why = _enum_rule(type_)
    if whole:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        _refuse(f"{why}, not {_kind(value)}", code)
    try:
        return type_(value)
    except ValueError:
        _refuse(why, code)


def _array(make: Any) -> Any:
    """A hook factory for tuples and sets that takes JSON arrays only: cattrs iterates anything,
    so text was its characters and an object its keys."""

    def factory(type_: Any) -> Any:
        inner = make(type_)

        def structure(value: Any, cl: Any) -> Any:
            if not isinstance(value, list | tuple):
                _refuse(f"expected an array, not {_kind(value)}")
            return inner(value, cl)

        return structure

    return factory


class _Pairs(dict[str, Any]):
    """A JSON object as :func:`loads` read it, with the keys it repeated (refused by the
    object's hook, at their paths, with every other problem)."""

    repeated: tuple[str, ...] = ()


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out = _Pairs(items)
    if len(out) != len(items):
        seen: set[str] = set()
        repeated = []
        for key, _ in items:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        out.repeated = tuple(repeated)
    return out


def _object(make: Any, describe: Any) -> Any:
    """A hook factory for objects (attrs classes) and mappings: a JSON object, each key once;
    ``describe(key)`` is where a repeated key is (``.id``, ``['pam13.01']``)."""

    def factory(type_: Any) -> Any:
        inner = make(type_)

        def structure(value: Any, cl: Any) -> Any:
            if not isinstance(value, Mapping):
                _refuse(f"expected an object, not {_kind(value)}", "type")
            repeated = getattr(value, "repeated", ())
            if not repeated:
                return inner(value, cl)
            found = [
                Problem(describe(key), "duplicate-key", "the key appears more than once")
                for key in dict.fromkeys(repeated)
            ]
            try:
                inner(value, cl)
            except (cattrs.BaseValidationError, ValidationError) as exc:
                found += _problems(exc, "")
            raise ValidationError("repeated keys", found)

        return structure

    return factory


def _anchored(hook: Any, where: Any) -> Any:
    """``hook`` with the problems its model's own checks raise put at the model's fields:
    those name a place for a caller of the constructor (``patient``, a cut-point set's id)."""

    def structure(value: Any, cl: Any) -> Any:
        try:
            return hook(value, cl)
        except cattrs.ClassValidationError as exc:
            # the constructor ran (every field was read) and refused the object
            with_notes, without = exc.group_exceptions()
            if with_notes or not all(isinstance(e, ValidationError) for e in without):
                raise
            found = [
                Problem(where(p), p.code, p.message)
                for e in without
                for p in e.problems  # type: ignore[attr-defined]
            ]
            raise ValidationError(exc.message, found) from None

    return structure


def _patient_where(problem: Problem) -> str:
    """The Patient's own problems are named for a caller holding an assessment."""
    return problem.where.removeprefix("patient").removeprefix(".")


def _cutpoints_where(problem: Problem) -> str:
    """A cut-point set's own problems are named by its id (``current: decimals``)."""
    return {"cutpoints": "upper_bounds", "decimals": "decimals"}.get(problem.code, problem.where)


def _is_set(type_: Any) -> bool:
    return get_origin(type_) is frozenset


def _is_fixed_tuple(type_: Any) -> bool:
    return get_origin(type_) is tuple and ... not in get_args(type_)


def _make(instruments: InstrumentRegistry | None) -> cattrs.Converter:
    conv = make_converter(detailed_validation=True, forbid_extra_keys=True)
    conv.register_unstructure_hook(dt.date, lambda d: d.isoformat())
    conv.register_unstructure_hook(Instrument, lambda i: i.id)
    # JSON's own types, held strictly: cattrs calls str(), int(), float() and bool(), which
    # made null the text 'None', 12.7 the whole number 12 and "false" true
    for type_, hook in ((str, _text), (int, _whole), (float, _number), (bool, _boolean)):
        conv.register_structure_hook(type_, hook)
    conv.register_structure_hook(dt.date, _date)
    # by the enum base classes too: a StrEnum is a str first, and would get str's hook
    for base in (enum.Enum, enum.IntEnum, enum.StrEnum):
        conv.register_structure_hook(base, _enum)
    conv.register_structure_hook_factory(
        cattrs.cols.is_sequence,
        _array(lambda t: cattrs.cols.homogenous_tuple_structure_factory(t, conv)),
    )
    conv.register_structure_hook_factory(_is_set, _array(lambda t: _set_hook(t, conv)))
    conv.register_structure_hook_factory(
        _is_fixed_tuple, _array(lambda t: _sized(t, make_hetero_tuple_structure_fn(t, conv)))
    )
    conv.register_structure_hook_factory(
        cattrs.cols.is_mapping,
        _object(lambda t: cattrs.cols.mapping_structure_factory(t, conv), lambda k: f"[{k!r}]"),
    )
    anchors = {Patient: _patient_where, CutpointSet: _cutpoints_where}

    def make_object(type_: Any) -> Any:
        hook = conv.gen_structure_attrs_fromdict(type_)
        return _anchored(hook, anchors[type_]) if type_ in anchors else hook

    conv.register_structure_hook_factory(attrs.has, _object(make_object, lambda k: k))

    # weakly: the converter is cached by the registry's identity and dropped with it
    registry_ref = None if instruments is None else weakref.ref(instruments)

    def structure_instrument(value: Any, _: Any) -> Instrument:
        if not isinstance(value, str):
            _refuse(f"an instrument is given by its id, not {_kind(value)}")
        registry = None if registry_ref is None else registry_ref()
        if registry is None:  # pragma: no cover - from_dict always names a live registry
            _refuse("no instrument registry to resolve instrument ids with")
        try:
            return registry.get(value)
        except InstrumentError as exc:
            raise ValidationError(
                exc.summary, [Problem("", p.code, p.message) for p in exc.problems]
            ) from None

    conv.register_structure_hook(Instrument, structure_instrument)
    conv.register_unstructure_hook_func(
        lambda t: t == frozenset[Flag], lambda flags: sorted(str(f) for f in flags)
    )
    conv.register_unstructure_hook(MappingProxyType, lambda m: conv.unstructure(dict(m)))
    return conv


def _set_hook(type_: Any, conv: cattrs.Converter) -> Any:
    """A frozenset read as a tuple first: each element's problem at its index."""
    as_tuple: Any = GenericAlias(tuple, (get_args(type_)[0], ...))
    items = cattrs.cols.homogenous_tuple_structure_factory(as_tuple, conv)
    return lambda value, _: frozenset(items(value, as_tuple))


def _sized(type_: Any, hook: Any) -> Any:
    """A fixed-length tuple from an array of exactly that length (cattrs stops at the shorter)."""
    n = len(type_.__args__)

    def structure(value: Any, cl: Any) -> Any:
        if len(value) != n:
            _refuse(f"expected an array of {n}, not of {len(value)}")
        return hook(value, cl)

    return structure


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
    conv = _converter(instruments)
    try:
        return conv.structure(data, cls)
    except (cattrs.BaseValidationError, ValidationError) as exc:
        raise ValidationError(f"invalid {cls.__name__}", _problems(exc, "$")) from None


def dumps(obj: object, **kwargs: Any) -> str:
    """``obj`` as a JSON string (keyword arguments go to :func:`json.dumps`).

    A number JSON cannot hold (an infinity, in a result built by hand: a provider's is refused
    before) is a :class:`ValidationError` at its path, not ``Infinity``, which is not JSON and
    which :func:`loads` refuses.
    """
    data = to_dict(obj)
    kwargs.setdefault("allow_nan", False)
    try:
        return json.dumps(data, **kwargs)
    except ValueError:
        found = [
            Problem(path, "not-finite", "a number JSON cannot hold (an infinity)")
            for path in _not_finite(data, "$")
        ]
        if not found:
            raise
        raise ValidationError(f"cannot write {type(obj).__name__} as JSON", found) from None


def _not_finite(value: Any, path: str) -> list[str]:
    """The paths of the numbers in ``value`` that are not finite."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _not_finite(v, _join(path, str(k)))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _not_finite(v, f"{path}[{i}]")]
    return []


def loads(text: str | bytes, cls: type[T], *, instruments: InstrumentRegistry | None = None) -> T:
    """Parse JSON text into a ``cls`` (see :func:`from_dict`).

    Text that is not JSON, not UTF-8, nested too deeply or holding an integer too long to
    convert raises a :class:`ValidationError` with one located problem (``line 1 column 2``, or
    ``$`` for the whole document).
    """
    try:
        if isinstance(text, bytes):
            text = decode_utf8(text, "$")
        data = parse_json(text, "$", object_pairs_hook=_pairs)
    except DocumentError as exc:
        problem = exc.problem
        where = problem.where.removeprefix("$: ")
        summary = "not JSON" if problem.code == "json" and where != "$" else problem.message
        raise ValidationError(summary, [Problem(where, problem.code, problem.message)]) from None
    return from_dict(data, cls, instruments=instruments)
