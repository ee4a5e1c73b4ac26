"""FHIR R4: Questionnaires, QuestionnaireResponses, Observations and Bundles as plain JSON.

pamlib builds and reads FHIR as ordinary dictionaries — no model library at run time — and checks
what it writes itself (:func:`check`). The main entry points:

- :func:`questionnaire` — the Questionnaire of an instrument;
- :func:`questionnaire_response` — one assessment as a QuestionnaireResponse;
- :func:`to_bundle` — assessments and results as a transaction or collection Bundle;
- :func:`write_fhir` — the same, written to a file (atomically) or a stream;
- :func:`read_fhir` — assessments out of responses, Bundles or NDJSON, with every reject;
- :func:`check` — pamlib's own checks of a resource or Bundle;
- :class:`ResponseParser` and :class:`Assembler` — one response in, one result's resources out,
  for services that handle a resource at a time.

The ``fhir`` format plugin (:mod:`pamlib.fhir.plugin`) puts the same code behind the format hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamlib._lazy import lazy_exports

if TYPE_CHECKING:
    from pamlib.fhir._bundle import Assembler, BundleSettings, to_bundle, write_fhir
    from pamlib.fhir._checks import check
    from pamlib.fhir._questionnaires import (
        questionnaire,
        questionnaire_canonical,
        questionnaire_url,
    )
    from pamlib.fhir._reader import ReadCounts, read_fhir
    from pamlib.fhir._response import ResponseParser, ResponseRow, questionnaire_response
    from pamlib.fhir.mapping import FhirMapping, QuestionnaireMapping, load_mapping, parse_mapping

# Loaded on first use: the format plugin is registered at host start-up and must stay cheap.
_LAZY: dict[str, str] = {
    "Assembler": "pamlib.fhir._bundle",
    "BundleSettings": "pamlib.fhir._bundle",
    "to_bundle": "pamlib.fhir._bundle",
    "write_fhir": "pamlib.fhir._bundle",
    "check": "pamlib.fhir._checks",
    "FhirMapping": "pamlib.fhir.mapping",
    "QuestionnaireMapping": "pamlib.fhir.mapping",
    "load_mapping": "pamlib.fhir.mapping",
    "parse_mapping": "pamlib.fhir.mapping",
    "questionnaire": "pamlib.fhir._questionnaires",
    "questionnaire_canonical": "pamlib.fhir._questionnaires",
    "questionnaire_url": "pamlib.fhir._questionnaires",
    "ReadCounts": "pamlib.fhir._reader",
    "read_fhir": "pamlib.fhir._reader",
    "ResponseParser": "pamlib.fhir._response",
    "ResponseRow": "pamlib.fhir._response",
    "questionnaire_response": "pamlib.fhir._response",
}
__all__ = [
    "Assembler",
    "BundleSettings",
    "FhirMapping",
    "QuestionnaireMapping",
    "ReadCounts",
    "ResponseParser",
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
