"""Intervention pathways and the recommendations tailoring rules make from a score.

NHS supported self-management offers health coaching, self-management education and peer
support. Which a person is offered, how intensively, and when they are reassessed depends on
their activation level and circumstances; every recommendation keeps the trace of rules that
produced, changed or suppressed it, so it can be explained.
"""

from __future__ import annotations

import datetime as dt

import attrs

from pamlib.identity import shown_id

__all__ = [
    "Coding",
    "Pathway",
    "Recommendation",
    "RuleTrace",
    "TailoringOutcome",
]


@attrs.frozen
class Coding:
    """A coded concept (system, code, display); configurable, never assumed."""

    system: str
    code: str
    display: str | None = None


@attrs.frozen
class Pathway:
    """A kind of support a site can offer (e.g. ``health-coaching``)."""

    id: str
    name: str
    description: str = ""
    concept: Coding | None = None


@attrs.frozen
class RuleTrace:
    """One rule's part in a recommendation: which rule, what it did, and why.

    ``action`` is ``recommend``, ``suppress``, ``intensity``, ``contact-frequency``, ``note`` or
    ``reassess``; ``pathway`` the pathway it concerns (``*`` for every pathway) and ``value``
    what it set. ``overridden_by`` names the rule whose action won instead; ``None`` means this
    action took effect.
    """

    rule_id: str
    action: str
    reason: str
    pathway: str | None = None
    value: str | None = None
    priority: int = 0
    overridden_by: str | None = None

    @property
    def applied(self) -> bool:
        return self.overridden_by is None


@attrs.frozen
class Recommendation:
    """A pathway recommended for one assessment, with its settings and its explanation."""

    pathway: str
    intensity: str | None = None
    contact_frequency: str | None = None
    notes: tuple[str, ...] = ()
    trace: tuple[RuleTrace, ...] = ()


@attrs.frozen
class TailoringOutcome:
    """Everything tailoring decided for one assessment.

    An outcome with no recommendations always carries ``no_pathway_reason`` — silence is never
    an answer.
    """

    assessment_id: str = attrs.field(repr=shown_id)
    recommendations: tuple[Recommendation, ...] = ()
    suppressed: tuple[Recommendation, ...] = ()
    reassess_by: dt.date | None = None
    notes: tuple[str, ...] = ()
    trace: tuple[RuleTrace, ...] = ()
    no_pathway_reason: str | None = None
