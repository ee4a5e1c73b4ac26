"""How tailoring links an assessment to the patient's previous one, and the limits of a link:
a whitespace-only identifier is no identifier, levels of two cut-point sets are not compared,
a previous row must be the same patient's earlier row, and a reassessment policy is whole
months within the rules' maximum."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.assessment import Assessment
from pamlib.cli import main
from pamlib.errors import ConfigurationError, ValidationError
from pamlib.identity import Patient, is_valid_nhs_number
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.levels import ActivationLevel
from pamlib.plugins import PluginHost
from pamlib.results import ScoreResult, ScoreStatus
from pamlib.tables.scored import ScoredTable
from pamlib.tailoring import Context, ContextColumns
from pamlib.tailoring.columns import link_previous_array
from pamlib.tailoring.reassessment import ReassessmentPolicy
from pamlib.tailoring.rules import MAX_REASSESS_MONTHS

Row = dict[str, str]

#: Identifiers in these tests are distinctive, so an error quoting one is caught.
PID = "SECRET-P1"
#: Cells of whitespace only: ASCII and Unicode (no-break, ideographic, line separator) spaces.
BLANKS = [" ", "  ", "\t", " \r\n ", "\u00a0", "\u3000", "\u2028", "\u2003\u2009"]
#: Valid NHS numbers (check digit right) from the range set aside for tests.
NHS = [n for i in range(1, 40) for d in range(10) if is_valid_nhs_number(n := f"999000{i:03d}{d}")][
    :8
]


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every command here sees pamlib's built-in plugins only."""


def row(aid: str, day: str, score: float | None, level: int | None, **cells: str) -> Row:
    """A scored-table row; ``cells`` add or replace columns (``patient_id`` defaults to empty)."""
    return {
        "assessment_id": aid,
        "patient_id": "",
        "assessed_on": day,
        "status": "scored" if score is not None else "not-scored",
        "score": "" if score is None else f"{score:.1f}",
        "level": "" if level is None else str(level),
    } | cells


def write(path: Path, rows: Sequence[Row]) -> Path:
    names = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def keys_of(rows: Sequence[Row]) -> list[str]:
    names = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.table({n: pa.array([r.get(n, "") for r in rows], pa.string()) for n in names})
    keys: list[str] = ScoredTable.from_arrow(table).patient_keys().tolist()
    return keys


def assert_quiet(error: BaseException, *secrets: str) -> None:
    """No identifier in the error, its problems or its repr."""
    problems = getattr(error, "problems", [])
    texts = [str(error), repr(error), *(f"{p.where} {p.code} {p.message}" for p in problems)]
    for secret in secrets:
        assert not any(secret in t for t in texts), secret


# -- 1. a whitespace-only identifier is an empty one -------------------------------------------


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_patient_ids_do_not_make_one_patient(blank: str) -> None:
    rows = [
        row("a1", "2023-01-10", 30.0, 1, patient_id=blank, nhs_number=NHS[0]),
        row("a2", "2024-07-10", 80.0, 4, patient_id=blank, nhs_number=NHS[1]),
    ]
    contexts = list(ContextColumns.from_rows(rows).contexts())
    assert [(c.previous_score, c.transition) for c in contexts] == [(None, "none")] * 2
    assert keys_of(rows) == [f"nhs:{NHS[0]}", f"nhs:{NHS[1]}"]
    # exactly as an empty cell
    assert keys_of(rows) == keys_of([r | {"patient_id": ""} for r in rows])


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_ids_with_no_other_key_are_refused(blank: str) -> None:
    rows = [
        row("a1", "2023-01-10", 30.0, 1, patient_id=blank),
        row("a2", "2024-07-10", 80.0, 4, patient_id=blank, nhs_pseudonym=blank),
    ]
    with pytest.raises(ValidationError) as info:
        ContextColumns.from_rows(rows)
    assert [(p.where, p.code) for p in info.value.problems] == [
        ("rows: row 1", "no-patient-key"),
        ("rows: row 2", "no-patient-key"),
    ]


def test_a_blank_pseudonym_is_no_key_and_a_blank_id_gives_way_to_one() -> None:
    rows = [
        row("a1", "2024-01-10", 30.0, 1, patient_id=" ", nhs_pseudonym="ps-1"),
        row("a2", "2024-07-10", 80.0, 4, patient_id="\t", nhs_pseudonym="ps-1"),
        row("a3", "2024-07-10", 60.0, 3, patient_id="q", nhs_pseudonym=" "),
    ]
    assert keys_of(rows) == ["pseudonym:ps-1", "pseudonym:ps-1", "q"]
    assert [c.previous_score for c in ContextColumns.from_rows(rows).contexts()] == [
        None,
        30.0,
        None,
    ]


def test_ids_are_otherwise_used_as_written() -> None:
    """``" P1"`` and ``"P1"`` are two keys: ``pamlib score`` writes both unchanged, and the
    reports, trajectories and privacy checks read the same cells as the same keys."""
    rows = [
        row("a1", "2024-01-10", 30.0, 1, patient_id=" P1"),
        row("a2", "2024-07-10", 80.0, 4, patient_id="P1"),
        row("a3", "2024-08-10", 70.0, 3, patient_id="P1 "),
    ]
    assert keys_of(rows) == [" P1", "P1", "P1 "]
    assert [c.previous_score for c in ContextColumns.from_rows(rows).contexts()] == [None] * 3


def test_score_writes_ids_as_given_and_blank_ones_empty(tmp_path: Path) -> None:
    answers = {f"q{i:02d}": "3" for i in range(1, 14)}
    base = {"assessed_on": "2024-01-10", "instrument": "PAM-13"} | answers
    source = write(
        tmp_path / "in.csv",
        [
            base | {"patient_id": " P5", "nhs_number": "", "assessment_id": "a1"},
            base | {"patient_id": "P5 ", "nhs_number": "", "assessment_id": "a2"},
            base | {"patient_id": "\u00a0", "nhs_number": NHS[0], "assessment_id": "a3"},
        ],
    )
    out = tmp_path / "out.csv"
    argv = ["score", str(source), "--provider", "demo", "--keep-nhs-number", "-o", str(out)]
    assert main(argv) == 0
    with out.open(encoding="utf-8", newline="") as f:
        written = list(csv.DictReader(f))
    assert [r["patient_id"] for r in written] == [" P5", "P5 ", ""]
    # a scored table keys the blank cell as its own reader would key the empty one
    as_read = [
        r | {"patient_id": p} for r, p in zip(written, [" P5", "P5 ", "\u00a0"], strict=True)
    ]
    assert keys_of(as_read) == keys_of(written) == [" P5", "P5 ", f"nhs:{NHS[0]}"]


def test_batches_never_link_blank_keys() -> None:
    keys = np.array(["", " ", "\u3000", "\t", "k", " k", "k"], dtype=object)
    days = np.array(["2024-01-0" + str(i + 1) for i in range(len(keys))], dtype="datetime64[D]")
    previous = link_previous_array(keys, days, np.ones(len(keys), dtype=np.bool_))
    assert previous.tolist() == [-1, -1, -1, -1, -1, -1, 4]
    # NumPy strings (trailing NULs dropped) and lone surrogates (no Arrow) agree
    assert link_previous_array(keys.astype(str), days, np.ones(7, bool)).tolist() == [
        -1, -1, -1, -1, -1, -1, 4,
    ]  # fmt: skip
    odd = np.array([" ", "\ud800", " ", "\ud800"], dtype=object)
    assert link_previous_array(odd, days[:4], np.ones(4, bool)).tolist() == [-1, -1, -1, 1]


def test_cli_explain_and_overdue_see_two_patients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nhs_only = write(
        tmp_path / "ws.csv",
        [
            row("a1", "2023-01-10", 30.0, 1, patient_id=" ", nhs_number=NHS[0]),
            row("a2", "2024-07-10", 80.0, 4, patient_id=" ", nhs_number=NHS[1]),
        ],
    )
    assert main(["rules", "explain", "--input", str(nhs_only), "--assessment-id", "a2"]) == 0
    assert "previously" not in capsys.readouterr().out
    argv = ["rules", "overdue", "--input", str(nhs_only), "--on", "2024-08-01", "--all"]
    assert main(argv) == 0
    listed = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert sorted(r["assessment_id"] for r in listed) == ["a1", "a2"]
    unkeyed = write(
        tmp_path / "ws3.csv",
        [row("a1", "2023-01-10", 30.0, 1, patient_id=" "), row("a2", "2024-07-10", 80, 4)],
    )
    assert main(["rules", "explain", "--input", str(unkeyed), "--assessment-id", "a2"]) != 0
    assert "no patient_id, NHS number or pseudonym" in capsys.readouterr().err


_PEOPLE = st.lists(
    st.tuples(
        st.sampled_from(["", *BLANKS, "p1"]),  # patient_id
        st.sampled_from(NHS[:4]),  # who the row is about, by NHS number
        st.dates(dt.date(2020, 1, 1), dt.date(2020, 12, 31)),
        st.booleans(),  # scored
    ),
    min_size=1,
    max_size=10,
)


@given(_PEOPLE)
def test_blank_ids_never_link_two_nhs_numbers(
    people: list[tuple[str, str, dt.date, bool]],
) -> None:
    """Whitespace-only patient ids key, and link, exactly as empty ones: never a row to a row
    of another NHS number."""
    rows = [
        row(f"a{i}", day.isoformat(), 10.0 + i if scored else None, 2 if scored else None)
        | {"patient_id": pid, "nhs_number": nhs}
        for i, (pid, nhs, day, scored) in enumerate(people)
    ]
    emptied = [r | {"patient_id": r["patient_id"].strip()} for r in rows]
    keys = keys_of(rows)
    assert keys == keys_of(emptied)
    days = np.array([r["assessed_on"] for r in rows], dtype="datetime64[D]")
    scored = np.array([r["status"] == "scored" for r in rows], dtype=np.bool_)
    previous = link_previous_array(np.array(keys, dtype=object), days, scored)
    for i, j in enumerate(previous.tolist()):
        if j >= 0 and not rows[i]["patient_id"].strip():
            assert rows[j]["nhs_number"] == rows[i]["nhs_number"]
            assert not rows[j]["patient_id"].strip()
    linked = [c.previous_score for c in ContextColumns.from_rows(rows).contexts()]
    assert linked == [c.previous_score for c in ContextColumns.from_rows(emptied).contexts()]
    assert linked == [None if j < 0 else 10.0 + j for j in previous.tolist()]


# -- 2. levels of two cut-point sets are not compared -------------------------------------------


CP_BEFORE = row("a1", "2024-01-10", 70.0, 3, patient_id="P1", cutpoint_set="hibbard-2005")
CP_NOW = row("a2", "2024-07-10", 69.0, 4, patient_id="P1", cutpoint_set="current")


def _transition(c: Context) -> tuple[float | None, int | None, float | None, str]:
    level = None if c.previous_level is None else int(c.previous_level)
    return c.previous_score, level, c.change, c.transition


def test_levels_of_two_cutpoint_sets_give_no_transition() -> None:
    expected = (70.0, None, -1.0, "none")
    table = ContextColumns.from_rows([CP_BEFORE, CP_NOW])
    assert _transition(table.context(1)) == expected
    assert table.transition.tolist() == ["none", "none"]
    assert _transition(Context.from_row(CP_NOW, CP_BEFORE)) == expected
    assert _transition(ContextColumns.from_row(CP_NOW, CP_BEFORE).context(0)) == expected


@pytest.mark.parametrize(
    ("before_set", "now_set", "expected"),
    [
        ("current", "current", (70.0, 3, -1.0, "up")),
        (" current ", "current", (70.0, 3, -1.0, "up")),  # cells are stripped
        ("", "", (70.0, 3, -1.0, "up")),  # no set named anywhere: nothing tells them apart
        ("", "current", (70.0, None, -1.0, "none")),  # an unnamed set is not a known one
        ("hibbard-2005", "", (70.0, None, -1.0, "none")),
    ],
)
def test_a_table_and_a_row_agree_on_sets(
    before_set: str, now_set: str, expected: tuple[object, ...]
) -> None:
    before = CP_BEFORE | {"cutpoint_set": before_set}
    now = CP_NOW | {"cutpoint_set": now_set}
    assert _transition(ContextColumns.from_rows([before, now]).context(1)) == expected
    assert _transition(Context.from_row(now, before)) == expected


def test_an_unscored_row_keeps_its_previous_level() -> None:
    """Nothing compares a level with it, so the previous level stays for rules to read."""
    now = row("a2", "2024-07-10", None, None, patient_id="P1")
    assert _transition(ContextColumns.from_rows([CP_BEFORE, now]).context(1)) == (
        70.0, 3, None, "none",
    )  # fmt: skip
    assert _transition(Context.from_row(now, CP_BEFORE)) == (70.0, 3, None, "none")


def _result(aid: str, score: float | None, level: int | None, cutpoints: str | None) -> ScoreResult:
    status = ScoreStatus.SCORED if score is not None else ScoreStatus.NOT_SCORED
    return ScoreResult(
        aid,
        status,
        "p",
        "1",
        13,
        score=score,
        level=None if level is None else ActivationLevel(level),
        cutpoint_set=cutpoints,
    )


@pytest.mark.parametrize("now_set", ["current", "hibbard-2005", None])
def test_objects_agree_with_rows(now_set: str | None) -> None:
    assessment = Assessment("a2", Patient("P1"), BUILTIN_INSTRUMENTS[0], dt.date(2024, 7, 10), {})
    before = _result("a1", 70.0, 3, "hibbard-2005")
    now = _result("a2", 69.0, 4, now_set)
    from_objects = Context.of(assessment, now, before)
    from_rows = Context.from_row(CP_NOW | {"cutpoint_set": now_set or ""}, CP_BEFORE)
    assert _transition(from_objects) == _transition(from_rows)
    assert _transition(from_objects)[3] == ("up" if now_set == "hibbard-2005" else "none")


# -- 3. a previous row is the same patient's, no later, another assessment ---------------------


@pytest.mark.parametrize(
    ("previous", "code"),
    [
        ({"patient_id": "SECRET-P2"}, "other-patient"),
        ({"patient_id": f" {PID}"}, "other-patient"),  # another key, as in a table
        ({"patient_id": "", "nhs_number": NHS[0]}, "other-patient"),
        ({"assessed_on": "2024-07-11"}, "later"),
        ({"assessment_id": "SECRET-A2"}, "same-assessment"),
    ],
)
def test_a_previous_row_that_is_not_the_patients_is_refused(previous: Row, code: str) -> None:
    now = row("SECRET-A2", "2024-07-10", 69.0, 4, patient_id=PID, nhs_number=NHS[0])
    before = row("SECRET-A1", "2024-01-10", 70.0, 3, patient_id=PID) | previous
    for build in (Context.from_row, ContextColumns.from_row):
        with pytest.raises(ValidationError) as info:
            build(now, before, where="here")
        assert [(p.where, p.code) for p in info.value.problems] == [("here (previous)", code)]
        assert_quiet(info.value, PID, "SECRET-P2", "SECRET-A", NHS[0])


def test_a_previous_row_may_share_the_date_or_be_keyed_alike() -> None:
    now = row("a2", "2024-07-10", 69.0, 4, patient_id=" ", nhs_number=NHS[0])
    same_day = row("a1", "2024-07-10", 70.0, 3, nhs_number=NHS[0].replace("999", "999 "))
    assert Context.from_row(now, same_day).previous_score == 70.0
    # as a table links them (equal dates in table order)
    assert ContextColumns.from_rows([same_day, now]).context(1).previous_score == 70.0


def test_bad_rows_are_reported_before_the_link() -> None:
    now = row("a2", "2024-07-10", 69.0, 4, patient_id="p")
    before = row("a1", "2024-13-10", 70.0, 3, patient_id="q")
    with pytest.raises(ValidationError) as info:
        Context.from_row(now, before, where="here")
    assert [(p.where, p.code) for p in info.value.problems] == [
        ("here (previous): row 1", "bad-date")
    ]


# -- 4. a reassessment policy is whole months ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval_months": 6.5},
        {"interval_months": 6.0},
        {"interval_months": "6"},
        {"interval_months": True},
        {"interval_months": 0},
        {"interval_months": -6},
        {"interval_months": MAX_REASSESS_MONTHS + 1},
        {"interval_months": 10**6},
        {"interval_months": None},
        {"window_months": (6.9, 12.9)},
        {"window_months": ("6", "12")},
        {"window_months": (6, True)},
        {"window_months": (0, 12)},
        {"window_months": (12, 6)},
        {"window_months": (6, 10**6)},
        {"window_months": (6,)},
        {"window_months": (6, 12, 18)},
        {"window_months": "6-12"},
        {"window_months": 6},
    ],
)
def test_a_policy_refuses_what_is_not_whole_months(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ReassessmentPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_policy_takes_whole_months_up_to_the_rules_maximum() -> None:
    policy = ReassessmentPolicy(interval_months=np.int64(MAX_REASSESS_MONTHS), window_months=[1, 1])  # type: ignore[arg-type]
    assert policy == ReassessmentPolicy(MAX_REASSESS_MONTHS, (1, 1))
    assert type(policy.interval_months) is int
    assert policy.due(dt.date(2024, 8, 31)) == dt.date(2027, 8, 31)
    assert ReassessmentPolicy().window(dt.date(2024, 8, 31)) == (
        dt.date(2025, 2, 28),
        dt.date(2025, 8, 31),
    )
