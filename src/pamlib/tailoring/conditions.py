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
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.errors import Problem
from pamlib.results import Flag
from pamlib.tailoring.context import Context

if TYPE_CHECKING:
    from pamlib.tailoring.columns import ContextColumns

Mask = npt.NDArray[np.bool_]

__all__ = [
    "CONDITION_KEYS",
    "AttributeTest",
    "Conditions",
    "Range",
    "conditions_as_text",
    "parse_conditions",
]

_TRANSITIONS = ("up", "down", "same", "none")


def _fold(text: str) -> str:
    return text.strip().casefold()


@attrs.frozen
class Range:
    """An inclusive range; an open end is ``None``."""

    min: float | None = None
    max: float | None = None

    def contains(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)

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
        if self.scored is not None and ctx.scored != self.scored:
            return False
        if self.level is not None and (ctx.level is None or int(ctx.level) not in self.level):
            return False
        if self.previous_level is not None and (
            ctx.previous_level is None or int(ctx.previous_level) not in self.previous_level
        ):
            return False
        if self.score is not None and not self.score.contains(ctx.score):
            return False
        if self.previous_score is not None and not self.previous_score.contains(ctx.previous_score):
            return False
        if self.change is not None and not self.change.contains(ctx.change):
            return False
        if self.transition is not None and ctx.transition not in self.transition:
            return False
        if not _text_in(self.site, ctx.site):
            return False
        if not _text_in(self.instrument, ctx.instrument):
            return False
        if not _text_in(self.language, ctx.language):
            return False
        if self.flags is not None and not self.flags & {_fold(f) for f in ctx.flags}:
            return False
        return all(test.matches(_attribute(ctx, name)) for name, test in self.attributes)

    def mask(self, cols: ContextColumns) -> Mask:
        """:meth:`matches` for every row of ``cols`` at once."""
        from pamlib.tailoring.columns import by_unique

        out = np.ones(len(cols), dtype=np.bool_)
        if self.scored is not None:
            out &= cols.scored == self.scored
        if self.level is not None:
            out &= np.isin(cols.level, sorted(self.level))
        if self.previous_level is not None:
            out &= np.isin(cols.previous_level, sorted(self.previous_level))
        if self.score is not None:
            out &= self.score.mask(cols.score)
        if self.previous_score is not None:
            out &= self.previous_score.mask(cols.previous_score)
        if self.change is not None:
            out &= self.change.mask(cols.change)
        if self.transition is not None:
            out &= np.isin(cols.transition, sorted(self.transition))
        for name in ("site", "instrument", "language"):
            allowed: frozenset[str] | None = getattr(self, name)
            if allowed is not None:
                out &= np.isin(cols.folded(name), sorted(allowed))
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


def _text_in(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and _fold(value) in allowed)


def _attribute(ctx: Context, name: str) -> str | None:
    value = ctx.attributes.get(name)
    if value is None:
        folded = _fold(name)
        for key, candidate in ctx.attributes.items():
            if _fold(key) == folded:
                return candidate
    return value


# -- parsing ---------------------------------------------------------------------------------

Where = Callable[[str], str]
_Parser = Callable[[object, str, Where, list[Problem]], Any]


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def _texts(value: object, field: str, where: Where, problems: list[Problem]) -> Any:
    items = _items(value)
    texts = [v for v in items if isinstance(v, str) and v.strip()]
    if not items or len(texts) != len(items):
        problems.append(Problem(where(field), "text", "must be a non-empty text or a list of them"))
        return None
    return frozenset(_fold(v) for v in texts)


def _levels(value: object, field: str, where: Where, problems: list[Problem]) -> Any:
    items = _items(value)
    levels = [v for v in items if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4]
    if not items or len(levels) != len(items):
        problems.append(Problem(where(field), "level", "must be a level 1–4 or a list of levels"))
        return None
    return frozenset(levels)


def _range(low: float, high: float) -> _Parser:
    def parse(value: object, field: str, where: Where, problems: list[Problem]) -> Any:
        if not isinstance(value, dict) or not value:
            message = "must be a table with min and/or max, e.g. { min = 3 }"
            problems.append(Problem(where(field), "range", message))
            return None
        bounds: dict[str, float] = {}
        for key, bound in value.items():
            if key not in ("min", "max"):
                message = f"unknown key {key!r}; a range has min and max"
                problems.append(Problem(where(f"{field}.{key}"), "unknown-field", message))
            elif (
                not isinstance(bound, int | float)
                or isinstance(bound, bool)
                or math.isnan(bound)
                or not low <= bound <= high
            ):
                message = f"must be a number from {low:g} to {high:g}"
                problems.append(Problem(where(f"{field}.{key}"), "number", message))
            else:
                bounds[key] = float(bound)
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            problems.append(Problem(where(field), "range", "min is greater than max"))
            return None
        if len(bounds) != len(value):
            return None
        return Range(bounds.get("min"), bounds.get("max"))

    return parse


def _transitions(value: object, field: str, where: Where, problems: list[Problem]) -> Any:
    items = _items(value)
    if not items or not all(isinstance(v, str) and v in _TRANSITIONS for v in items):
        message = f"must be one of {', '.join(_TRANSITIONS)} (or a list of them)"
        problems.append(Problem(where(field), "transition", message))
        return None
    return frozenset(items)


def _boolean(value: object, field: str, where: Where, problems: list[Problem]) -> Any:
    if not isinstance(value, bool):
        problems.append(Problem(where(field), "boolean", "must be true or false"))
        return None
    return value


_FLAGS = tuple(str(f) for f in Flag)


def _flags(value: object, field: str, where: Where, problems: list[Problem]) -> Any:
    items = _items(value)
    if not items or not all(isinstance(v, str) and _fold(v) in _FLAGS for v in items):
        message = f"must be a flag ({', '.join(_FLAGS)}) or a list of flags"
        problems.append(Problem(where(field), "flag", message))
        return None
    return frozenset(_fold(v) for v in items if isinstance(v, str))


def _attributes(value: object, field: str, where: Where, problems: list[Problem]) -> Any:
    if not isinstance(value, dict) or not value:
        message = 'must be a table of attribute names, e.g. { condition = "COPD" }'
        problems.append(Problem(where(field), "attributes", message))
        return None
    tests: list[tuple[str, AttributeTest]] = []
    for name, wanted in sorted(value.items()):
        key = f"{field}.{name}"
        if isinstance(wanted, bool):
            tests.append((name, AttributeTest(present=wanted)))
            continue
        values = _texts(wanted, key, where, problems)
        if values is None:
            problems[-1] = Problem(
                where(key), "attribute", "must be a text, a list of texts, true or false"
            )
            continue
        tests.append((name, AttributeTest(values=values)))
    return tuple(tests) if len(tests) == len(value) else None


_PARSERS: dict[str, _Parser] = {
    "level": _levels,
    "previous_level": _levels,
    "score": _range(0.0, 100.0),
    "previous_score": _range(0.0, 100.0),
    "change": _range(-100.0, 100.0),
    "transition": _transitions,
    "scored": _boolean,
    "site": _texts,
    "instrument": _texts,
    "language": _texts,
    "flags": _flags,
    "attributes": _attributes,
}

#: Every condition a ``when`` or ``unless`` table may hold.
CONDITION_KEYS: tuple[str, ...] = tuple(_PARSERS)


def parse_conditions(
    table: object, field: str, where: Where, problems: list[Problem]
) -> Conditions | None:
    """Read a ``when``/``unless`` table, appending a :class:`Problem` for each fault."""
    if not isinstance(table, dict):
        problems.append(Problem(where(field), "table", "must be a table of conditions"))
        return None
    values: dict[str, Any] = {}
    before = len(problems)
    for key, value in table.items():
        parser = _PARSERS.get(key)
        if parser is None:
            message = f"unknown condition {key!r}; known: {', '.join(CONDITION_KEYS)}"
            problems.append(Problem(where(f"{field}.{key}"), "unknown-field", message))
            continue
        values[key] = parser(value, f"{field}.{key}", where, problems)
    if len(problems) > before:
        return None
    return Conditions(**values)


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
