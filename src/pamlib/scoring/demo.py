"""The ``demo`` provider: made-up calibrations for trying pamlib out. **Not the PAM.**

Every registered instrument gets a synthetic rating-scale calibration with evenly spaced item
difficulties and round-number scale constants, named ``synthetic-demo-<instrument>`` so nobody
can take it for the licensed calibration. Every result has ``demo=True`` and the ``demo`` flag,
and the provider is never chosen implicitly: ask for it by name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pamlib._version import __version__
from pamlib.errors import ScoringError
from pamlib.hookspecs import hookimpl
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.levels import CURRENT
from pamlib.results import Flag
from pamlib.scoring.calibration import Calibration, CalibrationModel, Scale
from pamlib.scoring.provider import FLAG_BITS, BaseProvider, BatchScores, ScoringProvider
from pamlib.scoring.rasch import CalibratedScorer

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.instruments import InstrumentRegistry
    from pamlib.plugins import PluginHost
    from pamlib.results import ScoreResult

__all__ = ["DemoProvider", "demo_calibration"]

_BUILTIN_IDS = frozenset(i.id for i in BUILTIN_INSTRUMENTS)


def demo_calibration(instrument: Instrument) -> Calibration:
    """The synthetic demonstration calibration for ``instrument`` (made-up numbers).

    >>> from pamlib.instruments import BUILTIN_INSTRUMENTS
    >>> cal = demo_calibration(BUILTIN_INSTRUMENTS[0])
    >>> cal.id, cal.demo, cal.thresholds
    ('synthetic-demo-PAM-13', True, (-2.0, 0.0, 2.0))
    """
    n = instrument.n_items
    return Calibration(
        id=f"synthetic-demo-{instrument.id}",
        version="1",
        instrument=instrument.id,
        name=f"Synthetic demonstration calibration for {instrument.id} (NOT the PAM)",
        description=(
            "Made-up, evenly spaced parameters for trying pamlib out. Scores from it are not "
            "Patient Activation Measure scores and must not be used for care."
        ),
        source="pamlib (synthetic)",
        demo=True,
        model=CalibrationModel.RATING_SCALE,
        items=instrument.items,
        item_difficulties=np.round(np.linspace(-1.2, 1.2, n), 3).tolist(),
        thresholds=np.round(np.linspace(-2.0, 2.0, instrument.n_categories - 1), 3).tolist(),
        scale=Scale(intercept=50.0, slope=10.0, min=0.0, max=100.0, decimals=1),
        min_answered=(n + 1) // 2,
        cutpoints=CURRENT.id,
    )


class DemoProvider(BaseProvider):
    """Synthetic calibrations for every registered instrument; every result is ``demo``."""

    id = "demo"
    version = __version__
    demo = True
    licence = None

    def __init__(self, host: PluginHost | None = None) -> None:
        self._host = host
        self._scorers: dict[tuple[str, tuple[str, ...], int], CalibratedScorer] = {}
        self._lock = threading.Lock()
        self._ids: tuple[InstrumentRegistry, frozenset[str]] | None = None

    def instruments(self) -> Collection[str]:
        if self._host is None:
            return _BUILTIN_IDS
        registry = self._host.instruments()
        ids = self._ids
        if ids is None or ids[0] is not registry or len(ids[1]) != len(registry):
            ids = self._ids = (registry, frozenset(i.id for i in registry))
        return ids[1]

    def calibration(self, instrument: Instrument) -> Calibration:
        """The calibration this provider scores ``instrument`` with."""
        return demo_calibration(instrument)

    def _scorer(self, instrument: Instrument) -> CalibratedScorer:
        key = (instrument.id, instrument.items, instrument.n_categories)
        scorer = self._scorers.get(key)
        if scorer is None:
            with self._lock:
                scorer = self._scorers.get(key)
                if scorer is None:
                    compiled = demo_calibration(instrument).compile()
                    scorer = CalibratedScorer(compiled, CURRENT, FLAG_BITS[Flag.DEMO])
                    self._scorers[key] = scorer
        return scorer

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        return self._scorer(instrument).score(instrument, codes, self)

    def score(self, assessment: Assessment) -> ScoreResult:
        return self._scorer(assessment.instrument).result(assessment, self)

    def __reduce__(self) -> tuple[type[DemoProvider], tuple[PluginHost | None]]:
        # Its host, never the scorers: they are rebuilt lazily where it is unpickled.
        if type(self) is not DemoProvider:
            raise ScoringError(
                f"a {type(self).__name__} cannot be pickled: pamlib pickles its own "
                "DemoProvider; a subclass defines __reduce__ to pickle itself"
            )
        return (DemoProvider, (self._host,))


@hookimpl
def pamlib_register_scoring_providers(
    register: Callable[[ScoringProvider], None], host: PluginHost
) -> None:
    register(DemoProvider(host))
