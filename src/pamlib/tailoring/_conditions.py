"""The conditions a rule file's ``when`` and ``unless`` tables may state, and how they match.

Every condition in a table must hold (AND); a condition given a list holds when any listed value
does (OR). Text compares ignoring case and surrounding spaces. A condition on something the
assessment does not have — a level when it was not scored, a change when there is no previous
score — does not hold. Conditions are data, never code: there is nothing to evaluate but
comparisons.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
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
        """Which ``values`` lie in the range (NaN is missing: never)."""
        return _within(values, *self.limits())

    def limits(self) -> tuple[float, float]:
        """The bounds, an open end infinite."""
        return (
            -math.inf if self.min is None else self.min,
            math.inf if self.max is None else self.max,
        )

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
        """Whether the conditions hold, for every row of ``cols`` at once: a
        :class:`ConditionPlan` of these conditions alone."""
        mask: Mask = _plan_of(self).masks(cols)[0]
        return mask


@functools.lru_cache(maxsize=256)
def _plan_of(conditions: Conditions) -> ConditionPlan:
    return ConditionPlan.of([conditions])


_STATE_FIELDS = ("scored", "level", "previous_level", "transition")


def _transition(level: int, previous: int) -> str:
    if not (level and previous):
        return "none"
    return "up" if level > previous else "down" if level < previous else "same"


def _state_codes(cols: ContextColumns) -> npt.NDArray[np.intp]:
    """Each row's (scored, level, previous level) as one code, ``scored * 25 + level * 5 +
    previous level`` (levels 0, for none, to 4): what the state look-up is indexed by."""
    code = cols.level.astype(np.intp) * 5 + cols.previous_level
    code += cols.scored * 25
    return code


def _state_lookup(conditions: Sequence[Conditions]) -> Mask | None:
    """Every condition on the four state fields, as a table over the 50 :func:`_state_codes`."""
    stated = [
        j for j, c in enumerate(conditions) if any(getattr(c, f) is not None for f in _STATE_FIELDS)
    ]
    if not stated:
        return None
    # every condition has a row (True where it states none of the four), so the look-up is
    # the first term of the conjunction: no scatter into the result
    table = np.ones((len(conditions), 50), dtype=np.bool_)
    for j in stated:
        c = conditions[j]
        for scored, level, previous in itertools.product((0, 1), range(5), range(5)):
            table[j, scored * 25 + level * 5 + previous] = (
                (c.scored is None or c.scored == bool(scored))
                and (c.level is None or level in c.level)
                and (c.previous_level is None or previous in c.previous_level)
                and (c.transition is None or _transition(level, previous) in c.transition)
            )
    return table


_TEXT_FIELDS = ("site", "instrument", "language")
_RANGE_FIELDS = ("score", "previous_score", "change")


def _within(values: npt.NDArray[np.float64], low: Any, high: Any) -> Mask:
    """``low <= values <= high`` (broadcast): NaN never is."""
    out: Mask = (values >= low) & (values <= high)
    return out


def _positions(values: list[Any]) -> npt.NDArray[np.intp]:
    return np.array([j for j, v in enumerate(values) if v is not None], dtype=np.intp)


@attrs.frozen(eq=False)
class _Lookup:
    """One condition kind over the conditions that state it (``rows``): ``table[k, code]``
    is whether the ``k``-th of them holds for a row whose value has that code."""

    rows: npt.NDArray[np.intp]
    table: Mask


@attrs.frozen(eq=False)
class _Bounds:
    """A range condition over the conditions that state it: inclusive ``low``/``high``
    columns (open ends infinite), so one comparison of each row against all of them."""

    rows: npt.NDArray[np.intp]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]


@attrs.frozen(eq=False)
class ConditionPlan:
    """Many conditions compiled once to be evaluated together over columns.

    An engine evaluates every rule's ``when`` and ``unless`` at once: each kind of condition is
    one table look-up or one comparison over all the conditions that state it, instead of a
    few NumPy calls per condition — what one assessment (a batch of one) would otherwise pay
    for each rule. :meth:`Conditions.mask` is a plan of one.
    """

    size: int
    #: ``scored``, ``level``, ``previous_level`` and ``transition`` together: all four are
    #: functions of a row's :func:`_state_codes`, so one table (a row per condition, a column
    #: per code) answers them.
    state: Mask | None
    bounds: tuple[tuple[str, _Bounds], ...]
    texts: tuple[tuple[str, dict[str, int], _Lookup], ...]
    flags: tuple[dict[str, int], _Lookup] | None
    #: Per attribute name: its tests with the conditions stating each, and the conditions
    #: that fail when no row has the attribute at all.
    attributes: tuple[
        tuple[str, tuple[tuple[AttributeTest, npt.NDArray[np.intp]], ...], npt.NDArray[np.intp]],
        ...,
    ]

    @classmethod
    def of(cls, conditions: Sequence[Conditions]) -> ConditionPlan:
        state = _state_lookup(conditions)
        bounds: list[tuple[str, _Bounds]] = []
        for name in _RANGE_FIELDS:
            ranges: list[Range | None] = [getattr(c, name) for c in conditions]
            rows = _positions(ranges)
            if len(rows):
                limits = np.array([r.limits() for r in ranges if r is not None], np.float64)
                bounds.append((name, _Bounds(rows, limits[:, :1], limits[:, 1:])))
        texts = []
        for name in (*_TEXT_FIELDS, "flags"):
            allowed: list[frozenset[str] | None] = [getattr(c, name) for c in conditions]
            rows = _positions(allowed)
            if not len(rows):
                continue
            vocabulary = {v: i for i, v in enumerate(sorted(set().union(*filter(None, allowed))))}
            # the last code: a value no condition names
            table = np.zeros((len(rows), len(vocabulary) + 1), dtype=np.bool_)
            for k, j in enumerate(rows.tolist()):
                for value in allowed[j] or ():
                    table[k, vocabulary[value]] = True
            texts.append((name, vocabulary, _Lookup(rows, table)))
        flags = None
        if texts and texts[-1][0] == "flags":
            _, vocabulary, lookup = texts.pop()
            flags = (vocabulary, lookup)
        tests: dict[tuple[str, AttributeTest], list[int]] = {}
        for j, c in enumerate(conditions):
            for key in c.attributes:
                tests.setdefault(key, []).append(j)
        return cls(
            size=len(conditions),
            state=state,
            bounds=tuple(bounds),
            texts=tuple(texts),
            flags=flags,
            attributes=tuple(
                (
                    name,
                    tuple(
                        (test, np.array(rows, dtype=np.intp))
                        for (named, test), rows in tests.items()
                        if named == name
                    ),
                    np.array(
                        [
                            j
                            for (named, test), rows in tests.items()
                            if named == name and not test.matches(None)
                            for j in rows
                        ],
                        dtype=np.intp,
                    ),
                )
                for name in dict.fromkeys(name for name, _ in tests)
            ),
        )

    def masks(self, cols: ContextColumns) -> npt.NDArray[np.bool_]:
        """Whether each condition holds for each row: shape ``(conditions, rows)``. Text is
        looked at once per distinct value (:class:`~pamlib.tailoring.columns.TextCodes`)."""
        if self.state is not None:
            out: npt.NDArray[np.bool_] = self.state[:, _state_codes(cols)]
        else:
            out = np.ones((self.size, len(cols)), dtype=np.bool_)
        for name, bounds in self.bounds:
            values = getattr(cols, name)
            out[bounds.rows] &= _within(values, bounds.low, bounds.high)
        for name, vocabulary, lookup in self.texts:
            text = cols.coded(name)
            other = len(vocabulary)
            found = [vocabulary.get(_fold(v), other) for v in text.values.tolist()]
            out[lookup.rows] &= lookup.table[:, found or [other]][:, text.codes]
        if self.flags is not None and not cols.flags:  # no row has a flag: none can match
            out[self.flags[1].rows] = False
        elif self.flags is not None:
            vocabulary, lookup = self.flags
            any_flag = np.zeros((len(lookup.rows), len(cols)), dtype=np.bool_)
            for flag, column in cols.flags.items():
                code = vocabulary.get(_fold(flag))
                if code is not None:
                    any_flag |= lookup.table[:, code, np.newaxis] & column
            out[lookup.rows] &= any_flag
        for name, tests, absent_fails in self.attributes:
            given = cols.find_attribute_codes(name)
            if given is None:  # no row has it: one answer for every row, known in advance
                if len(absent_fails):
                    out[absent_fails] = False
                continue
            distinct = given.values.tolist()
            for test, rows in tests:
                out[rows] &= given.spread([test.matches(v) for v in distinct], np.bool_)
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


def _states_a_condition(raw: Mapping[str, Any]) -> list[FieldError]:
    if raw:
        return []
    message = "an empty unless always holds, so the rule would never apply: state a condition"
    return [FieldError("empty", message)]


@attrs.frozen(kw_only=True)
class UnlessDoc(WhenDoc):
    """An ``unless`` table: a ``when`` table that states at least one condition. An empty
    ``when`` always holds, which is what leaving it out means; an empty ``unless`` would hold
    too, and silently switch its rule off."""

    wording: ClassVar = attrs.evolve(WhenDoc.wording, check=_states_a_condition)


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
        return float(value) + 0.0  # -0.0 is 0: the same bound, and shown as "0", not "-0"

    return hook


def configure_conditions(conv: cattrs.Converter) -> None:
    """Teach a rule-file converter the conditions' conveniences (a value or a list of values)."""

    def attributes(value: object, _: Any) -> tuple[tuple[str, AttributeTest], ...]:
        if not isinstance(value, dict) or not value:
            _refuse("attributes", 'must be a table of attribute names, e.g. { condition = "COPD" }')
        if any(not name.strip() for name in value):  # attribute names are compared stripped
            _refuse("attributes", "an attribute name cannot be empty: no attribute would match it")
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
