"""What a tailoring rule sees of one assessment.

A :class:`Context` is built either from objects (an :class:`~pamlib.assessment.Assessment`, its
:class:`~pamlib.results.ScoreResult` and optionally the previous result) or from one row of a
scored table as ``pamlib score`` writes it (every value a string; read as a table of one, by
the table's own checks). Both routes give equal contexts for the same facts, so a rule behaves
the same in a service and over a CSV export.

Scores are held *as reported*: rounded to one decimal, half away from zero — the same rounding
that decides the level — so a rule's ``score.max = 47.0`` agrees with level 1.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import attrs

from pamlib.errors import Problem, ValidationError
from pamlib.levels import ActivationLevel, round_half_away
from pamlib.results import SCORED_TABLE_COLUMNS

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.results import ScoreResult

__all__ = [
    "DEMO_CALIBRATION_PREFIX",
    "DEMO_PROVIDER",
    "STANDARD_COLUMNS",
    "Context",
    "Transition",
    "demo_evidence",
]

#: How the level moved since the previous assessment; ``none`` when there is nothing to compare.
Transition = Literal["up", "down", "same", "none"]

#: The columns ``pamlib score`` writes before any extra column, in order.
STANDARD_COLUMNS: tuple[str, ...] = SCORED_TABLE_COLUMNS

#: Extra columns with a meaning of their own; every other extra column is an attribute.
_CONTEXT_COLUMNS = frozenset({"site", "language", "reason", "reason_code"})
#: Extra columns never offered to rules: identifiers, and the columns tailoring itself writes.
_NOT_ATTRIBUTES = frozenset(
    {
        "nhs_number",
        "nhs_pseudonym",
        "patient_id",
        "mean_response",
        "recommended_pathways",
        "recommendation_rules",
        "reassess_by",
        "no_pathway_reason",
    }
)
_FLAG_SPLIT = re.compile(r"[;,|\s]+")

#: The built-in demonstration provider's id: its scores are never PAM scores.
DEMO_PROVIDER = "demo"
#: Synthetic demonstration calibrations are named ``synthetic-demo-<instrument>``.
DEMO_CALIBRATION_PREFIX = "synthetic-demo-"


def demo_evidence(
    demo: bool | None,
    flags: str | None = None,
    provider: str | None = None,
    calibration_id: str | None = None,
) -> tuple[bool, tuple[str, ...]]:
    """Whether one row holds demonstration scores, and the columns that contradict it.

    The one rule every reader of a scored table follows (reports, tailoring). A row holds
    demonstration scores when **any** of these says so: ``provider`` is ``demo``,
    ``calibration_id`` starts with ``synthetic-demo-``, ``flags`` contain ``demo``, or the
    ``demo`` column is true. ``demo`` is the column already read as a boolean (``None`` when
    the table has no such column or the cell is empty); the other arguments are the cells'
    text (``None`` when absent). A ``demo`` column saying *false* while another column says
    demo is a contradiction: the second value names the columns involved (``demo`` first), so
    the caller can refuse the row rather than publish demonstration scores unmarked.

    >>> demo_evidence(False, "demo;missing-items", "demo", "synthetic-demo-PAM-13")
    (True, ('demo', 'provider', 'calibration_id', 'flags'))
    >>> demo_evidence(None, "", "demo", "synthetic-demo-PAM-13")
    (True, ())
    >>> demo_evidence(False, "raw-only", "raw-sum", "")
    (False, ())
    """
    says: list[str] = []
    if provider is not None and provider.strip().casefold() == DEMO_PROVIDER:
        says.append("provider")
    if calibration_id is not None and calibration_id.strip().casefold().startswith(
        DEMO_CALIBRATION_PREFIX
    ):
        says.append("calibration_id")
    if flags and "demo" in _FLAG_SPLIT.split(flags.strip().casefold()):
        says.append("flags")
    if demo is False and says:
        return True, ("demo", *says)
    return bool(says) or demo is True, ()


def round_one(value: float) -> float:
    """:func:`~pamlib.levels.round_half_away` to one decimal: tailoring rounds as levels do."""
    return round_half_away(value, 1)


def reported(score: float | None) -> float | None:
    """``score`` as reported (one decimal, half away from zero); ``None`` stays ``None``."""
    if score is None or math.isnan(score):
        return None
    return round_one(score)


def _attributes(attributes: Mapping[str, str]) -> Mapping[str, str]:
    """Values stripped and blank ones left out, as a scored table's cells are read: a Python
    rule sees the same attributes whether the assessment came as objects or as a row."""
    given = ((str(k), str(v).strip()) for k, v in attributes.items())
    return MappingProxyType({k: v for k, v in given if v})


def _flagset(flags: Iterable[str]) -> frozenset[str]:
    """Flags as a table's ``flags`` cell is read: casefolded, split, blanks left out."""
    return frozenset(
        f for given in flags for f in _FLAG_SPLIT.split(str(given).strip().casefold()) if f
    )


def _stripped(value: str | None) -> str | None:
    """A text fact as a table's cell is read: stripped, ``None`` when blank."""
    return None if value is None else (str(value).strip() or None)


def _level(value: ActivationLevel | int | None) -> ActivationLevel | None:
    return None if value is None else ActivationLevel(value)


@attrs.frozen(repr=False)
class Context:
    """The facts about one assessment that rules may test.

    ``flags`` holds every validity and provenance flag as text, ``demo`` included when the
    result came from a synthetic calibration. ``attributes`` are what the integrator supplied
    (condition, interpreter, accessibility needs, age band …).

    Facts are held as a scored table's row is read, so a Python rule sees the same context
    from objects and from a row: texts stripped (blank is ``None``), attribute values stripped
    (blank ones left out), flags casefolded. A context that contradicts itself — not scored
    yet with a score or a level, a score outside 0–100 — is a
    :class:`~pamlib.errors.ValidationError` naming the field, never its value.

    The repr never shows the assessment id, an attribute's value (a pass-through column may
    hold a name or a date of birth) or the not-scored reason's text: attribute *names* only.

    >>> context = Context("A1", level=2, attributes={"name": "Ann", "condition": "COPD"})
    >>> text = repr(context)
    >>> "A1" in text, "Ann" in text, "attributes=['condition', 'name']" in text
    (False, False, True)
    """

    assessment_id: str
    scored: bool = True
    score: float | None = attrs.field(default=None, converter=reported)
    level: ActivationLevel | None = attrs.field(default=None, converter=_level)
    previous_score: float | None = attrs.field(default=None, converter=reported)
    previous_level: ActivationLevel | None = attrs.field(default=None, converter=_level)
    assessed_on: dt.date | None = None
    instrument: str | None = attrs.field(default=None, converter=_stripped)
    site: str | None = attrs.field(default=None, converter=_stripped)
    language: str | None = attrs.field(default=None, converter=_stripped)
    flags: frozenset[str] = attrs.field(factory=frozenset, converter=_flagset)
    attributes: Mapping[str, str] = attrs.field(factory=dict, converter=_attributes)
    cutpoint_set: str | None = attrs.field(default=None, converter=_stripped)
    #: Why the assessment was not scored, in words (for "no pathway" explanations).
    not_scored_reason: str | None = attrs.field(default=None, converter=_stripped)

    def __attrs_post_init__(self) -> None:
        # A contradiction here would be tailored as if it were true: an unscored assessment
        # given a level, or a score no 0–100 scale holds, would choose a pathway.
        problems = []
        if not self.scored and (self.score is not None or self.level is not None):
            message = "an assessment that was not scored has no score or level"
            problems.append(Problem("context: scored", "not-scored", message))
        for name in ("score", "previous_score"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 100.0:
                message = "a score is a number from 0 to 100 (as reported, one decimal)"
                problems.append(Problem(f"context: {name}", "bad-score", message))
        if problems:
            raise ValidationError("not a context tailoring can use", problems)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (and copied) as its fields: a read-only mapping does not pickle, and a
        context may go to a process pool with the rule that tests it."""
        values = [getattr(self, f.name) for f in attrs.fields(Context)]
        return (Context, tuple(dict(v) if v is self.attributes else v for v in values))

    def __repr__(self) -> str:
        level = None if self.level is None else int(self.level)
        previous_level = None if self.previous_level is None else int(self.previous_level)
        reason = None if self.not_scored_reason is None else "(given)"
        return (
            f"Context(scored={self.scored}, score={self.score!r}, level={level!r}, "
            f"previous_score={self.previous_score!r}, previous_level={previous_level!r}, "
            f"assessed_on={self.assessed_on!r}, instrument={self.instrument!r}, "
            f"site={self.site!r}, language={self.language!r}, flags={sorted(self.flags)!r}, "
            f"attributes={sorted(self.attributes)!r}, cutpoint_set={self.cutpoint_set!r}, "
            f"not_scored_reason={reason})"
        )

    @property
    def change(self) -> float | None:
        """Score change since the previous assessment, as reported; ``None`` without both."""
        if self.score is None or self.previous_score is None:
            return None
        return round_one(self.score - self.previous_score)

    @property
    def transition(self) -> Transition:
        """``up``, ``down`` or ``same`` level since the previous assessment, else ``none``."""
        if self.level is None or self.previous_level is None:
            return "none"
        if self.level > self.previous_level:
            return "up"
        return "down" if self.level < self.previous_level else "same"

    def describe(self) -> str:
        """One line for people: level, score and change (never an identifier but the id)."""
        if not self.scored:
            return f"not scored ({self.not_scored_reason or 'no reason given'})"
        parts = [f"level {int(self.level)}" if self.level else "no level"]
        if self.score is not None:
            parts.append(f"score {self.score:.1f}")
        if self.previous_score is not None or self.previous_level is not None:
            before = []
            if self.previous_score is not None:
                before.append(f"{self.previous_score:.1f}")
            if self.previous_level is not None:
                before.append(f"level {int(self.previous_level)}")
            change = self.change
            delta = "" if change is None else f", change {change:+.1f}"
            parts.append(f"previously {' '.join(before)}{delta}, transition {self.transition}")
        return ", ".join(parts)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def of(
        cls,
        assessment: Assessment,
        result: ScoreResult,
        previous: ScoreResult | None = None,
    ) -> Context:
        """The context of a scored (or unscored) assessment, optionally with the result of the
        patient's previous assessment for change and transition conditions.

        A previous level of another cut-point set than this result's level is left out, as a
        table leaves it out (:meth:`from_row`): bands of two sets are not comparable, so there
        is no transition; the previous score (one 0-100 scale) stays."""
        flags = {str(f) for f in result.flags}
        if result.demo:
            flags.add("demo")
        prev_scored = previous is not None and previous.scored
        level = result.level if result.scored else None
        previous_level = previous.level if previous is not None and prev_scored else None
        if level and previous is not None and _set_id(result) != _set_id(previous):
            previous_level = None
        return cls(
            assessment_id=assessment.id,
            scored=result.scored,
            score=result.score if result.scored else None,
            level=level,
            previous_score=previous.score if previous is not None and prev_scored else None,
            previous_level=previous_level,
            assessed_on=assessment.assessed_on,
            instrument=assessment.instrument.id,
            site=assessment.site,
            language=assessment.language,
            flags=flags,
            attributes=assessment.attributes,
            cutpoint_set=result.cutpoint_set,
            not_scored_reason=None
            if result.scored
            else (_text(result.reason) or _text(result.reason_code)),
        )

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, str],
        previous: Mapping[str, str] | None = None,
        *,
        where: str = "scored row",
    ) -> Context:
        """The context of one row of a scored table (values are strings, as in a CSV file).

        A batch of one: the row is checked and read as every scored table is
        (:meth:`ContextColumns.from_row <pamlib.tailoring.columns.ContextColumns.from_row>`),
        so it needs what a table's row needs (a patient key, an ISO date, a status of
        ``scored`` or ``not-scored``) and a bad row gets the table's problems, located
        ``where: row 1``, never quoting a value. Columns: the :data:`STANDARD_COLUMNS`, then
        optional ``site`` and ``language``; any other extra column is an attribute (empty
        cells are left out; identifier columns such as ``nhs_number`` never are attributes).
        ``previous`` is the patient's previous row: the same patient key, dated no later, another
        assessment id, or a :class:`~pamlib.errors.ValidationError` (naming no identifier).
        """
        from pamlib.tailoring.columns import ContextColumns

        return ContextColumns.from_row(row, previous, where=where).context(0)


def _set_id(result: ScoreResult) -> str:
    """The cut-point set of a result's level as a table row holds it (stripped, ``""`` for
    none), so objects and rows compare sets alike."""
    return (result.cutpoint_set or "").strip() if result.level else ""


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def parse_date(value: str | None) -> dt.date | None:
    """An ISO date (``2025-03-01``; a time part is ignored, as written), or ``None`` for an
    empty cell. Anything after the date must be an ISO time (``2025-03-01garbage`` is no date:
    ``ValueError``)."""
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 10:
        dt.datetime.fromisoformat(text)  # the whole of it, or a ValueError
    return dt.date.fromisoformat(text[:10])
