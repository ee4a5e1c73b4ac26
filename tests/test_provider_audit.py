"""An audit of the boundary with vendors' scoring providers: what a buggy or hostile provider
returns, and what pamlib makes of it.

Each fault found has a minimal provider here. The invariants:

- a column converts to its type exactly or the batch is refused naming the field (NumPy's own
  conversion truncates a level of 3.7 to 3 and wraps a count of 65 549 to 13);
- results name the provider that was asked, at the version it declares, and count the answers
  it was given;
- what was checked is what callers, plugins and files get: scores at their precision, no
  buffer the provider can rewrite afterwards;
- a licence is what it says (an id is not its letters, a last day is a date) and is checked by
  pamlib's rule on the local calendar;
- the object API and the batch path accept and refuse the same things (a differential test).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Collection
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib import Assessment, Patient, scoring
from pamlib.errors import LicenceError, ProviderResultError, ScoringError
from pamlib.instruments import Instrument
from pamlib.levels import ActivationLevel, round_half_away
from pamlib.plugins import PluginHost
from pamlib.results import Flag, ScoreResult
from pamlib.scoring.demo import DemoProvider
from pamlib.scoring.provider import FLAG_BITS, BaseProvider, BatchScores, Licence

HOST = PluginHost(load_entry_points=False, disabled=())
PAM13 = HOST.instruments().get("PAM-13")
#: Scored 60.7 (level 3), 39.3 (level 1), 74.6 (level 4), and not scored.
ROWS = np.array([[3] * 13, [2] * 13, [4, 3] * 6 + [4], [0] * 13], dtype=np.int8)
LICENCE = Licence("Test Trust", frozenset({"PAM-13"}))


class Vendor(BaseProvider):
    """A licensed stand-in for a vendor: the demo calibration's numbers, not marked demo, with
    ``breaks`` changing the fields before they become a :class:`BatchScores`."""

    id = "vendor"
    version = "1"
    demo = False
    licence: Licence | None = LICENCE

    def __init__(self, breaks: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._demo = DemoProvider()
        self._breaks = breaks

    def instruments(self) -> Collection[str]:
        return {"PAM-13"}

    def fields(self, codes: npt.NDArray[np.int8]) -> dict[str, Any]:
        batch = self._demo.score_batch(PAM13, codes)
        fields = attrs.asdict(batch, recurse=False)
        fields.update(
            demo=False,
            provider=self.id,
            provider_version=self.version,
            flags=batch.flags & ~np.uint8(FLAG_BITS[Flag.DEMO]),
        )
        return fields

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        fields = self.fields(codes)
        if self._breaks is not None:
            self._breaks(fields)
        return BatchScores(**fields)


def at(field: str, change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def breaks(fields: dict[str, Any]) -> None:
        fields[field] = change(fields[field])

    return breaks


def plus(row: int, delta: float) -> Callable[[Any], Any]:
    def change(column: Any) -> Any:
        out = np.asarray(column).astype(np.result_type(column, delta)).copy()
        out[row] += delta
        return out

    return change


def assessment(answers: list[int] | None = None) -> Assessment:
    values = [3] * 13 if answers is None else answers
    responses = {item: v for item, v in zip(PAM13.items, values, strict=True) if v}
    return Assessment("a1", Patient("p1"), PAM13, dt.date(2025, 1, 1), responses)


def refusal(run: Callable[[], object]) -> ProviderResultError:
    with pytest.raises(ProviderResultError) as info:
        run()
    return info.value


def many(provider: object, rows: npt.NDArray[np.int8] = ROWS) -> BatchScores:
    return scoring.score_many(PAM13, rows, provider=provider, host=HOST)  # type: ignore[arg-type]


# -- columns that do not convert exactly ----------------------------------------------------

LOSSY: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "level-3.7": (at("level", plus(0, 0.7)), "level"),
    "level-259-wraps-to-3": (
        at("level", lambda v: np.add(v, [256, 0, 0, 0], dtype=np.int64)),
        "level",
    ),
    "raw-with-a-fraction": (at("raw_score", plus(0, 0.6)), "raw_score"),
    "n-answered-wraps": (at("n_answered", lambda v: v.astype(np.int64) + 65536), "n_answered"),
    "flags-past-a-byte": (at("flags", lambda v: v.astype(np.int64) + 256), "flags"),
    "scored-as-fractions": (at("scored", lambda v: v * 0.5), "scored"),
    "levels-as-booleans": (at("level", lambda v: v.astype(bool)), "level"),
    "levels-as-text": (at("level", lambda v: v.astype(str)), "level"),
    "scores-as-objects": (at("score", lambda v: v.astype(object)), "score"),
    "scores-as-complex": (at("score", lambda v: v.astype(complex)), "score"),
    "masked-scores": (
        at("score", lambda v: np.ma.array(np.nan_to_num(v), mask=[False, False, False, True])),
        "score",
    ),
    "none-as-a-reason-code": (at("reason_code", lambda v: [None] * 3 + ["x"]), "reason_code"),
}


@pytest.mark.parametrize("case", sorted(LOSSY))
def test_a_column_that_does_not_convert_exactly_is_refused(case: str) -> None:
    breaks, field = LOSSY[case]
    error = refusal(lambda: many(Vendor(breaks)))
    assert (error.provider, error.field) == ("vendor", field)


def test_a_column_of_one_value_is_refused_not_a_crash() -> None:
    error = refusal(lambda: many(Vendor(at("scored", lambda v: True))))
    assert error.field == "scored"


def test_columns_that_convert_exactly_are_accepted() -> None:
    """Python lists, wider integers, float32 standard errors, pyarrow arrays: nothing lost."""
    pa = pytest.importorskip("pyarrow")

    def widen(fields: dict[str, Any]) -> None:
        fields["level"] = fields["level"].astype(np.int64).tolist()
        fields["n_answered"] = pa.array(fields["n_answered"].astype(np.int64))
        fields["score_se"] = fields["score_se"].astype(np.float32)
        fields["scored"] = fields["scored"].astype(np.uint8)
        fields["reason_code"] = pa.array(fields["reason_code"].tolist()).to_numpy(
            zero_copy_only=False
        )

    got = many(Vendor(widen))
    assert got.level.tolist() == [3, 1, 4, 0]
    assert got.reason_code.tolist() == ["", "", "", "nothing-answered"] or got.reason_code[3]


# -- provenance, counts and reasons -----------------------------------------------------------

STAMPS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "another-provider": (lambda f: f.update(provider="someone-else"), "provider"),
    "no-provider": (lambda f: f.update(provider=""), "provider"),
    "another-version": (lambda f: f.update(provider_version="2"), "provider_version"),
    "a-number-as-calibration-id": (lambda f: f.update(calibration_id=5), "calibration_id"),
    "decimals-below-the-cut-points": (lambda f: f.update(score_decimals=0), "score_decimals"),
    "decimals-as-text": (lambda f: f.update(score_decimals="1"), "score_decimals"),
    "reasons-not-a-mapping": (lambda f: f.update(reasons=42), "reasons"),
    "reason-words-over-lines": (
        lambda f: f.update(reasons={"nothing-answered": "no\nscore: 1"}),
        "reasons",
    ),
    "a-very-long-reason-code": (
        at("reason_code", lambda v: ["", "", "", "x" * 500]),
        "reason_code",
    ),
    "one-answer-too-many": (at("n_answered", plus(1, -1)), "n_answered"),
    "raw-total-off-by-one": (at("raw_score", plus(2, -1)), "raw_score"),
}


@pytest.mark.parametrize("case", sorted(STAMPS))
def test_results_name_the_provider_asked_and_count_its_answers(case: str) -> None:
    breaks, field = STAMPS[case]
    error = refusal(lambda: many(Vendor(breaks)))
    assert error.field == field
    assert "someone-else" not in str(error)


class Counting(Vendor):
    def score(self, assessment: Assessment) -> ScoreResult:
        return attrs.evolve(super().score(assessment), n_answered=12, raw_score=36)


def test_one_assessment_must_count_its_answers() -> None:
    error = refusal(lambda: scoring.score(assessment(), provider=Counting(), host=HOST))
    assert error.field == "n_answered"


# -- what was checked is what everyone gets ---------------------------------------------------


class Buffered(Vendor):
    """Reuses one buffer for every batch's scores: a common optimisation, and a bug when the
    caller still holds the last batch."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = np.zeros(64)

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        fields = self.fields(codes)
        n = len(codes)
        self.buffer[:n] = fields["score"]
        fields["score"] = self.buffer[:n]
        return BatchScores(**fields)


def test_a_provider_reusing_a_buffer_cannot_rewrite_a_checked_batch() -> None:
    provider = scoring.select_provider(Buffered(), PAM13, host=HOST)
    first = provider.score_batch(PAM13, ROWS)
    before = first.score.tolist()
    provider.score_batch(PAM13, ROWS[::-1].copy())
    assert np.array_equal(first.score, before, equal_nan=True)
    assert first.level.tolist() == [3, 1, 4, 0]


@settings(max_examples=60, deadline=None)
@given(
    score=st.floats(0, 100, allow_nan=False).filter(lambda x: round_half_away(x, 1) <= 100),
    single=st.booleans(),
)
def test_scores_reach_callers_at_the_precision_they_are_written_and_banded_at(
    score: float, single: bool
) -> None:
    """A float32 score, or one left unrounded, is banded as rounded and written rounded; the
    caller (and every plugin) gets the rounded number too, by either path."""
    value = float(np.float32(score)) if single else score
    rounded = round_half_away(value, 1)
    level = 0 if math.isnan(rounded) else int(HOST.cutpoint_sets().get("current").level(value))

    def breaks(fields: dict[str, Any]) -> None:
        fields["score"] = np.array([value, *fields["score"][1:]])
        fields["level"] = np.array([level, *fields["level"][1:]])

    class Fixed(Vendor):
        def score(self, assessment: Assessment) -> ScoreResult:
            return attrs.evolve(
                super().score(assessment), score=value, level=ActivationLevel(level)
            )

    batch = many(Vendor(breaks))
    one = scoring.score(assessment(), provider=Fixed(), host=HOST)
    assert batch.score[0] == one.score == rounded
    assert int(batch.level[0]) == int(one.level or 0) == level


# -- identity read once -----------------------------------------------------------------------


class Vanishing(Vendor):
    """An ``id`` property that works while the provider is chosen, then raises."""

    calls = 0

    @property
    def id(self) -> str:  # type: ignore[override]
        type(self).calls += 1
        if type(self).calls > 8:
            raise RuntimeError("the id is gone")
        return "vendor"

    def fields(self, codes: npt.NDArray[np.int8]) -> dict[str, Any]:
        Vanishing.calls, calls = 0, Vanishing.calls  # its own use of the id is not the test
        fields = super().fields(codes)
        Vanishing.calls = calls
        return fields


def test_an_id_that_fails_after_selection_is_not_a_crash() -> None:
    Vanishing.calls = 0
    provider = scoring.select_provider(Vanishing(), PAM13, host=HOST)
    Vanishing.calls = 100
    got = provider.score_batch(PAM13, ROWS)
    assert got.provider == provider.id == "vendor"


def test_a_provider_whose_id_fails_at_once_is_a_scoring_error() -> None:
    Vanishing.calls = 100
    with pytest.raises(ScoringError, match="failed to declare its id"):
        scoring.score_many(PAM13, ROWS, provider=Vanishing(), host=HOST)


# -- the licence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("Trust", "PAM-13"), "instruments"),  # its letters, not the instrument
        (("Trust", {"PAM-13"}, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)), "valid_until"),
        (("Trust", {"PAM-13"}, "2030-01-01"), "valid_until"),
        ((None, {"PAM-13"}), "licensee"),
        (("", {"PAM-13"}), "licensee"),
    ],
)
def test_a_licence_is_what_it_says_or_not_built(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(TypeError, match=f"Licence.{field}"):
        Licence(*args)


class LenientLicence(Licence):
    def check(self, instrument_id: str, on: dt.date | None = None) -> None:
        return None  # never expires


class Overriding(Vendor):
    licence = LenientLicence("Test Trust", frozenset({"PAM-13"}), dt.date(2000, 1, 1))


class Broken(Licence):
    def check(self, instrument_id: str, on: dt.date | None = None) -> None:
        raise TypeError("a bug in the vendor's licence class")


class BrokenLicence(Vendor):
    licence = Broken("Test Trust", frozenset({"PAM-13"}))


def test_pamlib_decides_whether_a_licence_allows_scoring() -> None:
    with pytest.raises(LicenceError, match="expired on 2000-01-01"):
        many(Overriding())
    assert many(BrokenLicence()).level.tolist() == [3, 1, 4, 0]


def test_a_licence_check_takes_a_datetime_as_its_day() -> None:
    licence = Licence("Trust", {"PAM-13"}, dt.date(2030, 3, 31))
    licence.check("PAM-13", on=dt.datetime(2030, 3, 31, 23, 59, tzinfo=dt.UTC))
    with pytest.raises(LicenceError):
        licence.check("PAM-13", on=dt.datetime(2030, 4, 1, tzinfo=dt.UTC))


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset")
@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Etc/GMT-14"])  # UTC-12 and UTC+14
def test_the_last_day_of_a_licence_is_the_local_day(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site west of Greenwich keeps its licence to the end of its last day, one east of it
    loses it at its own midnight: the day is the one on the machine's calendar."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        local = dt.date.today()  # noqa: DTZ011 - the local calendar under test
        utc = dt.datetime.now(dt.UTC).date()
        if local == utc:
            pytest.skip("the local and UTC dates agree at this instant")
        if local < utc:  # west: still the last day here
            Licence("Trust", {"PAM-13"}, local).check("PAM-13")
        else:  # east: the UTC date's licence is over here
            with pytest.raises(LicenceError):
                Licence("Trust", {"PAM-13"}, utc).check("PAM-13")
    finally:
        monkeypatch.undo()
        time.tzset()


# -- one assessment: values of the wrong kind --------------------------------------------------


class OneValue(Vendor):
    def __init__(self, **change: Any) -> None:
        super().__init__()
        self.change = change

    def score(self, assessment: Assessment) -> ScoreResult:
        return attrs.evolve(super().score(assessment), **self.change)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": 3.5}, "level"),  # int() reads it as 3
        ({"level": 3.0}, "level"),
        ({"level": "3"}, "level"),
        ({"level": True}, "level"),
        ({"raw_score": 39.5}, "raw_score"),
        ({"n_answered": 13.0}, "n_answered"),
        ({"provider": "someone-else"}, "provider"),
        ({"provider_version": 1}, "provider_version"),
        ({"demo": 0}, "demo"),
        ({"reason": "words without a code"}, "reasons"),
    ],
)
def test_one_result_of_the_wrong_kind_is_refused(change: dict[str, Any], field: str) -> None:
    error = refusal(lambda: scoring.score(assessment(), provider=OneValue(**change), host=HOST))
    assert error.field == field


def test_a_boolean_score_is_not_read_as_one() -> None:
    with pytest.raises(ScoringError):
        scoring.score(assessment(), provider=OneValue(score=True), host=HOST)


def test_exact_integers_of_another_type_are_made_plain() -> None:
    one = scoring.score(
        assessment(),
        provider=OneValue(level=np.int8(3), n_answered=np.int64(13), raw_score=np.int32(39)),
        host=HOST,
    )
    assert type(one.level) is ActivationLevel
    assert one.level == 3
    assert (type(one.n_answered), type(one.raw_score)) == (int, int)


# -- the two paths agree ------------------------------------------------------------------------

#: Values a provider might put in one field of one result; the per-row ones go into a batch as
#: a one-element column of the value's own type.
VALUES = st.sampled_from(
    [
        0,
        1,
        3,
        4,
        5,
        -1,
        12,
        13,
        14,
        38,
        39,
        40,
        np.int8(3),
        np.int64(39),
        3.0,
        3.5,
        60.7,
        60.74,
        60.75,
        47.0,
        47.05,
        math.nextafter(55.1, 100),
        float(np.float32(60.7)),
        np.float32(60.7),
        -0.0,
        -0.5,
        100.0,
        100.01,
        math.nan,
        math.inf,
        True,
        False,
        "3",
        "vendor",
        "other",
        "1",
        None,
    ]
)
ROW_FIELDS = ("n_answered", "raw_score", "mean_response", "theta", "theta_se", "score",
              "score_se", "level")  # fmt: skip
BATCH_FIELDS = ("provider", "provider_version", "calibration_id", "demo")


class Changed(Vendor):
    """Row 0 of its results with one field set to ``value``, by either path."""

    def __init__(self, field: str, value: Any) -> None:
        super().__init__()
        self.field, self.value = field, value

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        fields = self.fields(codes)
        value = self.value
        if value is None and self.field in ROW_FIELDS[1:]:  # "not reported", as a column says
            value = 0 if self.field in ("level", "raw_score") else math.nan
        fields[self.field] = np.asarray([value]) if self.field in ROW_FIELDS else value
        return BatchScores(**fields)

    def score(self, assessment: Assessment) -> ScoreResult:
        base = self.fields(assessment.codes()[np.newaxis, :])
        result = BatchScores(**base).result(0, assessment.id)
        value = self.value
        if self.field == "level":
            value = None if value is None or (_is_number(value) and value == 0) else value
        return attrs.evolve(result, **{self.field: value})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _verdict(run: Callable[[], Any]) -> tuple[str, str | None] | Any:
    try:
        return run()
    except ProviderResultError as exc:
        return ("refused", exc.field)
    except (ScoringError, TypeError, ValueError):  # a ScoreResult that cannot be built at all
        return ("refused", None)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(ROW_FIELDS + BATCH_FIELDS), value=VALUES)
def test_one_assessment_and_a_batch_of_one_agree_on_what_a_provider_returns(
    field: str, value: Any
) -> None:
    provider = Changed(field, value)
    one = _verdict(lambda: scoring.score(assessment(), provider=provider, host=HOST))
    batch = _verdict(
        lambda: scoring.score_many(PAM13, ROWS[:1], provider=provider, host=HOST).result(0, "a1")
    )
    if isinstance(one, tuple) or isinstance(batch, tuple):
        assert isinstance(one, tuple), (one, batch)
        assert isinstance(batch, tuple), (one, batch)
        if one[1] is not None and batch[1] is not None:
            assert one[1] == batch[1]
        return
    assert one == batch
    assert type(one.level) in (ActivationLevel, type(None))
    assert type(one.n_answered) is int
