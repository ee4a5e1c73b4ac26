"""Reassessment dates (calendar months, clamped to month end) and the overdue list."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, ValidationError
from pamlib.tailoring import ReassessmentPolicy, add_months, overdue, reassessment_status
from pamlib.tailoring.reassessment import due_from_rows

dates = st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31))


def last_day(year: int, month: int) -> int:
    """Independent oracle: the day before the first of the next month."""
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


@given(day=dates, months=st.integers(-120, 120))
def test_add_months_is_calendar_months_clamped(day: dt.date, months: int) -> None:
    out = add_months(day, months)
    assert (out.year * 12 + out.month) - (day.year * 12 + day.month) == months
    assert out.day == min(day.day, last_day(out.year, out.month))


@given(a=dates, b=dates, months=st.integers(0, 36))
def test_add_months_keeps_order(a: dt.date, b: dt.date, months: int) -> None:
    if a <= b:
        assert add_months(a, months) <= add_months(b, months)
    assert add_months(a, months) >= a


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2025, 8, 31), 6, dt.date(2026, 2, 28)),
        (dt.date(2023, 8, 31), 6, dt.date(2024, 2, 29)),
        (dt.date(2024, 2, 29), 12, dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 29), 48, dt.date(2028, 2, 29)),
        (dt.date(2025, 7, 15), 6, dt.date(2026, 1, 15)),
        (dt.date(2025, 12, 31), 1, dt.date(2026, 1, 31)),
        (dt.date(2025, 3, 31), -1, dt.date(2025, 2, 28)),
        (dt.date(2025, 1, 1), 0, dt.date(2025, 1, 1)),
    ],
)
def test_add_months_cases(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected
    assert calendar.isleap(2024)


def test_policy() -> None:
    policy = ReassessmentPolicy()
    assert policy.due(dt.date(2025, 1, 31)) == dt.date(2025, 7, 31)
    assert policy.window(dt.date(2025, 1, 31)) == (dt.date(2025, 7, 31), dt.date(2026, 1, 31))
    assert policy.in_window(6)
    assert policy.in_window(12)
    assert not policy.in_window(3)
    assert not policy.in_window(13)
    with pytest.raises(ConfigurationError):
        ReassessmentPolicy(interval_months=0)
    with pytest.raises(ConfigurationError):
        ReassessmentPolicy(window_months=(12, 6))


entries = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3", "p4"]),
        st.sampled_from(["a1", "a2", "a3"]),
        st.dates(dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
        st.none() | st.dates(dt.date(2024, 6, 1), dt.date(2025, 12, 31)),
    ),
    max_size=15,
)


@given(items=entries, on=st.dates(dt.date(2024, 1, 1), dt.date(2026, 6, 30)))
def test_every_patient_once_and_overdue_exactly_when_past_due(
    items: list[tuple[str, str, dt.date, dt.date | None]], on: dt.date
) -> None:
    statuses = reassessment_status(items, on)
    # assessments after ``on`` had not happened on that day
    held = [i for i in items if i[2] <= on]
    assert sorted(s.patient_id for s in statuses) == sorted({i[0] for i in held})
    for s in statuses:
        dated = [i for i in held if i[0] == s.patient_id and i[3] is not None]
        if not dated:
            assert s.status == "no-date"
            continue
        latest = max(
            range(len(items)),
            key=lambda k: (items[k][2], k) if items[k] in dated else (dt.date.min, -1),
        )
        due = items[latest][3]
        assert due is not None
        assert s.reassess_by == due
        assert (s.status == "overdue") == (on > due)
        assert s.days_overdue == max((on - due).days, 0)
        assert s.window_missed == (on > add_months(items[latest][2], 12))
    listed = overdue(items, on)
    assert [s.days_overdue for s in listed] == sorted(
        (s.days_overdue for s in listed), reverse=True
    )
    assert all(s.status == "overdue" for s in listed)


def test_an_unscored_attempt_is_not_a_reassessment() -> None:
    items = [
        ("p1", "a1", dt.date(2024, 1, 1), dt.date(2024, 7, 1)),
        ("p1", "a2", dt.date(2024, 8, 1), None),
    ]
    (status,) = reassessment_status(items, dt.date(2024, 9, 1))
    assert (status.status, status.assessment_id, status.days_overdue) == ("overdue", "a1", 62)
    assert "p1" not in repr(status)


def test_due_soon() -> None:
    items = [("p", "a", dt.date(2024, 1, 1), dt.date(2024, 7, 1))]
    assert reassessment_status(items, dt.date(2024, 6, 1))[0].status == "due-soon"
    assert reassessment_status(items, dt.date(2024, 5, 31))[0].status == "not-due"
    assert reassessment_status(items, dt.date(2024, 7, 1))[0].status == "due-soon"
    assert reassessment_status(items, dt.date(2024, 7, 2))[0].status == "overdue"


def test_rows() -> None:
    rows = [
        {
            "patient_id": "p",
            "assessment_id": "a",
            "assessed_on": "2024-01-01",
            "reassess_by": "2024-07-01",
        },
        {
            "patient_id": "",
            "nhs_number": "9990000018",
            "assessment_id": "b",
            "assessed_on": "2024-01-01",
            "reassess_by": "",
        },
    ]
    assert due_from_rows(rows) == [
        ("p", "a", dt.date(2024, 1, 1), dt.date(2024, 7, 1)),
        ("nhs:9990000018", "b", dt.date(2024, 1, 1), None),
    ]
    bad = [
        {"patient_id": "", "assessment_id": "a", "assessed_on": "2024-01-01"},
        {"patient_id": "p", "assessment_id": "b", "assessed_on": "2024-13-01"},
        {
            "patient_id": "p",
            "assessment_id": "c",
            "assessed_on": "2024-01-01",
            "reassess_by": "soon",
        },
        {"patient_id": "p", "assessment_id": "d", "assessed_on": ""},
    ]
    with pytest.raises(ValidationError) as info:
        due_from_rows(bad)
    assert [(p.where, p.code) for p in info.value.problems] == [
        ("row 1", "patient"),
        ("row 2: assessed_on", "date"),
        ("row 3: reassess_by", "date"),
        ("row 4: assessed_on", "date"),
    ]


@given(st.dates(min_value=dt.date(9990, 1, 1)))
def test_the_window_of_an_assessment_in_the_last_years_ends_at_the_last_date(
    day: dt.date,
) -> None:
    """A window end past 9999-12-31 is that date (there is no later one), not a failure of
    ``pamlib rules overdue`` over a whole table."""
    opens, closes = ReassessmentPolicy().window(day)
    assert day <= opens <= closes <= dt.date.max
    index = day.year * 12 + day.month - 1 + 12
    if index < (dt.MAXYEAR + 1) * 12:
        assert closes == add_months(day, 12)
    else:
        assert closes == dt.date.max
    assert ReassessmentPolicy().window(dt.date(9999, 3, 31)) == (
        dt.date(9999, 9, 30),
        dt.date.max,
    )
    assert ReassessmentPolicy().window(dt.date.max) == (dt.date.max, dt.date.max)
