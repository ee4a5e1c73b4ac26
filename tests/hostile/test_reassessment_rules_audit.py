"""What an audit of reassessment dates, ``pamlib rules`` and trends found, with hostile inputs.

Faults found (each has a test below):

1. ``ReassessmentPolicy.due(day, months)`` took 0, negative, ``True`` or fractional months: a due date on or before the assessment.
2. ``ReassessmentPolicy.due`` past 9999-12-31 raised Python's bare "year 10000 is out of range".
3. ``PatientDue``'s repr showed an NHS number an exporter built into the assessment id (and ``_Entry``'s the patient id).
4. A ``reassess_by`` before ``assessed_on`` (an edited table or rows) was taken as given: hundreds of days "overdue".
5. ``due_from_rows`` keyed people by the NHS number as written: "943 476 5919" and "9434765919" two people, a bad check digit a key.
6. ``rules explain --input`` silently ignored the facts given as options (``--score``, ``--level``, ``--attr``, ...).
7. ``rules explain --not-scored`` silently dropped a ``--score``/``--level`` given with it.
8. ``rules explain --level N --cutpoint-set NAME`` accepted an unknown cut-point set.
9. ``rules explain --attr NAME=A --attr NAME=B`` silently dropped the first value.
10. "today" (``rules overdue`` without ``--on``, ``rules explain`` without ``--assessed-on``) was the UTC date, not the local calendar date.
11. ``reassessment_status(…, on=D)`` (and ``rules overdue --on D``) counted assessments dated after D: a patient reassessed later was "not due" on D.
"""  # noqa: E501 - one line a fault, as the brief asks

from __future__ import annotations

import calendar
import csv
import datetime as dt
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import ConfigurationError, ValidationError
from pamlib.plugins import PluginHost
from pamlib.reporting import ScoredColumns, build_report, summary_json
from pamlib.tables.scored import ScoredTable
from pamlib.tailoring import STANDARD_COLUMNS, ReassessmentPolicy, reassessment_status
from pamlib.tailoring.reassessment import _Entry, due_from_rows, due_from_table

NHS = "9434765919"  # a valid NHS number (modulus 11), as in the library's own docs


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every command here sees pamlib's built-in plugins only."""


def _row(aid: str, pid: str, day: str, score: str, level: str, **extra: str) -> dict[str, str]:
    return {
        "assessment_id": aid,
        "patient_id": pid,
        "assessed_on": day,
        "instrument": "PAM-13",
        "status": "scored",
        "score": score,
        "level": level,
        "cutpoint_set": "current",
        "demo": "false",
        **extra,
    }


def _write(path: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ()) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, [*STANDARD_COLUMNS, *extra], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


# -- independent oracle for calendar months, clamped to the month's end ---------------------------


def _oracle(day: dt.date, months: int) -> dt.date:
    """One month at a time, with the calendar module's month lengths."""
    year, month = day.year, day.month
    for _ in range(months):
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@pytest.mark.parametrize("year", [2023, 2024, 1900, 2000])
def test_due_and_window_agree_with_an_oracle_every_day_of_the_year(year: int) -> None:
    day = dt.date(year, 1, 1)
    days = []
    while day.year == year:
        days.append(day)
        day += dt.timedelta(days=1)
    for months in range(1, 37):
        policy = ReassessmentPolicy(interval_months=months, window_months=(months, months))
        for day in days:
            expected = _oracle(day, months)
            assert policy.due(day) == expected, (day, months)
            assert policy.due(day, months) == expected, (day, months)
            assert policy.window(day) == (expected, expected), (day, months)
            assert expected > day


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2025, 1, 31), 1, dt.date(2025, 2, 28)),
        (dt.date(2024, 1, 31), 1, dt.date(2024, 2, 29)),
        (dt.date(2024, 2, 29), 12, dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 29), 6, dt.date(2024, 8, 29)),
        (dt.date(2023, 8, 31), 6, dt.date(2024, 2, 29)),
        (dt.date(2024, 12, 31), 6, dt.date(2025, 6, 30)),
    ],
)
def test_month_ends_and_leap_days(day: dt.date, months: int, expected: dt.date) -> None:
    assert ReassessmentPolicy().due(day, months) == expected


@settings(max_examples=300)
@given(
    day=st.dates(dt.date(1, 1, 1), dt.date(9996, 12, 31)),
    months=st.integers(1, 36),
)
def test_a_due_date_is_never_before_the_assessment(day: dt.date, months: int) -> None:
    due = ReassessmentPolicy().due(day, months)
    assert due > day
    assert due == _oracle(day, months)


# -- fault 1: months the policy itself would refuse -----------------------------------------------


@pytest.mark.parametrize("months", [0, -1, -6, True, 2.5, "6", 37])
def test_due_refuses_months_a_policy_refuses(months: object) -> None:
    with pytest.raises(ConfigurationError, match="whole number of months"):
        ReassessmentPolicy().due(dt.date(2024, 1, 31), months)  # type: ignore[arg-type]


# -- fault 2: a due date after 9999-12-31 ---------------------------------------------------------


def test_due_after_the_last_date_is_a_pamlib_error() -> None:
    policy = ReassessmentPolicy()
    assert policy.due(dt.date(9999, 6, 30)) == dt.date(9999, 12, 30)
    with pytest.raises(ValidationError, match="after 9999-12-31"):
        policy.due(dt.date(9999, 7, 1))
    with pytest.raises(ValidationError):
        policy.due(dt.date(9999, 12, 31), 1)


# -- fault 3: identifiers in reprs -----------------------------------------------------------------


def test_reprs_show_no_patient_identifier() -> None:
    (status,) = reassessment_status(
        [(NHS, f"{NHS}-2025-03-01", dt.date(2025, 3, 1), dt.date(2025, 9, 1))],
        dt.date(2025, 10, 1),
    )
    assert NHS not in repr(status)
    assert "<NHS number>-2025-03-01" in repr(status)
    entry = _Entry(NHS, "a1", dt.date(2025, 3, 1), dt.date(2025, 9, 1), 0)
    assert NHS not in repr(entry)


# -- fault 4: a due date before the assessment -----------------------------------------------------


def _before_rows() -> list[dict[str, str]]:
    return [
        _row("A1", "P1", "2024-01-15", "44.0", "1", reassess_by="2023-01-01"),
        _row("A2", "P2", "2024-05-15", "60.0", "3", reassess_by="2024-11-15"),
    ]


def test_overdue_refuses_a_due_date_before_the_assessment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _write(tmp_path / "edited.csv", _before_rows(), ("reassess_by",))
    argv = ["rules", "overdue", "--input", str(table), "--on", "2025-06-01"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pamlib: error: ")
    assert "edited.csv: row 1: reassess_by" in captured.err
    assert "before assessed_on" in captured.err
    assert "Traceback" not in captured.err
    assert "P1" not in captured.err


def test_due_from_table_and_rows_refuse_a_due_date_before_the_assessment(tmp_path: Path) -> None:
    table = ScoredTable.read(_write(tmp_path / "t.csv", _before_rows(), ("reassess_by",)))
    with pytest.raises(ValidationError) as caught:
        due_from_table(table)
    assert [p.where for p in caught.value.problems] == ["row 1: reassess_by"]
    with pytest.raises(ValidationError) as caught:
        due_from_rows(_before_rows())
    assert [p.where for p in caught.value.problems] == ["row 1: reassess_by"]
    # the same day as the assessment is no earlier: kept as given
    same = [_row("A1", "P1", "2024-01-15", "44.0", "1", reassess_by="2024-01-15")]
    assert due_from_rows(same)[0][3] == dt.date(2024, 1, 15)


# -- fault 5: NHS numbers as written ------------------------------------------------------------


def _nhs_row(number: str, aid: str, day: str, due: str) -> dict[str, str]:
    return {"nhs_number": number, "assessment_id": aid, "assessed_on": day, "reassess_by": due}


def test_due_from_rows_links_one_nhs_number_however_written() -> None:
    rows = [
        _nhs_row("943 476 5919", "a1", "2024-01-01", "2024-07-01"),
        _nhs_row("9434765919", "a2", "2024-08-01", "2025-02-01"),
    ]
    entries = due_from_rows(rows)
    assert {e[0] for e in entries} == {f"nhs:{NHS}"}
    (status,) = reassessment_status(entries, dt.date(2024, 9, 1))
    assert (status.assessment_id, status.status) == ("a2", "not-due")


def test_due_from_rows_refuses_a_bad_nhs_number_without_showing_it() -> None:
    rows = [_nhs_row("943 476 5910", "a1", "2024-01-01", "2024-07-01")]
    with pytest.raises(ValidationError) as caught:
        due_from_rows(rows)
    assert [p.where for p in caught.value.problems] == ["row 1: nhs_number"]
    assert "9434765910" not in str(caught.value)
    assert "943 476 5910" not in str(caught.value)


# -- faults 6 to 9: rules explain ------------------------------------------------------------------


def _scored_table(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "scored.csv",
        [
            _row("A1", "P1", "2024-01-15", "44.0", "1"),
            _row("A3", "P1", "2024-08-01", "60.0", "3"),
        ],
    )


@pytest.mark.parametrize(
    "extra",
    [
        ["--score", "10"],
        ["--score", "0"],
        ["--level", "1"],
        ["--previous-score", "90"],
        ["--previous-level", "4"],
        ["--not-scored", "refused"],
        ["--not-scored", ""],
        ["--assessed-on", "2020-01-01"],
        ["--site", "north"],
        ["--language", "cy"],
        ["--flag", "demo"],
        ["--attr", "condition=COPD"],
        ["--instrument", "PAM-10"],
        ["--cutpoint-set", "hibbard-2005"],
    ],
)
def test_explain_from_a_table_refuses_facts_given_as_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    table = _scored_table(tmp_path)
    argv = ["rules", "explain", "--input", str(table), "--assessment-id", "A3", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: ")
    assert extra[0] in err
    # without them, the row is explained
    assert main(argv[: len(argv) - len(extra)]) == 0
    assert capsys.readouterr().out.startswith("Assessment A3: level 3, score 60.0")


@pytest.mark.parametrize("extra", [["--score", "50"], ["--level", "2"]])
def test_explain_not_scored_refuses_a_score_or_level(
    capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert main(["rules", "explain", "--not-scored", "refused", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: ")
    assert "--not-scored" in err


def test_explain_refuses_an_unknown_cutpoint_set_with_a_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "explain", "--level", "2", "--cutpoint-set", "bogus"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: unknown cut-point set 'bogus'")
    assert main(["rules", "explain", "--level", "2", "--cutpoint-set", "hibbard-2005"]) == 0


def test_explain_refuses_one_attribute_given_twice(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["rules", "explain", "--level", "2", "--attr", "condition=COPD"]
    assert main([*argv, "--attr", " condition =asthma"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: ")
    assert "condition" in err
    assert main(argv) == 0


# -- fault 10: today is the local calendar's ---------------------------------------------------


@pytest.fixture
def far_zones() -> Iterator[list[str]]:
    """Two POSIX zones 26 hours apart (UTC+14, UTC-12): at any instant the local date of one
    of them is not the UTC date. The process's zone is restored afterwards."""
    saved = os.environ.get("TZ")
    try:
        yield ["<+14>-14", "<-12>+12"]
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_today_is_the_local_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], far_zones: list[str]
) -> None:
    table = _scored_table(tmp_path)
    for zone in far_zones:
        os.environ["TZ"] = zone
        time.tzset()
        before = dt.date.today()  # noqa: DTZ011 - the local calendar is the one meant
        assert main(["rules", "overdue", "--input", str(table)]) == 0
        after = dt.date.today()  # noqa: DTZ011
        err = capsys.readouterr().err
        assert f" on {before.isoformat()}:" in err or f" on {after.isoformat()}:" in err, zone
        assert main(["rules", "explain", "--score", "50", "--json"]) == 0
        out = capsys.readouterr().out
        dues = {ReassessmentPolicy().due(d).isoformat() for d in (before, after)}
        assert any(due in out for due in dues), zone


# -- properties that held: order and chunking never change the answers -------------------------


entries = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3"]),
        st.dates(dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
        st.none() | st.integers(1, 36),
    ),
    max_size=12,
)


@given(items=entries, on=st.dates(dt.date(2024, 1, 1), dt.date(2027, 12, 31)), seed=st.integers())
def test_status_is_invariant_to_row_order_without_ties(
    items: list[tuple[str, dt.date, int | None]], on: dt.date, seed: int
) -> None:
    policy = ReassessmentPolicy()
    seen: set[tuple[str, dt.date]] = set()
    rows = []
    for k, (patient, day, months) in enumerate(items):
        if (patient, day) in seen:  # ties on the date go to the later row, by design
            continue
        seen.add((patient, day))
        due = None if months is None else policy.due(day, months)
        rows.append((patient, f"a{k}", day, due))
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)  # noqa: S311 - a reproducible order, not security
    first = reassessment_status(rows, on)
    again = reassessment_status(shuffled, on)
    assert sorted(first, key=lambda s: s.patient_id) == sorted(again, key=lambda s: s.patient_id)
    for s in first:
        if s.reassess_by is not None and s.assessed_on is not None:
            assert s.reassess_by > s.assessed_on
            assert s.window_closes == _oracle(s.assessed_on, 12)


@st.composite
def cohorts(draw: st.DrawFn) -> list[dict[str, str]]:
    rows = []
    for k in range(draw(st.integers(0, 40))):
        score = draw(st.none() | st.integers(0, 1000).map(lambda t: t / 10))
        day = dt.date(1969, 11, 1) + dt.timedelta(days=draw(st.integers(0, 900)))
        if score is None:
            rows.append(
                _row(f"a{k}", f"p{draw(st.integers(0, 9))}", day.isoformat(), "", "")
                | {"status": "not-scored", "cutpoint_set": ""}
            )
            continue
        level = 1 if score <= 47 else 2 if score <= 55.1 else 3 if score <= 67 else 4
        rows.append(
            _row(
                f"a{k}", f"p{draw(st.integers(0, 9))}", day.isoformat(), f"{score:.1f}", str(level)
            )
        )
    return rows


@settings(max_examples=40)
@given(rows=cohorts(), seed=st.integers())
def test_trends_are_invariant_to_row_order_and_chunking(
    rows: list[dict[str, str]], seed: int
) -> None:
    from pamlib.reporting import trends

    expected = summary_json(build_report(ScoredColumns.from_rows(rows)))["trends"]
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)  # noqa: S311 - a reproducible order, not security
    chunk = trends._CHUNK
    trends._CHUNK = 3  # a few rows at a time: the sums of the pieces are the whole's
    try:
        again = summary_json(build_report(ScoredColumns.from_rows(shuffled)))["trends"]
    finally:
        trends._CHUNK = chunk
    assert again == expected
    usable = [r for r in rows if r["status"] == "scored"]
    assert sum(q["n"] for q in expected["all"].values()) == len(usable)
    assert sum(q["n"] for q in expected["baseline"].values()) == len(
        {r["patient_id"] for r in usable}
    )


def test_a_date_with_text_after_it_is_no_date() -> None:
    """``parse_date`` ignores a time part, not anything at all after ten characters."""
    from pamlib.tailoring.context import parse_date

    assert parse_date("2025-03-01T10:00Z") == dt.date(2025, 3, 1)
    for text in ("2025-03-01garbage", "2025-03-01T", "2025-03-01 x"):
        with pytest.raises(ValueError, match="Invalid isoformat"):
            parse_date(text)


def test_a_rules_file_that_cannot_be_read_is_the_environment_s_failure(tmp_path: Path) -> None:
    """As for an input that cannot be read: exit status 3, not 1."""
    from pamlib.cli import main

    assert main(["rules", "check", str(tmp_path / "missing.toml")]) == 3


# -- fault 11: the table as it stood on the day --------------------------------------------------


def test_status_on_a_day_ignores_assessments_after_it() -> None:
    """Who was overdue on D does not depend on what happened after D."""
    d = dt.date
    entries = [
        ("p1", "a1", d(2024, 1, 10), d(2024, 7, 10)),
        ("p1", "a2", d(2024, 10, 1), d(2025, 4, 1)),  # reassessed after the day asked about
        ("p2", "a3", d(2024, 11, 1), d(2025, 5, 1)),  # first assessed after it
    ]
    on = d(2024, 9, 1)
    (status,) = reassessment_status(entries, on)
    assert (status.assessment_id, status.status, status.days_overdue) == ("a1", "overdue", 53)
    # on a later day, both are there, and the reassessment counts
    later = {s.assessment_id: s.status for s in reassessment_status(entries, d(2024, 12, 1))}
    assert later == {"a2": "not-due", "a3": "not-due"}


def test_rules_overdue_on_a_past_day_counts_patients_assessed_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        _row("A1", "P1", "2024-01-10", "45.0", "2", reassess_by="2024-07-10"),
        _row("A2", "P1", "2024-10-01", "52.0", "3", reassess_by="2025-04-01"),
        _row("A3", "P2", "2024-11-01", "60.0", "3", reassess_by="2025-05-01"),
    ]
    table = _write(tmp_path / "scored.csv", rows, ("reassess_by",))
    assert main(["rules", "overdue", "--input", str(table), "--on", "2024-09-01", "--all"]) == 0
    captured = capsys.readouterr()
    listed = list(csv.DictReader(captured.out.splitlines()))
    assert [(r["assessment_id"], r["status"]) for r in listed] == [("A1", "overdue")]
    assert "1 patients on 2024-09-01: 1 overdue" in captured.err
    assert "1 first assessed after 2024-09-01, not listed" in captured.err
