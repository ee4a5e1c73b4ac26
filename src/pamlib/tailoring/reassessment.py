"""When each person should be reassessed, and who in a cohort is overdue.

No NHS reassessment interval is published, so the interval is configuration: by default a
person is due **6 months** after an assessment, and a rule may set another interval. The
follow-up *window* of change measures such as "Gains in PAM Scores at 12 Months" (NQF #2483,
CMS MIPS #503) runs **6 to 12 months** after the baseline; a reassessment outside it still
happens, but does not count for such a measure — explanations and the overdue list say so.

Months are **calendar months, clamped to the month's end**: 31 August + 6 months is 28 (or 29)
February, and 28 February + 6 months is 28 August.
"""

from __future__ import annotations

import datetime as dt
import numbers
import operator
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

import attrs

from pamlib._months import add_months
from pamlib.errors import ConfigurationError, Problem, ValidationError
from pamlib.identity import normalise_nhs_number, shown_id
from pamlib.tailoring.context import parse_date

if TYPE_CHECKING:
    from pamlib.tables.scored import ScoredTable

__all__ = [
    "DueStatus",
    "PatientDue",
    "ReassessmentPolicy",
    "add_months",
    "due_from_rows",
    "due_from_table",
    "overdue",
    "reassessment_status",
]


def _whole_months(value: object, what: str) -> int:
    """``value`` as a number of months a rule could also set (a whole number, not a bool, from 1
    to :data:`~pamlib.tailoring.rules.MAX_REASSESS_MONTHS`): checked when the policy is made,
    so a fraction, a string or a date past 9999 never reaches an evaluation."""
    # imported here: reading due dates needs neither the rules module nor cattrs
    from pamlib.tailoring.rules import MAX_REASSESS_MONTHS

    months = 0
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        months = operator.index(value)  # NumPy's integers too, as Python ints
    if not 1 <= months <= MAX_REASSESS_MONTHS:
        raise ConfigurationError(
            f"{what} must be a whole number of months from 1 to {MAX_REASSESS_MONTHS}"
        )
    return months


def _interval(value: int) -> int:
    return _whole_months(value, "interval_months")


def _window(value: tuple[int, int]) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigurationError("window_months is a pair of months: (opens, closes)")
    low = _whole_months(value[0], "the follow-up window's opening")
    high = _whole_months(value[1], "the follow-up window's closing")
    if low > high:
        raise ConfigurationError("the follow-up window needs opens <= closes (months)")
    return (low, high)


@attrs.frozen
class ReassessmentPolicy:
    """The default interval and the follow-up window, in calendar months: each a whole number
    from 1 to :data:`~pamlib.tailoring.rules.MAX_REASSESS_MONTHS`, as a rule's interval is;
    anything else is a :class:`~pamlib.errors.ConfigurationError` here."""

    interval_months: int = attrs.field(default=6, converter=_interval)
    window_months: tuple[int, int] = attrs.field(default=(6, 12), converter=_window)

    def due(self, assessed_on: dt.date, months: int | None = None) -> dt.date:
        """The date reassessment is due, ``months`` (default interval) after ``assessed_on``.

        ``months`` is checked as the interval is (a whole number from 1 to 36, else a
        :class:`~pamlib.errors.ConfigurationError`): never a due date on or before the
        assessment. A due date after 9999-12-31 is a :class:`~pamlib.errors.ValidationError`
        (tailoring gives such an assessment no date).
        """
        step = self.interval_months if months is None else _interval(months)
        try:
            return add_months(assessed_on, step)
        except (ValueError, OverflowError):  # the step is checked: only the year can be out
            raise ValidationError(
                "no reassessment date",
                [Problem("assessed_on", "date", "the due date would be after 9999-12-31")],
            ) from None

    def window(self, assessed_on: dt.date) -> tuple[dt.date, dt.date]:
        """The first and last day of the follow-up window after ``assessed_on``; a day after
        9999-12-31 (an assessment dated in the year 9999) is 9999-12-31, the last date there
        is."""

        def after(months: int) -> dt.date:
            if assessed_on.year * 12 + assessed_on.month - 1 + months >= (dt.MAXYEAR + 1) * 12:
                return dt.date.max
            return add_months(assessed_on, months)

        return after(self.window_months[0]), after(self.window_months[1])

    def in_window(self, months: int) -> bool:
        return self.window_months[0] <= months <= self.window_months[1]


#: ``overdue``: the due date has passed; ``due-soon``: due within the look-ahead;
#: ``not-due``: later; ``no-date``: no assessment of this patient has a due date.
DueStatus = Literal["overdue", "due-soon", "not-due", "no-date"]


@attrs.frozen
class PatientDue:
    """One patient's reassessment status on a reference date.

    ``patient_id`` is kept out of the repr (patient identifiers never reach logs).
    ``window_closes`` is the last day of the follow-up window after the latest assessment.
    """

    patient_id: str = attrs.field(repr=False)
    status: DueStatus
    #: shown without an NHS number an exporter built into it
    assessment_id: str | None = attrs.field(default=None, repr=shown_id)
    assessed_on: dt.date | None = None
    reassess_by: dt.date | None = None
    window_closes: dt.date | None = None
    days_overdue: int = 0
    #: Past the follow-up window on the reference date: a reassessment now no longer counts
    #: for a 6–12 month change measure.
    window_missed: bool = False


@attrs.frozen
class _Entry:
    patient_id: str = attrs.field(repr=False)
    assessment_id: str
    assessed_on: dt.date
    reassess_by: dt.date
    order: int


def reassessment_status(
    entries: Iterable[tuple[str, str, dt.date, dt.date | None]],
    on: dt.date,
    *,
    policy: ReassessmentPolicy | None = None,
    due_soon_days: int = 30,
) -> list[PatientDue]:
    """Every patient's status on ``on``, one entry per patient.

    ``entries`` are ``(patient_id, assessment_id, assessed_on, reassess_by)``, one per
    assessment, ``reassess_by`` ``None`` where none was set (e.g. not scored). A patient's
    status comes from their latest assessment that has a due date: an unscored attempt after it
    does not count as a reassessment. Ties on the date go to the later entry. Sorted most
    overdue first, then by assessment id.

    Assessments dated after ``on`` had not happened on that day and are left out: a patient
    reassessed later was still overdue then, and a patient first assessed later has no status
    on ``on`` (no entry).

    >>> d = dt.date
    >>> status = reassessment_status(
    ...     [("p1", "a1", d(2024, 1, 10), d(2024, 7, 10)),
    ...      ("p2", "a2", d(2024, 1, 10), d(2024, 7, 10)),
    ...      ("p2", "a3", d(2024, 7, 1), d(2025, 1, 1))],
    ...     on=d(2024, 9, 1))
    >>> [(s.assessment_id, s.status, s.days_overdue) for s in status]
    [('a1', 'overdue', 53), ('a3', 'not-due', 0)]
    """
    rules = policy or ReassessmentPolicy()
    latest: dict[str, _Entry] = {}
    seen: dict[str, None] = {}
    for order, (patient_id, assessment_id, assessed_on, reassess_by) in enumerate(entries):
        if assessed_on > on:
            continue
        seen.setdefault(patient_id, None)
        if reassess_by is None:
            continue
        held = latest.get(patient_id)
        if held is None or (assessed_on, order) >= (held.assessed_on, held.order):
            latest[patient_id] = _Entry(patient_id, assessment_id, assessed_on, reassess_by, order)
    out: list[PatientDue] = []
    for patient_id in seen:
        found = latest.get(patient_id)
        if found is None:
            out.append(PatientDue(patient_id, "no-date"))
            continue
        entry = found
        late = (on - entry.reassess_by).days
        closes = rules.window(entry.assessed_on)[1]
        status: DueStatus
        if late > 0:
            status = "overdue"
        elif -late <= due_soon_days:
            status = "due-soon"
        else:
            status = "not-due"
        out.append(
            PatientDue(
                patient_id,
                status,
                entry.assessment_id,
                entry.assessed_on,
                entry.reassess_by,
                closes,
                max(late, 0),
                on > closes,
            )
        )
    out.sort(key=lambda s: (-s.days_overdue, s.assessment_id or "", s.status))
    return out


def overdue(
    entries: Iterable[tuple[str, str, dt.date, dt.date | None]],
    on: dt.date,
    *,
    policy: ReassessmentPolicy | None = None,
) -> list[PatientDue]:
    """The patients whose reassessment is overdue on ``on``, most overdue first."""
    return [s for s in reassessment_status(entries, on, policy=policy) if s.status == "overdue"]


def _before(
    number: int, assessed_on: dt.date, due: dt.date | None, prefix: str = ""
) -> Problem | None:
    """The problem of a due date before its assessment (row ``number``, 1 = first data row):
    no interval gives one, so the table was edited or mixed up."""
    if due is None or due >= assessed_on:
        return None
    return Problem(f"{prefix}row {number}: reassess_by", "date", "before assessed_on")


def due_from_table(
    table: ScoredTable, *, source: str | None = None
) -> list[tuple[str, str, dt.date, dt.date | None]]:
    """Entries for :func:`reassessment_status` from a tailored
    :class:`~pamlib.tables.scored.ScoredTable` (one with ``reassess_by``), each patient by the
    table's one patient key (:meth:`~pamlib.tables.scored.ScoredTable.patient_keys`).

    A ``reassess_by`` before its row's ``assessed_on`` is reported, naming the row (and
    ``source``, the file, when given)."""
    if "reassess_by" not in table.column_names:
        raise ValidationError(
            "cannot list reassessments",
            [Problem("reassess_by", "missing-column", "tailor the table first")],
        )
    keys = table.patient_keys().tolist()
    ids = table.text("assessment_id").tolist()
    days = table.column("assessed_on").to_pylist()
    due = table.column("reassess_by").to_pylist()
    prefix = f"{source}: " if source else ""
    problems = [
        p
        for number, (day, by) in enumerate(zip(days, due, strict=True), start=1)
        if (p := _before(number, day, by, prefix)) is not None
    ]
    if problems:
        raise ValidationError("cannot list reassessments", problems)
    return [
        (str(key), str(aid).strip(), day, by)
        for key, aid, day, by in zip(keys, ids, days, due, strict=True)
    ]


def due_from_rows(
    rows: Iterable[Mapping[str, str]],
) -> list[tuple[str, str, dt.date, dt.date | None]]:
    """Entries for :func:`reassessment_status` from rows with ``patient_id`` (or
    ``nhs_number``), ``assessment_id``, ``assessed_on`` and ``reassess_by`` columns.

    Rows with neither identifier cannot be followed up and are reported, as are bad dates, a
    due date before the assessment and an NHS number that is not one (a row without a
    ``patient_id`` is followed up by its NHS number normalised and keyed as
    :meth:`~pamlib.tables.scored.ScoredTable.patient_keys` keys it: ``943 476 5919`` is
    ``nhs:9434765919``, never taken for a ``patient_id``); problems name the row number
    (1 = first data row), never an identifier.
    """
    out: list[tuple[str, str, dt.date, dt.date | None]] = []
    problems: list[Problem] = []
    for number, row in enumerate(rows, start=1):
        key = (row.get("patient_id") or "").strip()
        nhs_number = (row.get("nhs_number") or "").strip()
        if not key and nhs_number:
            try:
                key = "nhs:" + normalise_nhs_number(nhs_number)
            except ValidationError as error:
                problems.extend(
                    Problem(f"row {number}: nhs_number", p.code, p.message) for p in error.problems
                )
                continue
        if not key:
            problems.append(
                Problem(f"row {number}", "patient", "no patient_id or nhs_number to follow up")
            )
            continue
        try:
            assessed_on = parse_date(row.get("assessed_on"))
        except ValueError:
            problems.append(Problem(f"row {number}: assessed_on", "date", "not an ISO date"))
            continue
        try:
            due = parse_date(row.get("reassess_by"))
        except ValueError:
            problems.append(Problem(f"row {number}: reassess_by", "date", "not an ISO date"))
            continue
        if assessed_on is None:
            problems.append(Problem(f"row {number}: assessed_on", "date", "missing"))
            continue
        before = _before(number, assessed_on, due)
        if before is not None:
            problems.append(before)
            continue
        out.append((key, (row.get("assessment_id") or "").strip(), assessed_on, due))
    if problems:
        raise ValidationError("cannot list reassessments", problems)
    return out
