"""Tailoring: intervention pathways, local rules and reassessment.

Rules — pamlib's defaults, a site's TOML files and Python rules from plugins — are evaluated
together by one :class:`Engine` over the :class:`Context` of an assessment, giving a
:class:`~pamlib.pathways.TailoringOutcome`: recommended pathways with their settings and notes,
suppressed ones, a reassessment date and the trace of every rule involved.

Names are imported on first use, so loading the built-in plugins stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamlib._lazy import lazy_exports

if TYPE_CHECKING:
    from pamlib.tailoring._conditions import Conditions
    from pamlib.tailoring.catalogue import BUILTIN_PATHWAYS
    from pamlib.tailoring.columns import ContextColumns
    from pamlib.tailoring.context import STANDARD_COLUMNS, Context
    from pamlib.tailoring.default_rules import DEFAULT_RULES, EXAMPLE_SITE_RULES
    from pamlib.tailoring.engine import Engine, build_engine, explain, outcome_columns
    from pamlib.tailoring.reassessment import (
        PatientDue,
        ReassessmentPolicy,
        add_months,
        overdue,
        reassessment_status,
    )
    from pamlib.tailoring.rows import (
        RECOMMENDATION_COLUMNS,
        apply_recommendations,
        recommend_rows,
        recommendation_columns,
        tailor,
        tailor_batch,
    )
    from pamlib.tailoring.rules import (
        Action,
        FileRule,
        Note,
        Reassess,
        Recommend,
        Rule,
        RuleFile,
        RuleSource,
        SetContactFrequency,
        SetIntensity,
        Suppress,
        load_rules,
        parse_rules,
        rule,
    )

_LAZY: dict[str, str] = {
    "BUILTIN_PATHWAYS": "catalogue",
    "ContextColumns": "columns",
    "Conditions": "conditions",
    "STANDARD_COLUMNS": "context",
    "Context": "context",
    "DEFAULT_RULES": "default_rules",
    "EXAMPLE_SITE_RULES": "default_rules",
    "Engine": "engine",
    "build_engine": "engine",
    "explain": "engine",
    "outcome_columns": "engine",
    "PatientDue": "reassessment",
    "ReassessmentPolicy": "reassessment",
    "add_months": "reassessment",
    "overdue": "reassessment",
    "reassessment_status": "reassessment",
    "RECOMMENDATION_COLUMNS": "rows",
    "apply_recommendations": "rows",
    "recommend_rows": "rows",
    "recommendation_columns": "rows",
    "tailor": "rows",
    "tailor_batch": "rows",
    "Action": "rules",
    "FileRule": "rules",
    "Note": "rules",
    "Reassess": "rules",
    "Recommend": "rules",
    "Rule": "rules",
    "RuleFile": "rules",
    "RuleSource": "rules",
    "SetContactFrequency": "rules",
    "SetIntensity": "rules",
    "Suppress": "rules",
    "load_rules": "rules",
    "parse_rules": "rules",
    "rule": "rules",
}

__all__ = [
    "BUILTIN_PATHWAYS",
    "DEFAULT_RULES",
    "EXAMPLE_SITE_RULES",
    "RECOMMENDATION_COLUMNS",
    "STANDARD_COLUMNS",
    "Action",
    "Conditions",
    "Context",
    "ContextColumns",
    "Engine",
    "FileRule",
    "Note",
    "PatientDue",
    "Reassess",
    "ReassessmentPolicy",
    "Recommend",
    "Rule",
    "RuleFile",
    "RuleSource",
    "SetContactFrequency",
    "SetIntensity",
    "Suppress",
    "add_months",
    "apply_recommendations",
    "build_engine",
    "explain",
    "load_rules",
    "outcome_columns",
    "overdue",
    "parse_rules",
    "reassessment_status",
    "recommend_rows",
    "recommendation_columns",
    "rule",
    "tailor",
    "tailor_batch",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
