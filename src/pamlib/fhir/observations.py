"""Score and level ``Observation``\\s made from a :class:`~pamlib.results.ScoreResult`.

*Score*: category ``survey``, LOINC 88175-5 (a PAM score's only: others are coded ``score`` in
pamlib's own code system), ``valueQuantity`` in UCUM ``{score}`` rounded to one decimal as
reported, ``derivedFrom`` the response; the provider is the ``method`` and the
provider, calibration, cut-point set, flags and standard errors sit in the pamlib ``scoring``
extension. *Level*: pamlib's ``activation-level`` code (plus SNOMED CT 962851000000103 when asked
for), value ``level-1`` … ``level-4``.

Anything not from a licensed calibration is marked three ways: a ``meta.tag`` (``demo``,
``unlicensed`` or ``raw-only``), a ``note`` saying it is not a PAM score, and status
``preliminary`` — never ``final``. A score Observation's ``code.text`` says it is not a PAM
score too (``Demonstration score …``, ``Unlicensed score …``). A result with no 0–100 score
(raw totals only) gets no score Observation: LOINC 88175-5 means a PAM score, and a raw total
is not one. Its raw total is written instead as a ``raw-total`` Observation coded only in
pamlib's own code system. A level Observation that is not a PAM level says so in ``code.text``
and never carries the SNOMED CT code for the PAM level. Results that were not scored
produce no Observation; the response is still written.
"""

from __future__ import annotations

from typing import Any

from pamlib.fhir.codes import (
    EXT_SCORING,
    LEVEL_SYSTEM,
    LOINC,
    LOINC_PAM_SCORE,
    OBSERVATION_CATEGORY,
    OBSERVATION_CODE_SYSTEM,
    PROVIDER_SYSTEM,
    SNOMED,
    SNOMED_PAM_LEVEL,
    TAG_SYSTEM,
    UCUM,
)
from pamlib.levels import round_half_away
from pamlib.results import Flag, ScoreResult

__all__ = ["level_observation", "raw_total_observation", "score_observation"]

DEMO_NOTE = (
    "DEMONSTRATION ONLY: scored with a synthetic calibration. This is not a Patient Activation "
    "Measure score and must not be used for care."
)
UNLICENSED_NOTE = (
    "NOT A PAM SCORE: scored by a provider without a Patient Activation Measure licence (a "
    "research measure). This is not a licensed Patient Activation Measure score and must not be "
    "used as one."
)
RAW_NOTE = (
    "Raw total of the answered items (not a Patient Activation Measure score): the 0-100 PAM "
    "score needs a licensed scoring provider."
)


#: Flags that make a result not a PAM score (``demo`` results are marked from ``result.demo``).
_NOT_PAM_FLAGS = frozenset({Flag.DEMO, Flag.UNLICENSED, Flag.RAW_ONLY})


def _survey() -> dict[str, Any]:
    return {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}


def _marking(result: ScoreResult, *, raw: bool = False) -> tuple[dict[str, Any], str | None]:
    """(meta, note) for a result: tags and a warning unless the result is licensed."""
    tags: list[dict[str, str]] = []
    note = None
    if _demo(result):
        tags.append({"system": TAG_SYSTEM, "code": "demo", "display": "Demonstration score"})
        note = DEMO_NOTE
    if Flag.UNLICENSED in result.flags:
        tags.append({"system": TAG_SYSTEM, "code": "unlicensed", "display": "Unlicensed score"})
        note = note or UNLICENSED_NOTE
    if raw or Flag.RAW_ONLY in result.flags:
        tags.append({"system": TAG_SYSTEM, "code": "raw-only", "display": "Raw total only"})
        note = note or RAW_NOTE
    return ({"tag": tags} if tags else {}), note


def _demo(result: ScoreResult) -> bool:
    """Whether ``result`` is from a demonstration calibration: ``demo``, or the ``demo`` flag a
    provider set without it (either alone marks it as one)."""
    return result.demo or Flag.DEMO in result.flags


def _not_pam_text(result: ScoreResult, thing: str, pam: str) -> str | None:
    """What an Observation of ``thing`` (``score``) from ``result`` says it is when it is not
    the PAM's (``Demonstration score (not a PAM score)``); ``None`` for the PAM's own."""
    if _demo(result):
        return f"Demonstration {thing} (not a PAM {pam})"
    if Flag.UNLICENSED in result.flags:
        return f"Unlicensed {thing} (not a PAM {pam})"
    if _not_pam(result):
        return f"{thing.capitalize()} (not a PAM {pam})"
    return None


def _not_pam(result: ScoreResult, *, raw: bool = False) -> bool:
    """Whether ``result`` is not a PAM score: demo, unlicensed, or raw totals only."""
    return result.demo or raw or not _NOT_PAM_FLAGS.isdisjoint(result.flags)


def _status(result: ScoreResult, *, raw: bool = False) -> str:
    return "preliminary" if _not_pam(result, raw=raw) else "final"


def _scoring_extension(result: ScoreResult, *, level: bool = False) -> dict[str, Any]:
    # FHIR has no empty strings: an empty one is left out, as if not given.
    parts: list[dict[str, Any]] = [
        {"url": url, "valueString": value}
        for url, value in (
            ("provider", result.provider),
            ("providerVersion", result.provider_version),
        )
        if value
    ]
    if result.calibration_id:
        parts.append({"url": "calibration", "valueString": result.calibration_id})
    if result.calibration_sha256:
        parts.append({"url": "calibrationSha256", "valueString": result.calibration_sha256})
    if result.cutpoint_set and (level or result.level is not None):
        parts.append({"url": "cutpointSet", "valueString": result.cutpoint_set})
    parts.extend({"url": "flag", "valueCode": str(f)} for f in sorted(result.flags))
    if not level:
        parts.append({"url": "nAnswered", "valueInteger": result.n_answered})
        if result.raw_score is not None:
            parts.append({"url": "rawScore", "valueInteger": result.raw_score})
        for name, value in (
            ("standardError", result.score_se),
            ("theta", result.theta),
            ("thetaStandardError", result.theta_se),
        ):
            if value is not None:
                parts.append({"url": name, "valueDecimal": value})
    return {"url": EXT_SCORING, "extension": parts}


def _method(result: ScoreResult) -> dict[str, Any]:
    text = " ".join(filter(None, ("Scored by", result.provider, result.provider_version)))
    if result.calibration_id:
        text += f", calibration {result.calibration_id}"
    if not result.provider:
        return {"text": text}
    return {"coding": [{"system": PROVIDER_SYSTEM, "code": result.provider}], "text": text}


def _observation(
    result: ScoreResult,
    code: dict[str, Any],
    *,
    subject: dict[str, Any],
    derived_from: list[dict[str, Any]],
    effective: str,
    resource_id: str | None,
    raw: bool = False,
    level: bool = False,
) -> dict[str, Any]:
    meta, note = _marking(result, raw=raw)
    resource: dict[str, Any] = {"resourceType": "Observation"}
    if resource_id is not None:
        resource["id"] = resource_id
    if meta:
        resource["meta"] = meta
    resource["extension"] = [_scoring_extension(result, level=level)]
    resource["status"] = _status(result, raw=raw)
    resource["category"] = [_survey()]
    resource["code"] = code
    resource["subject"] = subject
    resource["effectiveDateTime"] = effective
    resource["method"] = _method(result)
    resource["derivedFrom"] = derived_from
    if note:
        resource["note"] = [{"text": note}]
    return resource


def score_observation(
    result: ScoreResult,
    *,
    subject: dict[str, Any],
    response: dict[str, Any],
    effective: str,
    resource_id: str | None = None,
) -> dict[str, Any] | None:
    """The score Observation, or ``None`` when ``result`` has no 0–100 score."""
    if not result.scored or result.score is None:
        return None
    text = _not_pam_text(result, "score", "score")
    if text is None:
        code = {"coding": [{"system": LOINC, "code": LOINC_PAM_SCORE}], "text": "PAM total score"}
    else:  # a system files a LOINC 88175-5 value as the patient's PAM score, whatever its tags
        coding = {"system": OBSERVATION_CODE_SYSTEM, "code": "score", "display": "Score"}
        code = {"coding": [coding], "text": text}
    resource = _observation(
        result,
        code,
        subject=subject,
        derived_from=[response],
        effective=effective,
        resource_id=resource_id,
    )
    resource["valueQuantity"] = {
        "value": round_half_away(result.score, 1),
        "unit": "score",
        "system": UCUM,
        "code": "{score}",
    }
    return resource


def level_observation(
    result: ScoreResult,
    *,
    subject: dict[str, Any],
    response: dict[str, Any],
    score: dict[str, Any] | None,
    effective: str,
    snomed: bool = False,
    resource_id: str | None = None,
) -> dict[str, Any] | None:
    """The level Observation, or ``None`` when ``result`` has no level.

    ``snomed`` adds the UK SNOMED CT code for the PAM level to the Observation's code — of a
    PAM level only: a record system files that code as the patient's PAM level, which a
    demonstration, unlicensed or raw-only level is not. Such a level says so in ``code.text``
    too, as its score Observation does.
    """
    if not result.scored or result.level is None:
        return None
    codings = [
        {
            "system": OBSERVATION_CODE_SYSTEM,
            "code": "activation-level",
            "display": "Activation level",
        }
    ]
    text = _not_pam_text(result, "activation level", "level") or "Activation level"
    if snomed and not _not_pam(result):
        codings.append(
            {
                "system": SNOMED,
                "code": SNOMED_PAM_LEVEL,
                "display": "Patient Activation Measure level",
            }
        )
    derived = [response] + ([score] if score is not None else [])
    resource = _observation(
        result,
        {"coding": codings, "text": text},
        subject=subject,
        derived_from=derived,
        effective=effective,
        resource_id=resource_id,
        level=True,
    )
    level = result.level
    resource["valueCodeableConcept"] = {
        "coding": [{"system": LEVEL_SYSTEM, "code": level.code, "display": f"Level {int(level)}"}],
        "text": level.description,
    }
    return resource


def raw_total_observation(
    result: ScoreResult,
    *,
    subject: dict[str, Any],
    response: dict[str, Any],
    effective: str,
    resource_id: str | None = None,
) -> dict[str, Any] | None:
    """The ``raw-total`` Observation of a result with a raw total but no 0–100 score."""
    if not result.scored or result.score is not None or result.raw_score is None:
        return None
    resource = _observation(
        result,
        {
            "coding": [
                {"system": OBSERVATION_CODE_SYSTEM, "code": "raw-total", "display": "Raw total"}
            ],
            "text": "Raw total of answered items (not a PAM score)",
        },
        subject=subject,
        derived_from=[response],
        effective=effective,
        resource_id=resource_id,
        raw=True,
    )
    resource["valueInteger"] = result.raw_score
    return resource
