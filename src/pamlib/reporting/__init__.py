"""Longitudinal change and cohort reporting for scored PAM assessments.

Read a scored table, link each patient's assessments into a trajectory (baseline, follow-up in
a 6–12 month window, change), apply NQF #2483, summarise the cohort (optionally by site or any
column), suppress small numbers for publication, and write JSON, HTML and a per-patient CSV::

    from pamlib.reporting import ReportConfig, build_report, write_html, write_json, write_pdf

    report = build_report("scored.csv", ReportConfig(group_by="site", publish=True))
    write_json(report, "summary.json")
    write_html(report, "report.html")
    write_pdf(report, "report.pdf")  # the pdf extra

Charts need the ``report`` extra (Matplotlib), PDF the ``pdf`` extra (WeasyPrint); both are
imported only when used.

The rules are in ``docs/reporting.rst`` and in the docstrings of the modules named below.
"""

from pamlib.reporting._columns import ScoredColumns, load_scored
from pamlib.reporting._comparison import (
    Comparison,
    GroupRate,
    compare_groups,
    control_limits,
    wilson_interval,
)
from pamlib.reporting._config import (
    NQF2483_GAIN_POINTS,
    NQF2483_WINDOW_MONTHS,
    ChangeThreshold,
    ReportConfig,
    SuppressionRule,
    parse_threshold,
)
from pamlib.reporting._context import ReportContext, SourceFile, report_context
from pamlib.reporting._headlines import console_lines
from pamlib.reporting._html import render_html
from pamlib.reporting._measures import (
    EXTREME_RESPONSE_FLAG,
    Exclusion,
    MeasureStatus,
    Nqf2483,
    nqf2483,
)
from pamlib.reporting._pdf import PdfUnavailableError, render_pdf, write_pdf
from pamlib.reporting._privacy import IdentifyingColumnError, is_identifier_name
from pamlib.reporting._report import (
    PATIENT_CSV_COLUMNS,
    SUMMARY_SCHEMA,
    CohortReport,
    build_report,
    patients_table,
    summary_json,
    trajectory_table,
    write_html,
    write_json,
    write_patients_csv,
)
from pamlib.reporting._summary import (
    CohortSummary,
    CohortSums,
    Suppressed,
    cohort_sums,
    summarise,
    summary_from_sums,
)
from pamlib.reporting._suppression import hidden_counts, suppress
from pamlib.reporting._trajectories import (
    AssessmentRef,
    Classification,
    Trajectories,
    Trajectory,
    UnknownPatientError,
    add_calendar_months,
    link_trajectories,
)
from pamlib.results import SCORED_TABLE_COLUMNS

__all__ = [
    "EXTREME_RESPONSE_FLAG",
    "NQF2483_GAIN_POINTS",
    "NQF2483_WINDOW_MONTHS",
    "PATIENT_CSV_COLUMNS",
    "SCORED_TABLE_COLUMNS",
    "SUMMARY_SCHEMA",
    "AssessmentRef",
    "ChangeThreshold",
    "Classification",
    "CohortReport",
    "CohortSummary",
    "CohortSums",
    "Comparison",
    "Exclusion",
    "GroupRate",
    "IdentifyingColumnError",
    "MeasureStatus",
    "Nqf2483",
    "PdfUnavailableError",
    "ReportConfig",
    "ReportContext",
    "ScoredColumns",
    "SourceFile",
    "Suppressed",
    "SuppressionRule",
    "Trajectories",
    "Trajectory",
    "UnknownPatientError",
    "add_calendar_months",
    "build_report",
    "cohort_sums",
    "compare_groups",
    "console_lines",
    "control_limits",
    "hidden_counts",
    "is_identifier_name",
    "link_trajectories",
    "load_scored",
    "nqf2483",
    "parse_threshold",
    "patients_table",
    "render_html",
    "render_pdf",
    "report_context",
    "summarise",
    "summary_from_sums",
    "summary_json",
    "suppress",
    "trajectory_table",
    "wilson_interval",
    "write_html",
    "write_json",
    "write_patients_csv",
    "write_pdf",
]
