"""The example site plugin passes pamlib's rules conformance kit, and its rules do what they say."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pytest
from pamlib import PluginHost
from pamlib.tailoring import Context, Engine, build_engine
from pamlib.testing import RulesConformance

import pamlib_example_site as plugin


class TestNorthfieldRules(RulesConformance):
    @pytest.fixture
    def plugin(self) -> object:
        return plugin

    @pytest.fixture
    def context_attributes(self) -> Mapping[str, Sequence[str]]:
        # What the Python rule reads: dates either side of the 90-day line, and a bad one.
        return {"last_contact": ["2024-01-01", "2025-02-20", "2030-06-30", "last spring"]}


@pytest.fixture
def engine() -> Engine:
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"northfield": plugin})
    return build_engine(host=host)


def _ids(engine: Engine, context: Context) -> set[str]:
    outcome = engine.evaluate(context)
    return {t.rule_id for t in outcome.trace if t.applied}


def test_the_walking_group_is_offered_unless_walking_is_hard(engine: Engine) -> None:
    offered = engine.evaluate(Context("a", level=3))
    assert "northfield.walking-group" in [r.pathway for r in offered.recommendations]
    limited = engine.evaluate(Context("a", level=3, attributes={"mobility": "limited"}))
    assert "northfield.walking-group" not in [r.pathway for r in limited.recommendations]


def test_level_1_coaching_starts_with_phone_calls(engine: Engine) -> None:
    outcome = engine.evaluate(Context("a", level=1))
    coaching = next(r for r in outcome.recommendations if r.pathway == "health-coaching")
    assert coaching.contact_frequency == "weekly"
    assert "Start with a short phone call." in coaching.notes


@pytest.mark.parametrize(
    ("last_contact", "expected"),
    [
        ("2025-03-01", None),  # seen on the day
        ("2024-12-02", None),  # 89 days before
        ("2024-12-01", "No contact for 90 days or more: phone the person before booking."),
        ("not a date", "The date of last contact could not be read; check the record."),
        ("", None),
    ],
)
def test_no_recent_contact(engine: Engine, last_contact: str, expected: str | None) -> None:
    context = Context(
        "a", level=2, assessed_on=dt.date(2025, 3, 1), attributes={"last_contact": last_contact}
    )
    notes = engine.evaluate(context).notes
    if expected is None:
        assert "northfield.no-recent-contact" not in _ids(engine, context)
    else:
        assert expected in notes


def test_the_explanation_names_the_sites_rules(engine: Engine) -> None:
    context = Context(
        "a", level=2, assessed_on=dt.date(2025, 3, 1), attributes={"last_contact": "2024-01-02"}
    )
    text = engine.explain(context)
    assert "northfield.walking-group" in text
    assert "northfield.no-recent-contact" in text
