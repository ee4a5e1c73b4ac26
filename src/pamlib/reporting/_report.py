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
from pamlib.reporting._columns import ScoredColumns, TextArray, load_scored, take_text
from pamlib.reporting._comparison import Comparison, compare_groups
from pamlib.reporting._config import ReportConfig
from pamlib.reporting._context import ReportContext, SourceFile, _now, report_context
from pamlib.reporting._html import render_html
from pamlib.reporting._measures import EXCLUSION_CODES, STATUS_CODES, Nqf2483, nqf2483
from pamlib.reporting._not_pam import FLAGGED_REASONS
from pamlib.reporting._summary import CohortSummary, summarise
from pamlib.reporting._suppression import suppress
from pamlib.reporting._trajectories import (
    CLASSIFICATION_CODES,
    Trajectories,
    _classify,
    link_trajectories,
)
from pamlib.reporting.trends import trend_quarters, trends_json
from pamlib.results import Flag
from pamlib.tables.scored import release_freed_memory

if TYPE_CHECKING:
    import pyarrow as pa

    from pamlib.levels import CutpointSet
    from pamlib.plugins import PluginHost
    from pamlib.tables.scored import ScoredTable

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


def _flagged(reasons: Iterable[str]) -> tuple[str, ...]:
    """The not-PAM flags given, each once, in the order of ``FLAGGED_REASONS``."""
    given = {str(r) for r in reasons}
    unknown = given - set(FLAGGED_REASONS)
    if unknown:
        raise ConfigurationError(
            f"not_pam_flags are {' and '.join(FLAGGED_REASONS)}, not {', '.join(sorted(unknown))}"
        )
    return tuple(r for r in FLAGGED_REASONS if r in given)


@attrs.frozen(eq=False, repr=False)
class CohortReport:
    """Everything a cohort report shows, computed once.

    ``figures`` are the full figures; ``released`` is what the published outputs (JSON and
    HTML) carry: the suppressed figures when ``config.publish``, else ``figures`` itself.
    ``demo`` is true when any assessment carries synthetic demonstration scores;
    ``not_pam_flags`` holds the other reasons some assessment is not a PAM score (``unlicensed``,
    ``raw-only``: see :attr:`not_pam_reasons`). ``context`` says what the report covers and how
    it was made; ``comparison`` compares the groups of a grouped report (from the released
    figures, so it is suppressed with them).
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
    not_pam_flags: tuple[str, ...] = attrs.field(default=(), converter=_flagged)

    @property
    def not_pam_reasons(self) -> tuple[str, ...]:
        """Why some assessment is not a PAM score, in a fixed order: ``demo`` (a demonstration
        calibration), ``unlicensed`` (a provider without a licence), ``raw-only`` (raw totals,
        no 0–100 score). Empty when every score is a PAM score."""
        return (str(Flag.DEMO),) * self.demo + self.not_pam_flags

    @property
    def not_pam(self) -> bool:
        """Whether any assessment is not a PAM score (for any of :attr:`not_pam_reasons`)."""
        return bool(self.not_pam_reasons)

    @property
    def cutpoint_sets(self) -> tuple[str, ...]:
        """The cut-point sets of the reported assessments."""
        return self.context.cutpoint_sets

    def __repr__(self) -> str:
        return (
            f"CohortReport(n_patients={len(self.trajectories)}, n_assessments="
            f"{len(self.columns)}, demo={self.demo}, publish={self.config.publish})"
        )


def _not_pam_flags(columns: ScoredColumns) -> tuple[str, ...]:
    """The flags besides ``demo`` that some row carries and that make it not a PAM score."""
    return tuple(r for r in FLAGGED_REASONS if len(columns) and bool(columns.has_flag(r).any()))


#: The text columns a report lists in its context (read from a file with the ``group_by`` one).
_CONTEXT_COLUMNS = (
    "provider",
    "provider_version",
    "calibration_id",
    "calibration_sha256",
    "cutpoint_set",
)


def _columns(
    scored: ScoredColumns | ScoredTable | pa.Table | str | os.PathLike[str],
    group_by: str | None,
) -> ScoredColumns:
    if isinstance(scored, ScoredColumns):
        return scored
    if isinstance(scored, str | os.PathLike):
        return load_scored(scored, text=[*_CONTEXT_COLUMNS, *([group_by] if group_by else [])])
    from pamlib.tables.scored import ScoredTable

    if isinstance(scored, ScoredTable):
        return ScoredColumns.from_scored(scored)
    return ScoredColumns.from_arrow(scored)


def _cutpoint_sets(host: PluginHost | None) -> Iterable[CutpointSet]:
    """Every cut-point set the plugins register (pamlib's own among them): what a table's
    levels are checked against, as tailoring and scoring check them."""
    from pamlib.plugins import get_host

    return (host or get_host()).cutpoint_sets()


def _source_name(scored: object) -> str:
    """Where a problem with the table is located: a file by its name, never its path."""
    if isinstance(scored, str | os.PathLike):
        return Path(scored).name
    return "scored table"


def build_report(
    scored: ScoredColumns | ScoredTable | pa.Table | str | os.PathLike[str],
    config: ReportConfig | None = None,
    *,
    sources: Iterable[SourceFile | str | os.PathLike[str]] = (),
    rules: Iterable[SourceFile | str | os.PathLike[str]] = (),
    generated_at: dt.datetime | None = None,
    scoring: Any = None,
    host: PluginHost | None = None,
) -> CohortReport:
    """Link trajectories, apply NQF #2483, summarise and (when publishing) suppress.

    ``scored`` is a :class:`ScoredColumns`, a :class:`~pamlib.tables.scored.ScoredTable`, a
    pyarrow Table, or the path of a scored CSV, Parquet or JSON Lines file. ``sources`` (the
    input files) and ``rules`` (the tailoring rules files
    the table was tailored with) are listed in the report's context by name, never by path,
    rules files with their sha256; ``generated_at`` defaults to now (UTC), or to
    ``SOURCE_DATE_EPOCH`` when that is set (a value that is not whole seconds in ASCII digits,
    up to the year 9999, is a :class:`~pamlib.errors.ConfigurationError`). ``scoring`` is the
    :class:`~pamlib.pipeline.ScoreSummary` of scoring the raw export the table came from
    (``run.summary``): its counts, rejected records included, are listed in the context.

    A scored row whose ``level`` is not the level of its ``score`` at its ``cutpoint_set`` (one
    the plugins of ``host`` register; default: this process's) is refused as tailoring refuses
    it, a :class:`~pamlib.errors.ValidationError` listing such rows (see
    :meth:`~pamlib.reporting.ScoredColumns.check_levels`): the figures would count it at the
    wrong level.
    """
    config = ReportConfig() if config is None else config
    if not isinstance(config, ReportConfig):
        raise ConfigurationError(f"config is a ReportConfig, not a {type(config).__name__}")
    when: object = generated_at  # as called, whatever the annotation says
    if when is not None and not isinstance(when, dt.datetime):
        kind = type(when).__name__
        raise ConfigurationError(f"generated_at is a datetime, not a {kind}")
    # SOURCE_DATE_EPOCH read before the table: a value it cannot use stops the run at once
    generated_at = _now() if generated_at is None else generated_at
    columns = _columns(scored, config.group_by)
    if config.group_by is not None:
        columns.column(config.group_by)  # fail early on an unknown column
    columns.check_levels(_cutpoint_sets(host), source=_source_name(scored))
    trajectories = link_trajectories(columns, config)
    release_freed_memory()  # what linking sorted with, before the figures need more
    measure = nqf2483(trajectories)
    figures = summarise(trajectories, measure, config)
    release_freed_memory()  # the summary's temporaries, before the context needs more
    # The context lists provider, calibration and cut-point values: they must not be
    # identifiers either (checked there).
    context = report_context(
        columns,
        trajectories,
        config,
        sources=sources,
        rules=rules,
        generated_at=generated_at,
        scoring=scoring,
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
        not_pam_flags=_not_pam_flags(columns),
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
        "not_pam": report.not_pam,
        "not_pam_reasons": list(report.not_pam_reasons),
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
    """A path is written to a temporary file beside it and renamed over the name only when
    the writer has finished (as :func:`~pamlib.reporting.write_pdf` does): an error, a full
    disk or Ctrl-C leaves the previous file as it was and no partial file under the name."""
    if isinstance(target, str | os.PathLike):
        import io

        from pamlib.formats.guard import AtomicTarget

        out = AtomicTarget(target)
        try:
            text = io.TextIOWrapper(out.stream, encoding="utf-8", newline="")
            yield text
            text.flush()
            text.detach()  # the target owns the binary stream
            out.commit()
        except BaseException:
            out.discard()
            raise
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


def _labels(codes: NDArray[Any], names: Mapping[int, str]) -> pa.Array:
    """Each code's name (``""`` for a code with none) as Arrow text: the names are made
    once, and each row takes its code's."""
    from pamlib.formats._arrow import from_numpy, text_array

    table = [""] * (max([*names, int(codes.max(initial=0))]) + 1)
    for code, name in names.items():
        table[code] = str(name)
    return text_array(table).take(from_numpy(codes.astype(np.intp)))


def patients_table(report: CohortReport) -> pa.Table:
    """One row per patient (columns :data:`PATIENT_CSV_COLUMNS`, typed), sorted by patient key:
    what :func:`write_patients_csv` writes, as an Arrow table built column by column.

    Dates are ``date32``, scores and change ``float64`` (tenths of a point), levels ``int8``,
    ``n_assessments`` ``int32``; null where a patient has no baseline or follow-up. A patient
    linked by an NHS number held in memory only has an empty ``patient_id``.

    Raises :class:`~pamlib.errors.ConfigurationError` for a report built with ``publish=True``:
    row-level data is not a published output.
    """

    if report.config.publish:
        raise ConfigurationError(
            "per-patient data is row-level, never a published output; "
            "build the report without publish=True to write it"
        )
    return trajectory_table(report.trajectories, report.nqf2483, report.config.group_by)


def trajectory_table(traj: Trajectories, measure: Nqf2483, group_by: str | None) -> pa.Table:
    """:func:`patients_table` from the trajectories and the measure alone (no summary): for
    parts of a cohort computed apart, such as a Spark job's groups of patients."""
    return _patient_rows(traj, measure, group_by, slice(0, len(traj)))


def _patient_rows(
    traj: Trajectories,
    measure: Nqf2483,
    group_by: str | None,
    part: slice,
    group: tuple[TextArray, NDArray[np.signedinteger[Any]]] | None = None,
) -> pa.Table:
    """The rows of :func:`trajectory_table` for the patients ``part``; ``group`` is
    ``group_by``'s :meth:`~ScoredColumns.column_codes` when already made."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import from_numpy, scalar, text_array

    cols = traj.columns
    baseline_row, followup_row = traj.baseline_row[part], traj.followup_row[part]
    has_b, has_f = baseline_row >= 0, followup_row >= 0
    baseline_level, followup_level = traj.baseline_level[part], traj.followup_level[part]
    baseline_tenths, followup_tenths = traj.baseline_tenths[part], traj.followup_tenths[part]

    def ids(rows: NDArray[np.signedinteger[Any]], present: NDArray[np.bool_]) -> pa.Array:
        taken = take_text(cols.assessment_id, np.maximum(rows, 0))
        return pc.if_else(from_numpy(present), taken, scalar(None, pa.string()))

    def days(rows: NDArray[np.signedinteger[Any]], present: NDArray[np.bool_]) -> pa.Array:
        days = np.asarray(cols.assessed_on[np.maximum(rows, 0)], dtype="datetime64[D]")
        return from_numpy(days, ~present)

    def points(tenths: NDArray[np.signedinteger[Any]], present: NDArray[np.bool_]) -> pa.Array:
        return from_numpy(tenths / 10, ~present)

    def level(levels: NDArray[np.signedinteger[Any]], present: NDArray[np.bool_]) -> pa.Array:
        return from_numpy(levels.astype(np.int8), ~present)

    patient_ids = traj.patient_id[part]
    if cols.private_nhs_keys:  # an NHS number the user did not keep is written nowhere
        nhs = pc.starts_with(patient_ids, "nhs:")
        patient_ids = pc.if_else(nhs, scalar("", pa.string()), patient_ids)
    transitions = {
        10 * b + f: f"{b}->{f}" for b in range(5) for f in range(5) if b and f
    }  # levels 1-4 at both ends
    transition = _labels(np.where(has_f, 10 * baseline_level + followup_level, 0), transitions)
    demo_row = np.where(has_b, baseline_row, traj.first_row[part])
    change = np.where(has_f, followup_tenths.astype(np.int64) - baseline_tenths, 0)
    classification = np.where(has_f, _classify(change, traj.config.threshold_tenths), 0)
    columns: dict[str, pa.Array] = {
        "patient_id": patient_ids,
        "n_assessments": from_numpy(traj.n_assessments[part].astype(np.int32)),
        "baseline_assessment_id": ids(baseline_row, has_b),
        "baseline_on": days(baseline_row, has_b),
        "baseline_score": points(baseline_tenths, has_b),
        "baseline_level": level(baseline_level, has_b),
        "followup_assessment_id": ids(followup_row, has_f),
        "followup_on": days(followup_row, has_f),
        "followup_score": points(followup_tenths, has_f),
        "followup_level": level(followup_level, has_f),
        "change": points(change, has_f),
        "transition": transition,
        "classification": _labels(classification, CLASSIFICATION_CODES),
        "nqf2483_status": _labels(measure.status[part], STATUS_CODES),
        "nqf2483_reason": _labels(measure.reason[part], EXCLUSION_CODES),
        "demo": from_numpy(
            np.asarray(cols.demo[demo_row] if len(demo_row) else np.zeros(0), dtype=np.bool_)
        ),
    }
    if group_by is not None:
        name = group_by if group_by not in columns else "group"
        distinct, codes = group if group is not None else cols.column_codes(group_by)
        values = text_array(distinct.tolist()).take(from_numpy(codes[demo_row]))
        columns = {"patient_id": columns.pop("patient_id"), name: values, **columns}
    return pa.table(columns)


def _csv_text(column: pa.Array) -> list[str]:
    """A per-patient column as the CSV writes it: one decimal for points, ``true``/``false``,
    ISO dates, ``""`` for null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import scalar

    if pa.types.is_floating(column.type):
        return ["" if v is None else f"{v:.1f}" for v in column.to_pylist()]
    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return [str(v) for v in pc.fill_null(column, scalar("", pa.string())).to_pylist()]


#: Patients formatted and written at a time: the CSV's memory does not grow with the cohort.
_CSV_ROWS = 8_192


def write_patients_csv(report: CohortReport, target: Target) -> None:
    """Write :func:`patients_table` as CSV (columns :data:`PATIENT_CSV_COLUMNS`, the
    ``group_by`` column after ``patient_id``), spreadsheet-safe, a block of rows at a time.

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
    from pamlib.formats.output import CsvWriter, protect

    release_freed_memory()  # what the figures and pages were made with, before the rows
    traj, group_by = report.trajectories, report.config.group_by
    # The rows a block of patients at a time: the whole table at once would hold every
    # patient's strings (ids, labels, the group) together.
    group = None if group_by is None else traj.columns.column_codes(group_by)
    with _text_out(target) as fh:
        writer = CsvWriter(fh)  # spreadsheet-safe, and a bare CR cannot split a row
        for start in range(0, max(len(traj), 1), _CSV_ROWS):
            part = slice(start, min(start + _CSV_ROWS, len(traj)))
            block = _patient_rows(traj, report.nqf2483, group_by, part, group)
            if start == 0:
                writer.writerow([protect(name) for name in block.column_names])
            text = [_csv_text(block.column(i).combine_chunks()) for i in range(block.num_columns)]
            for row in zip(*text, strict=True):
                writer.writerow([protect(cell) for cell in row])
