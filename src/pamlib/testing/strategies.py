"""Hypothesis strategies for plugin authors' tests: response codes, assessments and contexts.

The conformance classes draw their inputs from these; use them in your own properties too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pamlib.assessment import Assessment
from pamlib.identity import Patient
from pamlib.instruments import Instrument
from pamlib.levels import CURRENT, CutpointSet
from pamlib.responses import NOT_APPLICABLE_CODE, UNANSWERED_CODE, Response
from pamlib.results import Flag
from pamlib.tailoring.context import Context

__all__ = ["assessments", "contexts", "response_codes"]

#: The Hypothesis settings every conformance class uses, explicit so a suite's own profile cannot
#: make the kit slow: 40 examples per test, each over every declared instrument.
KIT_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    # Every subclass runs the same inherited method (different "executors"); the examples it
    # draws are valid for any plugin, so sharing them in the example database is harmless.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)


def _cells(instrument: Instrument) -> st.SearchStrategy[int]:
    """Mostly answered, with unanswered and not-applicable cells mixed in."""
    categories = list(range(1, instrument.n_categories + 1))
    return st.sampled_from([*categories * 3, UNANSWERED_CODE, NOT_APPLICABLE_CODE])


def response_codes(
    instrument: Instrument, *, min_rows: int = 1, max_rows: int = 20
) -> st.SearchStrategy[npt.NDArray[np.int8]]:
    """Column codes for ``instrument``: shape ``(n, n_items)``, ``1``..``n_categories``, ``0``
    unanswered, ``-1`` not applicable."""
    shape = st.tuples(st.integers(min_rows, max_rows), st.just(instrument.n_items))
    return hnp.arrays(np.int8, shape, elements=_cells(instrument))


@st.composite
def assessments(draw: st.DrawFn, instrument: Instrument) -> Assessment:
    """One assessment of ``instrument`` (made-up ids; answers as :func:`response_codes`)."""
    n = instrument.n_items
    codes = draw(st.lists(_cells(instrument), min_size=n, max_size=n))
    responses = {
        item: Response(code)
        for item, code in zip(instrument.items, codes, strict=True)
        if code != UNANSWERED_CODE
    }
    on = draw(st.dates(dt.date(2015, 1, 1), dt.date(2035, 12, 31)))
    return Assessment("conformance", Patient("conformance"), instrument, on, responses)


def _choose(values: Collection[str], *extra: str | None) -> st.SearchStrategy[str | None]:
    return st.sampled_from(sorted(values) + list(extra))


_SCORES = st.floats(0.0, 100.0, allow_nan=False).map(lambda x: round(x, 1))


@st.composite
def contexts(
    draw: st.DrawFn,
    *,
    attributes: Mapping[str, Sequence[str]] | None = None,
    sites: Collection[str] = (),
    languages: Collection[str] = (),
    instruments: Collection[str] = (),
    cutpoints: CutpointSet = CURRENT,
) -> Context:
    """The facts about one assessment, as a tailoring rule sees them.

    Scores and levels agree under ``cutpoints``. ``attributes`` maps attribute names to values
    worth trying (each may also be absent, another value, or several joined with ``;``); pass the
    sites, languages and instruments your rules look at so that they are drawn often.
    """
    scored = draw(st.sampled_from([True, True, True, False]))
    score = draw(_SCORES) if scored else None
    level = cutpoints.level(score) if score is not None else None
    previous = draw(st.none() | _SCORES)
    chosen: dict[str, str] = {}
    for name, values in sorted((attributes or {}).items()):
        value = draw(
            st.none()
            | st.sampled_from([*values, "other"])
            | st.lists(st.sampled_from([*values, "other"]), min_size=2, max_size=3).map(";".join)
        )
        if value is not None:
            chosen[name] = value
    return Context(
        assessment_id="conformance",
        scored=scored,
        score=score,
        level=level,
        previous_score=previous,
        previous_level=cutpoints.level(previous) if previous is not None else None,
        assessed_on=draw(st.dates(dt.date(2015, 1, 1), dt.date(2035, 12, 31))),
        instrument=draw(_choose({"PAM-13", "PAM-10", *instruments})),
        site=draw(_choose(sites, None, "Elsewhere")),
        language=draw(_choose(languages, None, "en")),
        flags=draw(st.frozensets(st.sampled_from([str(f) for f in Flag]), max_size=2)),
        attributes=chosen,
        cutpoint_set=cutpoints.id if level is not None else None,
        not_scored_reason=None if scored else "too few items answered",
    )
