"""Answers to one item: four ordered agreement categories, or *not applicable*.

An item that was not answered at all is simply absent from an assessment's responses; *not
applicable* is an answer the person gave and is kept distinct, although no score uses it. In
columnar form (NumPy), categories are ``1``–``4``, unanswered is ``0`` and not applicable ``-1``.
"""

from __future__ import annotations

import enum
import re

__all__ = [
    "NOT_APPLICABLE_CODE",
    "UNANSWERED_CODE",
    "Response",
    "parse_response",
]

#: Column code for an unanswered item.
UNANSWERED_CODE = 0
#: Column code for a *not applicable* answer.
NOT_APPLICABLE_CODE = -1


class Response(enum.IntEnum):
    """One answer. The integer value is the category (1–4) or ``-1`` for not applicable."""

    DISAGREE_STRONGLY = 1
    DISAGREE = 2
    AGREE = 3
    AGREE_STRONGLY = 4
    NOT_APPLICABLE = -1

    @property
    def is_category(self) -> bool:
        """True for the four agreement categories, False for not applicable."""
        return self is not Response.NOT_APPLICABLE


def _key(text: str) -> str:
    words = " ".join(text.casefold().replace("_", " ").split())
    return re.sub(r" ?/ ?", "/", words)


_LABELS: dict[str, Response] = {
    _key(label): response
    for response, labels in {
        Response.DISAGREE_STRONGLY: ("1", "disagree strongly", "strongly disagree"),
        Response.DISAGREE: ("2", "disagree"),
        Response.AGREE: ("3", "agree"),
        Response.AGREE_STRONGLY: ("4", "agree strongly", "strongly agree"),
        Response.NOT_APPLICABLE: ("na", "n/a", "not applicable"),
    }.items()
    for label in labels
}


def parse_response(text: str) -> Response | None:
    """Read an answer written as a digit or an English label, in any case and spacing.

    Returns ``None`` for an empty cell (unanswered); raises ``ValueError`` for anything else.

    >>> parse_response(" Strongly  agree ")
    <Response.AGREE_STRONGLY: 4>
    >>> parse_response("n/a")
    <Response.NOT_APPLICABLE: -1>
    >>> parse_response("") is None
    True
    """
    key = _key(text)
    if not key:
        return None
    try:
        return _LABELS[key]
    except KeyError:
        raise ValueError("not an answer: expected 1-4, an agreement label or N/A") from None
