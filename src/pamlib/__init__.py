"""pamlib: a typed, pluggable core library for the Patient Activation Measure (PAM).

Public names are re-exported here and imported on first use, so ``import pamlib`` stays cheap
for services and command-line tools.
"""

from __future__ import annotations

import importlib

from pamlib import _moved
from pamlib._lazy import lazy_exports
from pamlib._version import __version__

# typing is not imported at run time (a tenth of what ``import pamlib`` cost): mypy reads any
# name TYPE_CHECKING as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from pamlib.assessment import Assessment, Mode
    from pamlib.errors import (
        CalibrationError,
        ConfigurationError,
        FormatError,
        InstrumentError,
        LicenceError,
        LicensedContentError,
        PamlibDeprecationWarning,
        PamlibError,
        PluginError,
        Problem,
        ProviderResultError,
        RuleError,
        ScoringError,
        ValidationError,
    )
    from pamlib.fhir._bundle import write_fhir
    from pamlib.fhir._reader import read_fhir
    from pamlib.hookspecs import hookimpl
    from pamlib.identity import Patient
    from pamlib.instruments import Instrument, InstrumentRegistry
    from pamlib.levels import ActivationLevel, CutpointSet
    from pamlib.pathways import Coding, Pathway, Recommendation, RuleTrace, TailoringOutcome
    from pamlib.pipeline import ScoreRun, ScoreSummary, TableScorer, score_file, score_table
    from pamlib.plugins import PluginHost, get_host
    from pamlib.reporting import build_report
    from pamlib.responses import Response
    from pamlib.results import Flag, ScoreResult, ScoreStatus
    from pamlib.scoring import score, score_many, select_provider
    from pamlib.scoring.calibration import Calibration, load_calibration
    from pamlib.scoring.provider import BaseProvider, BatchScores, Licence, ScoringProvider
    from pamlib.tables.scored import ScoredTable
    from pamlib.tailoring import tailor

# The exceptions and hookimpl too: their modules import attrs and pluggy, most of what an eager
# import cost.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "CalibrationError",
            "ConfigurationError",
            "FormatError",
            "InstrumentError",
            "LicenceError",
            "LicensedContentError",
            "PamlibDeprecationWarning",
            "PamlibError",
            "PluginError",
            "Problem",
            "ProviderResultError",
            "RuleError",
            "ScoringError",
            "ValidationError",
        ],
        "pamlib.errors",
    ),
    "hookimpl": "pamlib.hookspecs",
    "Assessment": "pamlib.assessment",
    "Mode": "pamlib.assessment",
    "Patient": "pamlib.identity",
    "Instrument": "pamlib.instruments",
    "InstrumentRegistry": "pamlib.instruments",
    "ActivationLevel": "pamlib.levels",
    "CutpointSet": "pamlib.levels",
    "Coding": "pamlib.pathways",
    "Pathway": "pamlib.pathways",
    "Recommendation": "pamlib.pathways",
    "RuleTrace": "pamlib.pathways",
    "TailoringOutcome": "pamlib.pathways",
    "read_fhir": "pamlib.fhir._reader",
    "write_fhir": "pamlib.fhir._bundle",
    "ScoreRun": "pamlib.pipeline",
    "ScoreSummary": "pamlib.pipeline",
    "TableScorer": "pamlib.pipeline",
    "score_file": "pamlib.pipeline",
    "score_table": "pamlib.pipeline",
    "build_report": "pamlib.reporting",
    "ScoredTable": "pamlib.tables.scored",
    "tailor": "pamlib.tailoring",
    "PluginHost": "pamlib.plugins",
    "get_host": "pamlib.plugins",
    "Response": "pamlib.responses",
    "Flag": "pamlib.results",
    "ScoreResult": "pamlib.results",
    "ScoreStatus": "pamlib.results",
    "BaseProvider": "pamlib.scoring.provider",
    "BatchScores": "pamlib.scoring.provider",
    "Licence": "pamlib.scoring.provider",
    "ScoringProvider": "pamlib.scoring.provider",
    "score": "pamlib.scoring",
    "score_many": "pamlib.scoring",
    "select_provider": "pamlib.scoring",
    "Calibration": "pamlib.scoring.calibration",
    "load_calibration": "pamlib.scoring.calibration",
}

__all__ = [
    "ActivationLevel",
    "Assessment",
    "BaseProvider",
    "BatchScores",
    "Calibration",
    "CalibrationError",
    "Coding",
    "ConfigurationError",
    "CutpointSet",
    "Flag",
    "FormatError",
    "Instrument",
    "InstrumentError",
    "InstrumentRegistry",
    "Licence",
    "LicenceError",
    "LicensedContentError",
    "Mode",
    "PamlibDeprecationWarning",
    "PamlibError",
    "Pathway",
    "Patient",
    "PluginError",
    "PluginHost",
    "Problem",
    "ProviderResultError",
    "Recommendation",
    "Response",
    "RuleError",
    "RuleTrace",
    "ScoreResult",
    "ScoreRun",
    "ScoreStatus",
    "ScoreSummary",
    "ScoredTable",
    "ScoringError",
    "ScoringProvider",
    "TableScorer",
    "TailoringOutcome",
    "ValidationError",
    "__version__",
    "build_report",
    "get_host",
    "hookimpl",
    "load_calibration",
    "read_fhir",
    "score",
    "score_file",
    "score_many",
    "score_table",
    "select_provider",
    "tailor",
    "write_fhir",
]


_moved.install()
_getattr, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)


def __getattr__(name: str) -> Any:
    # ``pamlib.errors`` and ``pamlib.hookspecs`` were imported with the package and so reachable
    # as attributes; they still are.
    if name in ("errors", "hookspecs"):
        return importlib.import_module(f"pamlib.{name}")
    return _getattr(name)
