"""What a plugin raises while it holds a patient's record (a provider scoring one assessment,
an observer of one, a Python rule) is never repeated: not in pamlib's error, not in its log,
not in a traceback of pamlib's error (no chained cause). Only the exception's type and where it
was raised are told. Elsewhere a plugin's text is repeated with any NHS number in it withheld."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

import pamlib
from pamlib.errors import PluginError, RuleError, ScoringError
from pamlib.hookspecs import hookimpl
from pamlib.identity import withhold_nhs_numbers
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.plugins import PluginHost, describe_failure, reset_host
from pamlib.scoring.demo import DemoProvider
from pamlib.tailoring import BUILTIN_PATHWAYS, Context, rule
from pamlib.tailoring.engine import Engine

PAM13 = BUILTIN_INSTRUMENTS[0]
NHS = "9434765919"
SPACED = "943 476 5919"
PID = "PID-ZQX-SECRET"
NAME = "Zebedee Quillfeather"
SECRETS = (NHS, SPACED, PID, NAME)


def told(*texts: str) -> list[str]:
    return [s for s in SECRETS if any(s in t for t in texts)]


def full_text(error: BaseException) -> str:
    """Everything a traceback of ``error`` prints (chained causes and notes included)."""
    return "".join(traceback.format_exception(error))


class Leaky(DemoProvider):
    def __init__(self) -> None:
        super().__init__()
        self.id = "leaky"

    def score(self, assessment: Any) -> Any:
        raise ValueError(f"bad row {assessment.patient.id} {assessment.patient.nhs_number} {NAME}")

    def score_batch(self, instrument: Any, codes: Any) -> Any:
        raise ValueError(f"bad row {SPACED}")


class Plugin:
    @hookimpl
    def pamlib_register_scoring_providers(self, register: Any) -> None:
        register(Leaky())

    @hookimpl
    def pamlib_assessment_scored(self, assessment: Any, result: Any) -> None:
        raise RuntimeError(f"audit sink down for {assessment.patient.id} ({NAME})")


@pytest.fixture
def host() -> Iterator[PluginHost]:
    made = PluginHost(load_entry_points=False, disabled=(), plugins={"leaky": Plugin()})
    reset_host(made)
    yield made
    reset_host(None)


def _assessment() -> pamlib.Assessment:
    return pamlib.Assessment(
        "a1",
        pamlib.Patient(PID, nhs_number=NHS),
        PAM13,
        dt.date(2025, 1, 1),
        dict.fromkeys(PAM13.items, 3),
        attributes={"name": NAME},
    )


def test_a_provider_failing_on_an_assessment_is_told_by_type_and_place(host: PluginHost) -> None:
    with pytest.raises(ScoringError) as caught:
        pamlib.score(_assessment(), provider="leaky", host=host)
    assert "ValueError (raised at test_plugin_failure_privacy.py:" in str(caught.value)
    assert caught.value.__cause__ is None
    assert told(str(caught.value), full_text(caught.value)) == []


def test_a_provider_failing_on_a_batch_is_told_with_nhs_numbers_withheld(
    host: PluginHost,
) -> None:
    """A batch is answer codes only: the provider's text is told (it helps its author), with
    any NHS number it found elsewhere withheld, and the exception is not chained."""
    with pytest.raises(ScoringError) as caught:
        pamlib.score_many(PAM13, [[3] * 13], provider="leaky", host=host)
    assert "ValueError: bad row <NHS number> (raised at" in str(caught.value)
    assert caught.value.__cause__ is None
    assert told(full_text(caught.value)) == []


def test_an_observer_of_an_assessment_failing_is_logged_without_its_text(
    host: PluginHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pamlib.score(_assessment(), provider="demo", host=host)
    assert "failed in hook pamlib_assessment_scored: RuntimeError (raised at" in caplog.text
    errors = [str(e) for e in host.errors]
    assert errors
    assert told(caplog.text, *errors) == []


def test_a_failing_python_rule_is_not_chained_to_what_it_raised() -> None:
    @rule("site.leaks", priority=5)
    def leaks(ctx: Context) -> None:
        "Always raises, quoting the context."
        raise ValueError(f"bad {ctx.attributes['name']} {NHS}")

    engine = Engine([leaks], {p.id: p for p in BUILTIN_PATHWAYS})
    with pytest.raises(RuleError) as caught:
        engine.evaluate(Context("a1", level=2, attributes={"name": NAME}))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert "raised ValueError at test_plugin_failure_privacy.py:" in full_text(caught.value)
    assert told(full_text(caught.value)) == []


def test_other_plugin_text_is_kept_with_nhs_numbers_withheld() -> None:
    assert describe_failure(ValueError(f"no key for {SPACED}")) == (
        "ValueError: no key for <NHS number>"
    )
    assert withhold_nhs_numbers("1234567890 and 943-476-5919") == "1234567890 and <NHS number>"
    error = PluginError("p", None, ImportError(f"cannot import {NHS}"))
    assert NHS not in str(error)
    assert "ImportError: cannot import <NHS number>" in str(error)
