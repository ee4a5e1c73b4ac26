"""The conditions a rule file's ``when`` and ``unless`` tables may state, and how they match.

Every condition in a table must hold (AND); a condition given a list holds when any listed value
does (OR). Text compares ignoring case and surrounding spaces. A condition on something the
assessment does not have — a level when it was not scored, a change when there is no previous
score — does not hold. Conditions are data, never code: there is nothing to evaluate but
comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NewType, NoReturn, TypeGuard

import attrs
import cattrs
import numpy as np
import numpy.typing as npt

from pamlib._config import FieldError, Wording
from pamlib.results import Flag

if TYPE_CHECKING:
    from pamlib.tailoring.columns import ContextColumns
    from pamlib.tailoring.context import Context

Mask = npt.NDArray[np.bool_]

_TRANSITIONS = ("up", "down", "same", "none")


def _fold(text: str) -> str:
    return text.strip().casefold()


@attrs.frozen
class Range:
    """An inclusive range; an open end is ``None``."""

    min: float | None = None
    max: float | None = None

    def contains(self, value: float | None) -> bool:
        """:meth:`mask` of one value (``None`` is missing)."""
        return bool(self.mask(np.array([np.nan if value is None else value], np.float64))[0])

    def mask(self, values: npt.NDArray[np.float64]) -> Mask:
        out = ~np.isnan(values)
        if self.min is not None:
            out &= values >= self.min
        if self.max is not None:
            out &= values <= self.max
        return out

    def __str__(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min:g} to {self.max:g}"
        return f"≥ {self.min:g}" if self.min is not None else f"≤ {self.max:g}"


@attrs.frozen
class AttributeTest:
    """One attribute condition: any of ``values``, or (``present``) just whether it is set.

    A supplied value may hold several, separated by ``;`` (``COPD;CKD``); it matches when any
    of them is one of ``values``.
    """

    values: frozenset[str] | None = None
    present: bool | None = None

    def matches(self, value: str | None) -> bool:
        given = {_fold(v) for v in (value or "").split(";") if v.strip()}
        if self.present is not None:
            return bool(given) == self.present
        return bool(self.values is not None and given & self.values)


@attrs.frozen
class Conditions:
    """A conjunction of conditions; an empty one always holds."""

    level: frozenset[int] | None = None
    previous_level: frozenset[int] | None = None
    score: Range | None = None
    previous_score: Range | None = None
    change: Range | None = None
    transition: frozenset[str] | None = None
    scored: bool | None = None
    site: frozenset[str] | None = None
    instrument: frozenset[str] | None = None
    language: frozenset[str] | None = None
    flags: frozenset[str] | None = None
    attributes: tuple[tuple[str, AttributeTest], ...] = ()

    def matches(self, ctx: Context) -> bool:
        """Whether the conditions hold for one context: :meth:`mask` of a batch of one."""
        from pamlib.tailoring.columns import ContextColumns

        return bool(self.mask(ContextColumns.from_contexts([ctx]))[0])

    def mask(self, cols: ContextColumns) -> Mask:
        """Whether the conditions hold, for every row of ``cols`` at once."""
        from pamlib.tailoring.columns import by_unique

        out = np.ones(len(cols), dtype=np.bool_)
        if self.scored is not None:
            out &= cols.scored == self.scored
        if self.level is not None:
            out &= _one_of(cols.level, self.level)
        if self.previous_level is not None:
            out &= _one_of(cols.previous_level, self.previous_level)
        if self.score is not None:
            out &= self.score.mask(cols.score)
        if self.previous_score is not None:
            out &= self.previous_score.mask(cols.previous_score)
        if self.change is not None:
            out &= self.change.mask(cols.change)
        if self.transition is not None:
            out &= _one_of(cols.transition, self.transition)
        for name in ("site", "instrument", "language"):
            allowed: frozenset[str] | None = getattr(self, name)
            if allowed is not None:
                out &= _one_of(cols.folded(name), allowed)
        if self.flags is not None:
            wanted = self.flags
            any_flag = np.zeros(len(cols), dtype=np.bool_)
            for flag, column in cols.flags.items():
                if _fold(flag) in wanted:
                    any_flag |= column
            out &= any_flag
        for name, test in self.attributes:
            out &= by_unique(cols.attribute(name), test.matches)
        return out


def _one_of(values: npt.NDArray[Any], allowed: frozenset[Any]) -> Mask:
    """Rows whose value is one of ``allowed`` (a handful of values: one comparison each, which
    is what :func:`numpy.isin` does for so few, without its overhead on short columns)."""
    out = np.zeros(values.shape, dtype=np.bool_)
    for value in sorted(allowed):
        out |= values == value
    return out


# -- the ``when`` / ``unless`` table as written (see :mod:`pamlib.tailoring.rules`) ------------

_Levels = NewType("_Levels", frozenset[int])
_Texts = NewType("_Texts", frozenset[str])
_Transitions = NewType("_Transitions", frozenset[str])
_Flags = NewType("_Flags", frozenset[str])
_Boolean = NewType("_Boolean", bool)
_Attributes = NewType("_Attributes", tuple[tuple[str, AttributeTest], ...])
_Percent = NewType("_Percent", float)
_Difference = NewType("_Difference", float)
_FLAGS = tuple(str(f) for f in Flag)
_RANGE_MESSAGE = "must be a table with min and/or max, e.g. { min = 3 }"


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _min_above_max(raw: Mapping[str, Any]) -> list[FieldError]:
    low, high = raw.get("min"), raw.get("max")
    if not raw:
        return [FieldError("range", _RANGE_MESSAGE)]
    if _number(low) and _number(high) and low > high:
        return [FieldError("range", "min is greater than max")]
    return []


_RANGE_WORDING = Wording(
    ("range", _RANGE_MESSAGE),
    ("unknown-field", "unknown key {key!r}; a range has min and max"),
    check=_min_above_max,
)


@attrs.frozen(kw_only=True)
class _ScoreRange:
    wording: ClassVar = _RANGE_WORDING
    min: _Percent | None = None
    max: _Percent | None = None


@attrs.frozen(kw_only=True)
class _ChangeRange:
    wording: ClassVar = _RANGE_WORDING
    min: _Difference | None = None
    max: _Difference | None = None


@attrs.frozen(kw_only=True)
class WhenDoc:
    """A ``when`` or ``unless`` table as written; :meth:`conditions` is what it means."""

    wording: ClassVar = Wording(
        ("table", "must be a table of conditions"),
        (
            "unknown-field",
            "unknown condition {key!r}; known: "
            + ", ".join(f.name for f in attrs.fields(Conditions)),
        ),
    )
    level: _Levels | None = None
    previous_level: _Levels | None = None
    score: _ScoreRange | None = None
    previous_score: _ScoreRange | None = None
    change: _ChangeRange | None = None
    transition: _Transitions | None = None
    scored: _Boolean | None = None
    site: _Texts | None = None
    instrument: _Texts | None = None
    language: _Texts | None = None
    flags: _Flags | None = None
    attributes: _Attributes | None = None

    def conditions(self) -> Conditions:
        given = {k: v for k, v in attrs.asdict(self, recurse=False).items() if v is not None}
        for key in ("score", "previous_score", "change"):
            if key in given:
                given[key] = Range(given[key].min, given[key].max)
        return Conditions(**given)


def _refuse(code: str, message: str) -> NoReturn:
    raise FieldError(code, message)


def _levels(value: object, _: Any) -> frozenset[int]:
    items = _items(value)
    if not items or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4 for v in items
    ):
        _refuse("level", "must be a level 1–4 or a list of levels")
    return frozenset(v for v in items if isinstance(v, int))


def _texts(value: object, _: Any) -> frozenset[str]:
    items = _items(value)
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        _refuse("text", "must be a non-empty text or a list of them")
    return frozenset(_fold(v) for v in items if isinstance(v, str))


def _transitions(value: object, _: Any) -> frozenset[str]:
    items = _items(value)
    if not items or not all(isinstance(v, str) and v in _TRANSITIONS for v in items):
        _refuse("transition", f"must be one of {', '.join(_TRANSITIONS)} (or a list of them)")
    return frozenset(v for v in items if isinstance(v, str))


def _flags(value: object, _: Any) -> frozenset[str]:
    items = _items(value)
    if not items or not all(isinstance(v, str) and _fold(v) in _FLAGS for v in items):
        _refuse("flag", f"must be a flag ({', '.join(_FLAGS)}) or a list of flags")
    return frozenset(_fold(v) for v in items if isinstance(v, str))


def _boolean(value: object, _: Any) -> bool:
    if not isinstance(value, bool):
        _refuse("boolean", "must be true or false")
    return value


def _attribute_test(value: object, _: Any) -> AttributeTest:
    if isinstance(value, bool):
        return AttributeTest(present=value)
    try:
        return AttributeTest(values=_texts(value, _))
    except FieldError:
        _refuse("attribute", "must be a text, a list of texts, true or false")


def _bound(low: float, high: float) -> Callable[[object, Any], float]:
    def hook(value: object, _: Any) -> float:
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or math.isnan(value)
            or not low <= value <= high
        ):
            _refuse("number", f"must be a number from {low:g} to {high:g}")
        return float(value)

    return hook


def configure_conditions(conv: cattrs.Converter) -> None:
    """Teach a rule-file converter the conditions' conveniences (a value or a list of values)."""

    def attributes(value: object, _: Any) -> tuple[tuple[str, AttributeTest], ...]:
        if not isinstance(value, dict) or not value:
            _refuse("attributes", 'must be a table of attribute names, e.g. { condition = "COPD" }')
        tests = conv.structure(value, dict[str, AttributeTest])
        return tuple(sorted(tests.items()))

    conv.register_structure_hook(_Levels, _levels)
    conv.register_structure_hook(_Texts, _texts)
    conv.register_structure_hook(_Transitions, _transitions)
    conv.register_structure_hook(_Flags, _flags)
    conv.register_structure_hook(_Boolean, _boolean)
    conv.register_structure_hook(AttributeTest, _attribute_test)
    conv.register_structure_hook(_Attributes, attributes)
    conv.register_structure_hook(_Percent, _bound(0.0, 100.0))
    conv.register_structure_hook(_Difference, _bound(-100.0, 100.0))


#: Every condition a ``when`` or ``unless`` table may hold.
CONDITION_KEYS: tuple[str, ...] = tuple(f.name for f in attrs.fields(Conditions))


def conditions_as_text(conditions: Conditions) -> list[str]:
    """The conditions in words, for explanations and ``pamlib rules check``."""
    out: list[str] = []
    fields: Mapping[str, object] = attrs.asdict(conditions, recurse=False)
    for name, value in fields.items():
        if value is None or value == ():
            continue
        if name == "attributes":
            for attr, test in conditions.attributes:
                if test.present is not None:
                    out.append(f"{attr} {'is set' if test.present else 'is not set'}")
                else:
                    out.append(f"{attr} in {sorted(test.values or ())}")
        elif isinstance(value, frozenset):
            out.append(f"{name} in {sorted(value)}")
        else:
            out.append(f"{name} {value}")
    return out
