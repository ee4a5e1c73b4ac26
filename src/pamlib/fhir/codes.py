"""Canonical URLs, code systems and extension URLs that pamlib's FHIR resources use.

pamlib speaks FHIR **R4** (4.0.1). Everything pamlib defines lives under one base,
:data:`BASE`; the URLs are identifiers (they need not resolve). The answer codes ``1``–``4`` and
``NA`` are pamlib's own, with the public category labels; item wording is never here.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ANSWER_DISPLAY",
    "ANSWER_SYSTEM",
    "ASSESSMENT_ID_SYSTEM",
    "BASE",
    "EXT_ASSESSMENT",
    "EXT_SCORING",
    "FHIR_VERSION",
    "ITEM_CONTROL",
    "ITEM_CONTROL_SYSTEM",
    "ITEM_WEIGHT",
    "LEVEL_SYSTEM",
    "LOINC",
    "LOINC_PAM_SCORE",
    "NA_CODE",
    "NHS_NUMBER_SYSTEM",
    "OBSERVATION_CATEGORY",
    "OBSERVATION_CODE_SYSTEM",
    "ORDINAL_VALUE",
    "PATIENT_ID_SYSTEM",
    "PROVIDER_SYSTEM",
    "QUESTIONNAIRE_BASE",
    "SNOMED",
    "SNOMED_PAM_LEVEL",
    "TAG_SYSTEM",
    "UCUM",
    "WEIGHT_EXTENSIONS",
]

#: The FHIR release pamlib reads and writes.
FHIR_VERSION: Final = "4.0.1"

#: Base of every canonical URL pamlib defines.
BASE: Final = "https://pamlib.org/fhir"
#: A Questionnaire's canonical URL is this plus ``/`` and the instrument id (``…/PAM-13``).
QUESTIONNAIRE_BASE: Final = f"{BASE}/Questionnaire"
#: Answer codes ``1``–``4`` (the agreement categories) and ``NA`` (not applicable).
ANSWER_SYSTEM: Final = f"{BASE}/CodeSystem/agreement"
#: Activation level codes ``level-1`` … ``level-4``.
LEVEL_SYSTEM: Final = f"{BASE}/CodeSystem/activation-level"
#: Observation codes pamlib defines: ``activation-level``, ``raw-total`` and ``score`` (a 0–100
#: score that is not a PAM score: demonstration or unlicensed, never LOINC 88175-5).
OBSERVATION_CODE_SYSTEM: Final = f"{BASE}/CodeSystem/observation"
#: ``meta.tag`` codes: ``demo`` (synthetic calibration), ``unlicensed`` (a calibration without
#: a licence) and ``raw-only`` (raw totals).
TAG_SYSTEM: Final = f"{BASE}/CodeSystem/tag"
#: Scoring provider ids, used in ``Observation.method``.
PROVIDER_SYSTEM: Final = f"{BASE}/CodeSystem/scoring-provider"
#: Default identifier system for assessment ids (``QuestionnaireResponse.identifier``).
ASSESSMENT_ID_SYSTEM: Final = f"{BASE}/Id/assessment-id"
#: Default identifier system for pseudonymous patient ids; sites should configure their own.
PATIENT_ID_SYSTEM: Final = f"{BASE}/Id/patient-id"
#: Extension on a QuestionnaireResponse: administration ``mode``, ``site``, ``attribute``\\s.
EXT_ASSESSMENT: Final = f"{BASE}/StructureDefinition/assessment"
#: Extension on an Observation: provider, version, calibration, cut-point set, flags, SEs.
EXT_SCORING: Final = f"{BASE}/StructureDefinition/scoring"

#: NHS number identifier system (England and Wales).
NHS_NUMBER_SYSTEM: Final = "https://fhir.nhs.uk/Id/nhs-number"
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
#: LOINC: total score of the PAM (PAM-FACTS, "Instruments").
LOINC_PAM_SCORE: Final = "88175-5"
#: SNOMED CT UK: Patient Activation Measure level (observable entity).
SNOMED_PAM_LEVEL: Final = "962851000000103"

#: R4 core extension giving an answer option's numeric weight.
ORDINAL_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
#: The R5 name of the same idea; read, never written.
ITEM_WEIGHT: Final = "http://hl7.org/fhir/StructureDefinition/itemWeight"
#: Extensions that carry an answer weight, in the order they are looked for.
WEIGHT_EXTENSIONS: Final = (ORDINAL_VALUE, ITEM_WEIGHT)
ITEM_CONTROL: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM: Final = "http://hl7.org/fhir/questionnaire-item-control"

#: The answer code for *not applicable* in :data:`ANSWER_SYSTEM`.
NA_CODE: Final = "NA"
#: Display text of each answer, keyed by column code (public category labels).
ANSWER_DISPLAY: Final = {
    1: "Disagree strongly",
    2: "Disagree",
    3: "Agree",
    4: "Agree strongly",
    -1: "Not applicable",
}
