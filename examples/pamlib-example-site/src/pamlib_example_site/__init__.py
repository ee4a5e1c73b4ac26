"""An example site plugin: the tailoring rules of a fictional practice, "Northfield Practice".

It contributes, through pamlib's hooks:

* a local pathway, ``northfield.walking-group`` (``pamlib_register_pathways``);
* a rules file shipped as package data, ``site-rules.toml`` (``pamlib_register_rules``);
* one Python rule, :func:`no_recent_contact`, for logic a rules file cannot state: date
  arithmetic on an attribute the integrator supplies.

Rules are evaluated with pamlib's defaults and any other site's by one engine; see
``pamlib rules explain`` for what each contributes to an outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from pamlib import Pathway, hookimpl
from pamlib.tailoring import Action, Context, Note, RuleSource, rule

__all__ = ["RULES_FILE", "WALKING_GROUP", "no_recent_contact"]
__version__ = "0.1.0"

#: The site's rules file, shipped inside the package.
RULES_FILE = Path(__file__).with_name("site-rules.toml")

WALKING_GROUP = Pathway(
    "northfield.walking-group",
    "Walking group",
    "A weekly led walk from the practice, for people who want to be more active.",
)

#: Days without contact after which the practice calls before booking anything.
NO_CONTACT_DAYS = 90


@rule("northfield.no-recent-contact", priority=30)
def no_recent_contact(ctx: Context) -> Sequence[Action] | None:
    """Nobody from the practice has been in touch for 90 days or more: call before booking."""
    last = ctx.attributes.get("last_contact", "").strip()
    if not last or ctx.assessed_on is None:
        return None
    try:
        last_contact = dt.date.fromisoformat(last)
    except ValueError:
        # Never raise on bad data (that would stop tailoring); say what to check instead.
        return [Note("The date of last contact could not be read; check the record.")]
    if (ctx.assessed_on - last_contact).days >= NO_CONTACT_DAYS:
        return [Note("No contact for 90 days or more: phone the person before booking.")]
    return None


@hookimpl
def pamlib_register_pathways(register: Callable[[Pathway], None]) -> None:
    register(WALKING_GROUP)


@hookimpl
def pamlib_register_rules(register: Callable[[RuleSource], None]) -> None:
    register(RULES_FILE)
    register(no_recent_contact)
