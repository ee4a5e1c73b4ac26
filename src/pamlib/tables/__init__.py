"""Tables pamlib writes and reads back, typed once (pyarrow) for every reader, and the keys that
link a person's rows.

Names are imported on first use, so ``import pamlib`` never loads pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamlib._lazy import lazy_exports

if TYPE_CHECKING:
    from pamlib.tables.keys import PSEUDONYM_COLUMN, Pseudonymiser
    from pamlib.tables.scored import (
        RECOMMENDATION_TYPES,
        ScoredTable,
        scored_schema,
    )

_LAZY: dict[str, str] = {
    "PSEUDONYM_COLUMN": "keys",
    "Pseudonymiser": "keys",
    "RECOMMENDATION_TYPES": "scored",
    "ScoredTable": "scored",
    "scored_schema": "scored",
}

__all__ = [
    "PSEUDONYM_COLUMN",
    "RECOMMENDATION_TYPES",
    "Pseudonymiser",
    "ScoredTable",
    "scored_schema",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
