"""Default plugin: pamlib's default tailoring rules, registered like any site's rule file.

The rules live in ``defaults.toml`` beside this module and go through the same hook, loader and
X
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pamlib.hookspecs import hookimpl

if TYPE_CHECKING:  # the rules engine is imported by whoever reads the rules, not by the host
    from collections.abc import Callable

    from pamlib.tailoring.rules import RuleSource

__all__ = ["DEFAULT_RULES", "EXAMPLE_SITE_RULES"]

#: pamlib's default rules file.
DEFAULT_RULES = Path(__file__).with_name("defaults.toml")
#: The example site rules file used by ``pamlib demo`` and the documentation.
EXAMPLE_SITE_RULES = Path(__file__).parent / "examples" / "site-example.toml"


@hookimpl
def pamlib_register_rules(register: Callable[[RuleSource], None]) -> None:
    register(DEFAULT_RULES)
