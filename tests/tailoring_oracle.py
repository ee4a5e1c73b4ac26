"""Tailoring conditions evaluated the plain way, one context at a time: the oracle for the
columnar evaluation (:meth:`Conditions.mask <pamlib.tailoring._conditions.Conditions.mask>`),
which is the library's only implementation. Written from the documented meaning of each
condition, not from the library's code.
"""

from __future__ import annotations

from collections.abc import Sequence

from pamlib.tailoring._conditions import AttributeTest, Conditions, Range
from pamlib.tailoring.context import Context
from pamlib.tailoring.rules import Action, FileRule, Rule


def _fold(text: str) -> str:
    return text.strip().casefold()


def _in_range(limits: Range, value: float | None) -> bool:
    if value is None:
        return False
    if limits.min is not None and value < limits.min:
        return False
    return not (limits.max is not None and value > limits.max)


def _attribute_holds(test: AttributeTest, value: str | None) -> bool:
    given = {_fold(v) for v in (value or "").split(";") if v.strip()}
    if test.present is not None:
        return bool(given) == test.present
    return bool(test.values is not None and given & test.values)


def _text_in(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and _fold(value) in allowed)


def _attribute(ctx: Context, name: str) -> str | None:
    value = ctx.attributes.get(name)
    if value is None:
        for key, candidate in ctx.attributes.items():
            if _fold(key) == _fold(name):
                return candidate
    return value


def holds(conditions: Conditions, ctx: Context) -> bool:
    """Every condition holds (AND); a condition on something ``ctx`` lacks does not."""
    c = conditions
    checks = [
        c.scored is None or ctx.scored == c.scored,
        c.level is None or (ctx.level is not None and int(ctx.level) in c.level),
        c.previous_level is None
        or (ctx.previous_level is not None and int(ctx.previous_level) in c.previous_level),
        c.score is None or _in_range(c.score, ctx.score),
        c.previous_score is None or _in_range(c.previous_score, ctx.previous_score),
        c.change is None or _in_range(c.change, ctx.change),
        c.transition is None or ctx.transition in c.transition,
        _text_in(c.site, ctx.site),
        _text_in(c.instrument, ctx.instrument),
        _text_in(c.language, ctx.language),
        c.flags is None or bool(c.flags & {_fold(f) for f in ctx.flags}),
        *(_attribute_holds(test, _attribute(ctx, name)) for name, test in c.attributes),
    ]
    return all(checks)


def actions_of(rule: Rule, ctx: Context) -> Sequence[Action] | None:
    """What ``rule`` asks for ``ctx``: a file rule by :func:`holds`, any other by itself."""
    if isinstance(rule, FileRule):
        if not holds(rule.when, ctx) or (rule.unless is not None and holds(rule.unless, ctx)):
            return None
        return rule.then
    return rule.evaluate(ctx)
