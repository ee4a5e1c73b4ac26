"""Default plugin: the built-in intervention pathways.

The three approaches NHS supported self-management offers (see the tailoring docs). None carries
a coded concept: no code for them has been verified, so none is shipped as fact. A site gives
them one in a rule file (``[[pathway]]`` with ``concept = { system = ..., code = ... }``) or
registers its own pathways through the same hook.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pamlib.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from pamlib.pathways import Pathway

    #: The built-in pathways, in the order :func:`pamlib_register_pathways` registers them.
    BUILTIN_PATHWAYS: tuple[Pathway, ...]

__all__ = ["BUILTIN_PATHWAYS"]


@functools.cache
def _builtin_pathways() -> tuple[Pathway, ...]:
    # Made on first use: the plugin host loads this module whenever it starts, and only
    # tailoring asks for pathways.
    from pamlib.pathways import Pathway

    return (
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


def __getattr__(name: str) -> object:
    if name == "BUILTIN_PATHWAYS":
        return _builtin_pathways()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def pamlib_register_pathways(register: Callable[[Pathway], None]) -> None:
    for pathway in _builtin_pathways():
        register(pathway)
