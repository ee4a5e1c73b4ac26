"""Why a report's scores are not the PAM, in one wording for every output.

A row of a scored table is *not PAM* when it holds demonstration scores (the one rule of
:func:`~pamlib.tailoring.context.demo_evidence`), or when its ``flags`` say ``unlicensed`` (a
calibration without a licence: research measures, not licensed PAM scores) or ``raw-only`` (raw
totals, no 0–100 score). One such row makes the whole report not PAM: the HTML banner and
watermark, the PDF margins, the JSON summary's ``not_pam`` and ``not_pam_reasons`` and the note
``pamlib report`` prints all name the reasons found, in the order of :data:`NOT_PAM_REASONS`.
Demonstration scores keep their own, older marking unchanged; the other reasons are added beside
it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pamlib.results import Flag

#: The reasons a row is not PAM, in the order every output lists them.
NOT_PAM_REASONS: Final = (str(Flag.DEMO), str(Flag.UNLICENSED), str(Flag.RAW_ONLY))

#: The reasons found from a row's ``flags`` (demonstration status has its own rule).
FLAGGED_REASONS: Final = (str(Flag.UNLICENSED), str(Flag.RAW_ONLY))

#: What each reason means, as the HTML banner and the PDF margins say it.
REASON_WORDS: Final = {
    str(Flag.DEMO): "synthetic scores from a demonstration calibration",
    str(Flag.UNLICENSED): (
        "scores from a provider without a PAM licence (research measures, not licensed PAM scores)"
    ),
    str(Flag.RAW_ONLY): "raw totals of the answered items, not 0–100 PAM scores",
}

#: The note ``pamlib report`` prints for each reason (the demonstration one as it always was).
CONSOLE_NOTES: Final = {
    str(Flag.DEMO): "Note: these scores come from the synthetic demo calibration — NOT PAM scores.",
    str(Flag.UNLICENSED): (
        "Note: these scores come from a provider without a PAM licence (flagged 'unlicensed') "
        "— NOT PAM scores."
    ),
    str(Flag.RAW_ONLY): (
        "Note: these results are raw totals with no 0–100 score (flagged 'raw-only') "
        "— NOT PAM scores."
    ),
}

#: The banner's heading when scores are not PAM for a reason other than demonstration.
NOT_PAM_TEXT: Final = "NOT PATIENT ACTIVATION MEASURE SCORES"
#: What the watermark repeats and the printed margins say for those reasons.
NOT_PAM_MARK: Final = "NOT PAM"


def banner_text(reasons: Sequence[str]) -> str:
    """The banner sentence for ``reasons`` other than demonstration (which has its own)."""
    words = "; ".join(REASON_WORDS[r] for r in reasons)
    return f"{NOT_PAM_TEXT}: {words}."


#: Each reason in capitals, for the printed margins.
_MARGIN_WORDS: Final = {
    str(Flag.UNLICENSED): "UNLICENSED PROVIDER",
    str(Flag.RAW_ONLY): "RAW TOTALS",
}


def margin_text(reasons: Sequence[str]) -> str:
    """The notice printed in the margins of every page for ``reasons`` other than
    demonstration (plain text: it goes into a CSS string)."""
    return f"{NOT_PAM_TEXT} — {' AND '.join(_MARGIN_WORDS[r] for r in reasons)}"


def watermark_text(reasons: Sequence[str]) -> str:
    """The repeated watermark for ``reasons`` other than demonstration."""
    if tuple(reasons) == (str(Flag.UNLICENSED),):
        return f"{NOT_PAM_MARK} — UNLICENSED"
    if tuple(reasons) == (str(Flag.RAW_ONLY),):
        return f"{NOT_PAM_MARK} — RAW TOTALS"
    return NOT_PAM_MARK
