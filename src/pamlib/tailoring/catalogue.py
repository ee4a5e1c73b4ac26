"""Default plugin: the built-in intervention pathways.

The three approaches NHS supported self-management offers (see the tailoring docs). None carries
a coded concept: no code for them has been verified, so none is shipped as fact. A site gives
them one in a rule file (``[[pathway]]`` with ``concept = { system = ..., code = ... }``) or
registers its own pathways through the same hook.
"""

from __future__ import annotations

from collections.abc import Callable

from pamlib.hookspecs import hookimpl
from pamlib.pathways import Pathway

__all__ = ["BUILTIN_PATHWAYS"]

BUILTIN_PATHWAYS: tuple[Pathway, ...] = (
    Pathway(
        "health-coaching",
        "Health coaching",
        "Conversations with a trained coach that help a person set and reach their own goals, "
        "pitched at their level of activation.",
    ),
    Pathway(
        "self-management-education",
        "Self-management education",
        "Structured courses that build knowledge, skills and confidence to manage a condition.",
    ),
    Pathway(
        "peer-support",
        "Peer support",
        "Support from people with lived experience of a similar condition, one to one or in "
        "groups.",
    ),
)


@hookimpl
def pamlib_register_pathways(register: Callable[[Pathway], None]) -> None:
    for pathway in BUILTIN_PATHWAYS:
        register(pathway)
