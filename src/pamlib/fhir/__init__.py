"""FHIR R4: Questionnaires, QuestionnaireResponses, Observations and Bundles as plain JSON.

pamlib builds and reads FHIR as ordinary dictionaries — no model library at run time — and checks
what it writes itself (:mod:`pamlib.fhir.checks`). The main entry points:

- :func:`questionnaire` — the Questionnaire of an instrument;
- :func:`questionnaire_response` — one assessment as a QuestionnaireResponse;
- :func:`to_bundle` — assessments and results as a transaction or collection Bundle;
- :func:`write_fhir` — the same, written to a file (atomically) or a stream;
- :func:`read_fhir` — assessments out of responses, Bundles or NDJSON, with every reject;
- :func:`check` — pamlib's own checks of a resource or Bundle.

The ``fhir`` format plugin (:mod:`pamlib.fhir.plugin`) puts the same code behind the format hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamlib._lazy import lazy_exports

if TYPE_CHECKING:
    from pamlib.fhir.bundle import BundleSettings, to_bundle, write_fhir
    from pamlib.fhir.checks import check
    from pamlib.fhir.mapping import FhirMapping, QuestionnaireMapping, load_mapping, parse_mapping
    from pamlib.fhir.questionnaires import (
        questionnaire,
        questionnaire_canonical,
        questionnaire_url,
    )
    from pamlib.fhir.reader import ReadCounts, read_fhir
    from pamlib.fhir.response import ResponseRow, questionnaire_response

# Loaded on first use: the format plugin is registered at host start-up and must stay cheap.
_LAZY: dict[str, str] = {
    "BundleSettings": "pamlib.fhir.bundle",
    "to_bundle": "pamlib.fhir.bundle",
    "write_fhir": "pamlib.fhir.bundle",
    "check": "pamlib.fhir.checks",
    "FhirMapping": "pamlib.fhir.mapping",
    "QuestionnaireMapping": "pamlib.fhir.mapping",
    "load_mapping": "pamlib.fhir.mapping",
    "parse_mapping": "pamlib.fhir.mapping",
    "questionnaire": "pamlib.fhir.questionnaires",
    "questionnaire_canonical": "pamlib.fhir.questionnaires",
    "questionnaire_url": "pamlib.fhir.questionnaires",
    "ReadCounts": "pamlib.fhir.reader",
    "read_fhir": "pamlib.fhir.reader",
    "ResponseRow": "pamlib.fhir.response",
    "questionnaire_response": "pamlib.fhir.response",
}
__all__ = [
    "BundleSettings",
    "FhirMapping",
    "QuestionnaireMapping",
    "ReadCounts",
    "ResponseRow",
    "check",
    "load_mapping",
    "parse_mapping",
    "questionnaire",
    "questionnaire_canonical",
    "questionnaire_response",
    "questionnaire_url",
    "read_fhir",
    "to_bundle",
    "write_fhir",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
