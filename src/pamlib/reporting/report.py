"""Build a cohort report from a scored table and write it: JSON summary, HTML, per-patient CSV.

Published outputs are the JSON summary and the HTML report: with ``ReportConfig(publish=True)``
they carry the suppressed figures. The per-patient CSV is row-level data, never a published
output, so :func:`write_patients_csv` refuses to write it for a report built with
``publish=True`` (build a second report without ``publish`` for internal use).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib._version import __version__
from pamlib.errors import ConfigurationError
from pamlib.reporting.columns import ScoredColumns, load_scored
from pamlib.reporting.comparison import Comparison, compare_groups
from pamlib.reporting.config import ReportConfig
from pamlib.reporting.context import ReportContext, SourceFile, report_context
from pamlib.reporting.html import render_html
from pamlib.reporting.measures import EXCLUSION_CODES, STATUS_CODES, Nqf2483, nqf2483
from pamlib.reporting.summary import CohortSummary, summarise
from pamlib.reporting.suppression import suppress
from pamlib.reporting.trajectories import CLASSIFICATION_CODES, Trajectories, link_trajectories
from pamlib.reporting.trends import trend_quarters, trends_json

if TYPE_CHECKING:
    import pyarrow as pa

    from pamlib.tables.scored import ScoredTable

__all__ = [
    "PATIENT_CSV_COLUMNS",
    "SUMMARY_SCHEMA",
    "CohortReport",
    "build_report",
    "summary_json",
    "write_html",
    "write_json",
    "write_patients_csv",
]

#: Identifies the layout of the JSON summary; bumped on incompatible changes.
SUMMARY_SCHEMA = "pamlib.cohort-summary/1"

#: Columns of the per-patient CSV; the ``group_by`` column follows ``patient_id`` when set.
PATIENT_CSV_COLUMNS = (
    "patient_id",
    "n_assessments",
    "baseline_assessment_id",
    "baseline_on",
    "baseline_score",
    "baseline_level",
    "followup_assessment_id",
    "followup_on",
    "followup_score",
    "followup_level",
    "change",
    "transition",
    "classification",
    "nqf2483_status",
    "nqf2483_reason",
    "demo",
)

Target = str | os.PathLike[str] | IO[str]


@attrs.frozen(eq=False, repr=False)
class CohortReport:
    """Everything a cohort report shows, computed once.

    ``figures`` are the full figures; ``released`` is what the published outputs (JSON and
    HTML) carry: the suppressed figures when ``config.publish``, else ``figures`` itself.
    ``demo`` is true when any assessment carries synthetic demonstration scores. ``context``
    says what the report covers and how it was made; ``comparison`` compares the groups of a
    grouped report (from the released figures, so it is suppressed with them).
    """

    config: ReportConfig
    columns: ScoredColumns
    trajectories: Trajectories
    nqf2483: Nqf2483
    figures: CohortSummary
    released: CohortSummary
    demo: bool
    context: ReportContext
    comparison: Comparison | None

    @property
    def cutpoint_sets(self) -> tuple[str, ...]:
        """The cut-point sets of the reported assessments."""
        return self.context.cutpoint_sets

    def __repr__(self) -> str:
        return (
            f"CohortReport(n_patients={len(self.trajectories)}, n_assessments="
            f"{len(self.columns)}, demo={self.demo}, publish={self.config.publish})"
        )


def _columns(
    scored: ScoredColumns | ScoredTable | pa.Table | str | os.PathLike[str],
) -> ScoredColumns:
    if isinstance(scored, ScoredColumns):
        return scored
    if isinstance(scored, str | os.PathLike):
        return load_scored(scored)
    from pamlib.tables.scored import ScoredTable

    if isinstance(scored, ScoredTable):
        return ScoredColumns.from_scored(scored)
    return ScoredColumns.from_arrow(scored)


def build_report(
    scored: ScoredColumns | ScoredTable | pa.Table | str | os.PathLike[str],
    config: ReportConfig | None = None,
    *,
    sources: Iterable[SourceFile | str | os.PathLike[str]] = (),
    rules: Iterable[SourceFile | str | os.PathLike[str]] = (),
    generated_at: dt.datetime | None = None,
) -> CohortReport:
    """Link trajectories, apply NQF #2483, summarise and (when publishing) suppress.

    ``scored`` is a :class:`ScoredColumns`, a :class:`~pamlib.tables.scored.ScoredTable`, a
    pyarrow Table, or the path of a scored CSV, Parquet or JSON Lines file. ``sources`` (the
    input files) and ``rules`` (the tailoring rules files
    the table was tailored with) are listed in the report's context by name, never by path,
    rules files with their sha256; ``generated_at`` defaults to now (UTC).
    """
    config = config or ReportConfig()
    columns = _columns(scored)
    if config.group_by is not None:
        columns.column(config.group_by)  # fail early on an unknown column
    trajectories = link_trajectories(columns, config)
    measure = nqf2483(trajectories)
    figures = summarise(trajectories, measure, config)
    # The context lists provider, calibration and cut-point values: they must not be
    # identifiers either (checked there).
    context = report_context(
        columns, trajectories, config, sources=sources, rules=rules, generated_at=generated_at
    )
    released = suppress(figures, config.suppression) if config.publish else figures
    return CohortReport(
        config=config,
        columns=columns,
        trajectories=trajectories,
        nqf2483=measure,
        figures=figures,
        released=released,
        demo=bool(columns.demo.any()),
        context=context,
        comparison=compare_groups(released, config.suppression.symbol),
    )


def summary_json(report: CohortReport) -> dict[str, Any]:
    """The JSON summary as Python values (what :func:`write_json` writes)."""
    figures = report.released.to_json()
    figures["nqf2483"]["as_specified"] = report.config.nqf2483_as_specified
    quarters = trend_quarters(report.released.values)
    trends = trends_json(figures.pop("trends", {}), quarters)
    return {
        "schema": SUMMARY_SCHEMA,
        "pamlib_version": __version__,
        "demo": report.demo,
        "published": report.config.publish,
        "config": report.config.to_json(),
        "cutpoint_sets": list(report.cutpoint_sets),
        "context": report.context.to_json(),
        **figures,
        **(
            {"site_comparison": report.comparison.to_json()}
            if report.comparison is not None
            else {}
        ),
        "trends": trends,
    }


@contextlib.contextmanager
def _text_out(target: Target) -> Iterator[IO[str]]:
    if isinstance(target, str | os.PathLike):
        with Path(target).open("w", encoding="utf-8", newline="") as fh:
            yield fh
    else:
        yield target


def write_json(report: CohortReport, target: Target) -> None:
    """Write the JSON summary (suppressed when the report was built with ``publish=True``)."""
    text = json.dumps(summary_json(report), indent=2, ensure_ascii=False, allow_nan=False)
    with _text_out(target) as fh:
        fh.write(text + "\n")


def write_html(report: CohortReport, target: Target) -> None:
    """Write the single-file HTML report (suppressed when built with ``publish=True``)."""
    with _text_out(target) as fh:
        fh.write(render_html(report))


def _at_rows(values: NDArray[Any], rows: NDArray[np.int64]) -> list[str]:
    """``values[rows]`` as text, empty where ``rows`` is ``-1``."""
    picked: list[str] = np.where(rows >= 0, values[np.maximum(rows, 0)], "").tolist()
    return picked


def _points(tenths: NDArray[np.int64], present: NDArray[np.bool_]) -> list[str]:
    return [
        f"{t / 10:.1f}" if p else "" for t, p in zip(tenths.tolist(), present.tolist(), strict=True)
    ]


def _labels(codes: NDArray[np.int8], names: Mapping[int, str]) -> list[str]:
    table = {code: str(name) for code, name in names.items()}
    return [table.get(code, "") for code in codes.tolist()]


def write_patients_csv(report: CohortReport, target: Target) -> None:
    """Write one row per patient (columns :data:`PATIENT_CSV_COLUMNS`), sorted by patient id.

    A patient linked by an NHS number that was held in memory only (a raw export scored
    without ``--keep-nhs-number``) has an empty ``patient_id``: the number is written nowhere;
    the assessment ids identify the row.

    Raises :class:`~pamlib.errors.ConfigurationError` for a report built with ``publish=True``:
    row-level data is not a published output.
    """
    if report.config.publish:
        raise ConfigurationError(
            "the per-patient CSV is row-level data, never a published output; "
            "build the report without publish=True to write it"
        )
    traj, cols = report.trajectories, report.columns
    baseline, followup = traj.baseline_row, traj.followup_row
    has_b, has_f = traj.has_baseline, traj.has_followup
    days = np.datetime_as_string(cols.assessed_on).astype(object)
    levels = cols.level.astype(str).astype(object)
    transition = np.char.add(
        np.char.add(traj.baseline_level.astype(str), "->"), traj.followup_level.astype(str)
    )
    demo_row = np.where(has_b, baseline, traj.first_row)
    patient_ids = traj.patient_id.tolist()
    if cols.private_nhs_keys:  # an NHS number the user did not keep is written nowhere
        patient_ids = ["" if str(p).startswith("nhs:") else p for p in patient_ids]
    columns: dict[str, list[str]] = {
        "patient_id": patient_ids,
        "n_assessments": [str(n) for n in traj.n_assessments.tolist()],
        "baseline_assessment_id": _at_rows(cols.assessment_id, baseline),
        "baseline_on": _at_rows(days, baseline),
        "baseline_score": _points(traj.baseline_tenths, has_b),
        "baseline_level": _at_rows(levels, baseline),
        "followup_assessment_id": _at_rows(cols.assessment_id, followup),
        "followup_on": _at_rows(days, followup),
        "followup_score": _points(traj.followup_tenths, has_f),
        "followup_level": _at_rows(levels, followup),
        "change": _points(traj.change_tenths, has_f),
        "transition": np.where(has_f, transition, "").tolist(),
        "classification": _labels(traj.classification, CLASSIFICATION_CODES),
        "nqf2483_status": _labels(report.nqf2483.status, STATUS_CODES),
        "nqf2483_reason": _labels(report.nqf2483.reason, EXCLUSION_CODES),
        "demo": np.where(cols.demo[demo_row], "true", "false").tolist(),
    }
    group_by = report.config.group_by
    if group_by is not None:
        name = group_by if group_by not in columns else "group"
        columns = {
            "patient_id": columns.pop("patient_id"),
            name: traj.group_values(group_by).tolist(),
            **columns,
        }
    from pamlib.formats.output import CsvWriter, protect

    with _text_out(target) as fh:
        writer = CsvWriter(fh)  # spreadsheet-safe, and a bare CR cannot split a row
        writer.writerow([protect(name) for name in columns])
        for row in zip(*columns.values(), strict=True):
            writer.writerow([protect(str(cell)) for cell in row])
