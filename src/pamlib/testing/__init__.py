"""A testing kit for plugin authors: conformance tests, strategies, synthetic calibrations.

Subclass a conformance class in your own test suite and provide its fixture; the tests it
inherits check your plugin against pamlib's contract:

* :class:`ProviderConformance` — a scoring provider (fixture ``provider``; optionally
  ``expired_provider``, ``known_scores`` of :class:`KnownScore` and ``min_answered``);
* :class:`RulesConformance` — a plugin registering tailoring rules (fixture ``plugin``);
* :class:`FormatConformance` — a format plugin (fixture ``file_format``).

The kit needs pytest and Hypothesis (``pip install 'pamlib[testing]'``). Its pytest plugin,
registered under ``pytest11`` and inert until a test uses its fixtures, supplies
``pamlib_host``. Names here are imported on first use, so that pytest loading the plugin in a
project that never uses the kit costs nothing and needs neither Hypothesis nor NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamlib._lazy import lazy_exports

if TYPE_CHECKING:
    from pamlib.testing.calibrations import synthetic_calibration, write_synthetic_calibration
    from pamlib.testing.conformance import KnownScore, ProviderConformance
    from pamlib.testing.formats import FormatConformance
    from pamlib.testing.rules import RulesConformance
    from pamlib.testing.strategies import assessments, contexts, response_codes

__all__ = [
    "FormatConformance",
    "KnownScore",
    "ProviderConformance",
    "RulesConformance",
    "assessments",
    "contexts",
    "response_codes",
    "synthetic_calibration",
    "write_synthetic_calibration",
]

_LAZY: dict[str, str] = {
    "KnownScore": "conformance",
    "ProviderConformance": "conformance",
    "RulesConformance": "rules",
    "FormatConformance": "formats",
    "assessments": "strategies",
    "contexts": "strategies",
    "response_codes": "strategies",
    "synthetic_calibration": "calibrations",
    "write_synthetic_calibration": "calibrations",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
