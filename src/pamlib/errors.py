"""Every error pamlib raises derives from :class:`PamlibError`.

Messages never contain patient identifiers: they name *where* a problem is (a file, a row, a JSON
path, a field) and *what* is wrong, never the offending identifier itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

import attrs

__all__ = [
    "CalibrationError",
    "ConfigurationError",
    "FormatError",
    "InstrumentError",
    "LicenceError",
    "LicensedContentError",
    "PamlibDeprecationWarning",
    "PamlibError",
    "PluginError",
    "Problem",
    "ProviderResultError",
    "RuleError",
    "ScoringError",
    "ValidationError",
]


class PamlibError(Exception):
    """Root of every exception pamlib raises on purpose; catch this to catch them all.

    Its text never shows an NHS number, whatever a message was built from: a file saved as
    ``Jane 9434765919.csv`` is named ``Jane <NHS number>.csv``, as in logs. The attributes
    (``problems``, a summary's ``source``) keep what was given.
    """

    def __str__(self) -> str:
        return _withheld(super().__str__())


def _withheld(text: str) -> str:
    """``text`` with each NHS number in it withheld; imported late, as ``import pamlib`` is."""
    from pamlib.identity import withhold_nhs_numbers

    return withhold_nhs_numbers(text)


@attrs.frozen
class Problem:
    """One thing wrong with some input, and where it is.

    ``where`` is a location a person can find: ``$.responses['pam13.03']``, ``line 17``,
    ``cal.toml: scale.slope``. ``code`` is stable and machine-readable; ``message`` is for people.
    """

    where: str
    code: str
    message: str

    def __str__(self) -> str:
        return _withheld(f"{self.message} @ {self.where}" if self.where else self.message)


class ValidationError(PamlibError, ValueError):
    """Input does not describe a valid object; ``problems`` lists *every* problem found."""

    def __init__(self, summary: str, problems: Sequence[Problem] = ()) -> None:
        self.summary = summary
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = [summary, *(f"  - {p}" for p in self.problems)]
        super().__init__("\n".join(lines))


class InstrumentError(ValidationError):
    """An instrument or item id that no registered instrument defines."""


class ScoringError(PamlibError):
    """A provider could not score, or no provider fits the request."""


class LicenceError(ScoringError):
    """Scoring would need a licence that is missing, expired, or does not cover the instrument."""


class CalibrationError(ValidationError):
    """A calibration file is malformed; problems name the file and the field."""


class FormatError(ValidationError):
    """An input or output format cannot be read or written as asked."""


class RuleError(ValidationError):
    """A tailoring rule file or rule is invalid; problems name the file, rule id and field."""


class ProviderResultError(ScoringError):
    """A provider returned a result that breaks the contract; nothing of it is passed on.

    ``row`` (in the batch; ``None`` for the batch as a whole) and ``field`` say where; the
    message never repeats the offending value.
    """

    def __init__(
        self,
        provider: str,
        row: int | None,
        field: str,
        message: str,
        *,
        location: str | None = None,
    ) -> None:
        self.provider = provider
        self.row = row
        self.field = field
        self.reason = message
        #: Where the offending record came from in the input (``line 17``), when known.
        self.location = location
        where = field if row is None else f"{location or f'row {row}'}, {field}"
        super().__init__(
            f"provider {provider!r} returned an invalid result ({where}): {message}; "
            "refusing to pass it on"
        )

    def at(self, location: str) -> ProviderResultError:
        """The same error, saying where in the input the offending record is."""
        return ProviderResultError(
            self.provider, self.row, self.field, self.reason, location=location
        )


class LicensedContentError(PamlibError, TypeError):
    """Licensed calibration content was about to leave memory (pickle, copy, serialisation)."""


class ConfigurationError(PamlibError):
    """A setting, mapping file or command-line option is inconsistent."""


#: Hooks handed a patient's record: what a plugin raises there may quote it, so its text is
#: never repeated, only its type and where it was raised.
_PATIENT_HOOKS = frozenset({"pamlib_assessment_scored"})


def _raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised: the base name of the innermost frame's file and its line
    (``rules.py:14``), or ``""`` without a traceback. A place in code, never a value."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{PurePath(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"


def _type_and_place(exc: BaseException) -> str:
    """``ValueError (raised at rules.py:14)``: what is told of an exception whose text may
    quote a patient."""
    at = _raised_at(exc)
    return f"{type(exc).__name__} (raised at {at})" if at else type(exc).__name__


class PluginError(PamlibError):
    """A plugin failed to load or raised inside a hook.

    ``plugin`` and ``hook`` name the culprit so the host can report it and carry on. The
    message repeats the cause's text with NHS numbers withheld; for a hook handed a patient's
    record, its type and where it was raised only.
    """

    def __init__(self, plugin: str, hook: str | None, cause: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        self.cause = cause
        where = f"plugin {plugin!r}" + (f" in hook {hook}" if hook else " while loading")
        if hook in _PATIENT_HOOKS:
            super().__init__(f"{where}: {_type_and_place(cause)}")
        else:
            from pamlib.identity import withhold_nhs_numbers  # identity imports this module

            try:
                text = withhold_nhs_numbers(str(cause))
            except Exception:  # a plugin's exception whose __str__ fails: its type alone
                super().__init__(f"{where}: {_type_and_place(cause)}")
                return
            super().__init__(f"{where}: {type(cause).__name__}: {text}")


class PamlibDeprecationWarning(DeprecationWarning):
    """Something still works but will be removed; the message names the replacement."""
