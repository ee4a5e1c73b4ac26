"""FHIR ``Questionnaire`` resources for pamlib's instruments — structure, never licensed wording.

One Questionnaire per instrument version: canonical URL ``{QUESTIONNAIRE_BASE}/{instrument id}``
with the instrument's version, one ``choice`` item per item id (``linkId`` = item id), the four
agreement categories weighted 1–4 with the R4 ``ordinalValue`` extension, and *not applicable*
as an option with no weight. Item text is neutral placeholder text unless a licensed provider
answers the ``pamlib_item_text`` hook; a placeholder Questionnaire has status ``draft`` because
it cannot be shown to patients as it is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pamlib.fhir.codes import (
    ANSWER_DISPLAY,
    ANSWER_SYSTEM,
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    LOINC,
    NA_CODE,
    ORDINAL_VALUE,
    QUESTIONNAIRE_BASE,
)

if TYPE_CHECKING:
    from pamlib.instruments import Instrument
    from pamlib.plugins import PluginHost

_NOT_ID = re.compile(r"[^A-Za-z0-9\-.]")
#: A language tag (BCP 47's shape: ``en``, ``en-GB``, ``zh-Hant-TW``), as FHIR's ``language``
#: takes; anything else (an empty string, spaces, control codes) would be invalid FHIR.
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z", re.ASCII)
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


def questionnaire_url(instrument: Instrument) -> str:
    """The canonical URL of ``instrument``'s Questionnaire (without the version)."""
    return f"{QUESTIONNAIRE_BASE}/{instrument.id}"


def questionnaire_canonical(instrument: Instrument) -> str:
    """``url|version``, as a QuestionnaireResponse's ``questionnaire`` element gives it."""
    return f"{questionnaire_url(instrument)}|{instrument.version}"


def placeholder_text(instrument: Instrument, item_id: str) -> str:
    """Neutral text shown where licensed wording would be.

    >>> from pamlib.instruments import BUILTIN_INSTRUMENTS
    >>> placeholder_text(BUILTIN_INSTRUMENTS[0], "pam13.01")
    'Item 1 of PAM-13 — wording supplied by a licensed provider'
    """
    position = instrument.index(item_id) + 1
    return f"Item {position} of {instrument.id} — wording supplied by a licensed provider"


def answer_coding(code: int, *, weighted: bool = True) -> dict[str, Any]:
    """The ``Coding`` of one answer (column code 1–4, or -1 for not applicable).

    ``weighted`` adds the ``ordinalValue`` extension to a category, as renderers copy it onto
    the answers they export.
    """
    coding: dict[str, Any] = {
        "system": ANSWER_SYSTEM,
        "code": NA_CODE if code == -1 else str(code),
        "display": ANSWER_DISPLAY[code],
    }
    if weighted and code > 0:
        coding["extension"] = [{"url": ORDINAL_VALUE, "valueDecimal": code}]
    return coding


def _answer_options(n_categories: int) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = [
        {
            # R4 puts the weight on the option (context Questionnaire.item.answerOption).
            "extension": [{"url": ORDINAL_VALUE, "valueDecimal": c}],
            "valueCoding": answer_coding(c, weighted=False),
        }
        for c in range(1, n_categories + 1)
    ]
    options.append({"valueCoding": answer_coding(-1, weighted=False)})
    return options


def questionnaire(
    instrument: Instrument | str,
    *,
    language: str = "en",
    host: PluginHost | None = None,
) -> dict[str, Any]:
    """The Questionnaire for ``instrument`` (an :class:`~pamlib.instruments.Instrument` or id).

    Item text comes from the ``pamlib_item_text`` hook for ``language``; with no licensed
    provider installed it is placeholder text and the status is ``draft``. A ``language`` that
    is not a language tag is a :class:`~pamlib.errors.ValidationError`.

    >>> q = questionnaire("PAM-13")
    >>> q["url"], q["version"], q["status"], len(q["item"])
    ('https://pamlib.org/fhir/Questionnaire/PAM-13', '1', 'draft', 13)
    >>> [o["valueCoding"]["code"] for o in q["item"][0]["answerOption"]]
    ['1', '2', '3', '4', 'NA']
    """
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        from pamlib.errors import Problem, ValidationError

        raise ValidationError(
            "cannot make the Questionnaire",
            [Problem("language", "language", "not a language tag such as en or en-GB")],
        )
    if host is None:
        from pamlib.plugins import get_host

        host = get_host()
    if isinstance(instrument, str):
        instrument = host.instruments().get(instrument)
    licensed = host.item_text(instrument, language)
    texts = licensed or {}
    items: list[dict[str, Any]] = []
    for item_id in instrument.items:
        item: dict[str, Any] = {
            "extension": [
                {
                    "url": ITEM_CONTROL,
                    "valueCodeableConcept": {
                        "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "radio-button"}]
                    },
                }
            ],
            "linkId": item_id,
        }
        loinc = instrument.item_loinc.get(item_id)
        if loinc:
            item["code"] = [{"system": LOINC, "code": loinc}]
        item["text"] = texts.get(item_id) or placeholder_text(instrument, item_id)
        item["type"] = "choice"
        item["required"] = False
        item["answerOption"] = _answer_options(instrument.n_categories)
        items.append(item)
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": _NOT_ID.sub("-", f"pamlib-{instrument.id}-{instrument.version}")[:64],
        "language": language,
        "url": questionnaire_url(instrument),
        "version": instrument.version,
        "name": "Pamlib" + _NOT_NAME.sub("", instrument.id),
        "title": instrument.name,
        "status": "active" if licensed else "draft",
        "subjectType": ["Patient"],
        "description": (
            "Structure of this instrument for data capture."
            if licensed
            else "Structure only: item wording is supplied at run time by a licensed provider; "
            "the text shown here is a placeholder."
        ),
    }
    if instrument.loinc_panel:
        resource["code"] = [{"system": LOINC, "code": instrument.loinc_panel}]
    resource["item"] = items
    return resource
