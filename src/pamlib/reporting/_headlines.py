"""The headline figures of a report, each with its denominator, in one wording for every output.

The HTML cards and the console summaries of ``pamlib report`` and ``pamlib demo`` are built
from the same :class:`Headline` sentences, so a figure printed on the console is the report's
figure, under the report's name. A sentence is a sequence of plain text and figures (a key of
the summary and its value): the HTML marks each figure with its key, the console prints it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from pamlib.reporting._charts import display
from pamlib.reporting._config import NQF2483_GAIN_POINTS, ReportConfig
from pamlib.reporting._measures import Exclusion
from pamlib.reporting._summary import CohortSummary, Value


@attrs.frozen
class Figure:
    """A figure in a sentence: its summary key and its (possibly suppressed) value."""

    key: str
    value: Value


@attrs.frozen
class Headline:
    """One headline sentence; its first part is the figure a card shows large."""

    parts: Sequence[Figure | str]

    def text(self) -> str:
        """The sentence as plain text, figures written as in the report."""
        return "".join(display(p.value) if isinstance(p, Figure) else p for p in self.parts)


def _fig(summary: CohortSummary, prefix: str, key: str) -> Figure:
    return Figure(prefix + key, summary[prefix + key])


def headlines(summary: CohortSummary, config: ReportConfig, prefix: str = "") -> list[Headline]:
    """The headline sentences of one scope (``prefix`` ``""`` for the whole cohort)."""

    def f(key: str) -> Figure:
        return _fig(summary, prefix, key)

    window = f"{config.min_months}–{config.max_months} months"
    gain = f"{NQF2483_GAIN_POINTS:g}"
    return [
        Headline((f("n_patients"), " patients")),
        Headline((f("n_assessments"), " assessments")),
        Headline((f("n_baseline"), " with a scored baseline, of ", f("n_patients"), " patients")),
        Headline(
            (
                f("n_followup"),
                f" with a scored follow-up {window} after baseline, of ",
                f("n_baseline"),
                " with a scored baseline",
            )
        ),
        Headline(
            (
                f("nqf2483.rate_pct"),
                f" % gained ≥ {gain} points: ",
                f("nqf2483.numerator"),
                " of ",
                f("nqf2483.denominator"),
                " eligible (NQF #2483-style measure)",
            )
        ),
    ]


def exclusion_lines(summary: CohortSummary, prefix: str = "") -> list[Headline]:
    """Patients outside the measure, one sentence per reason, in words (codes stay in JSON)."""
    return [
        Headline((_fig(summary, prefix, f"nqf2483.excluded.{e}"), f" {e.words}")) for e in Exclusion
    ]


#: What each reason an assessment is not used says, in words.
NOT_USED_WORDS = {
    "not-scored": "not scored",
    "no-score-or-level": "scored without a 0–100 score and a level",
}


def not_used_lines(summary: CohortSummary, prefix: str = "") -> list[Headline]:
    """Assessments left out of every trajectory, one sentence per reason: each one counted."""
    return [
        Headline((_fig(summary, prefix, f"assessments_not_used.{reason}"), f" {words}"))
        for reason, words in NOT_USED_WORDS.items()
    ]


def console_lines(summary: CohortSummary, config: ReportConfig) -> list[str]:
    """The cohort's headline sentences, exclusions and assessments not used, as the console
    summaries print them."""
    lines = [h.text() for h in headlines(summary, config)]
    lines.append("Not eligible for the measure:")
    lines += [f"  {h.text()}" for h in exclusion_lines(summary)]
    used = _fig(summary, "", "n_assessments_used")
    lines.append(f"Assessments used: {display(used.value)}; not used:")
    lines += [f"  {h.text()}" for h in not_used_lines(summary)]
    return lines
