"""An example scoring plugin: pamlib's Rasch engine bound to the calibration a licensee holds.

The plugin ships **no calibration**. A licensee keeps theirs — licensed content — on their own
machines and points the plugin at it with the environment variable
``PAMLIB_EXAMPLE_CALIBRATION`` (a ``.json`` or ``.toml`` calibration file with a ``licence``
block). Without it the plugin registers nothing. The calibration is read into memory only:
nothing here writes, logs or caches it, and the provider refuses to be pickled.

Results name this plugin's provider (``example-licensed``) and version, the calibration's id and
content hash; pamlib checks the licence on every call, so scoring stops the day after it ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn

from pamlib import ConfigurationError, PluginHost, ScoringError, ScoringProvider, hookimpl
from pamlib.scoring import Calibration, RaschProvider

__all__ = ["CALIBRATION_ENV", "PROVIDER_ID", "LicensedCalibrationProvider", "from_environment"]
__version__ = "0.1.0"

#: The environment variable naming the licensee's calibration file.
CALIBRATION_ENV = "PAMLIB_EXAMPLE_CALIBRATION"
#: The id results record; choose one naming your organisation or product.
PROVIDER_ID = "example-licensed"


class LicensedCalibrationProvider(RaschProvider):
    """The Rasch engine with a licensee's calibration, under the licence the calibration states.

    Refuses a demonstration calibration and one without a licence block: this provider exists
    to give licensed PAM scores, so anything else would be dishonest. (For research measures on
    an unlicensed calibration, pamlib's own ``rasch`` provider flags every result
    ``unlicensed``.)
    """

    #: This plugin's version, recorded on every result beside the provider id.
    version = __version__

    def __init__(
        self, calibration: Calibration | str | os.PathLike[str], *, host: PluginHost | None = None
    ) -> None:
        super().__init__(calibration, id=PROVIDER_ID, host=host)
        if self.demo:
            raise ConfigurationError(
                f"{PROVIDER_ID}: {self.calibration_id!r} is a demonstration calibration; "
                "this provider scores only with a licensed calibration"
            )
        if self.licence is None:
            raise ConfigurationError(
                f"{PROVIDER_ID}: calibration {self.calibration_id!r} has no licence block; "
                "add the licence you hold (licensee, valid_until) to the file"
            )

    def with_calibration(
        self,
        calibration: Calibration | str | os.PathLike[str],
        *,
        host: PluginHost | None = None,
    ) -> NoReturn:
        """Refused: this provider scores with the licensee's configured calibration only."""
        raise ScoringError(
            f"{PROVIDER_ID} scores with the calibration set in {CALIBRATION_ENV}; "
            "use the 'rasch' provider to score with another file"
        )


def from_environment(host: PluginHost | None = None) -> LicensedCalibrationProvider | None:
    """The provider for the calibration named by ``PAMLIB_EXAMPLE_CALIBRATION``, or ``None``
    when it is not set. A bad file raises :class:`~pamlib.errors.CalibrationError` naming the
    file and each field at fault — never a parameter value."""
    path = os.environ.get(CALIBRATION_ENV, "").strip()
    if not path:
        return None
    return LicensedCalibrationProvider(path, host=host)


@hookimpl
def pamlib_register_scoring_providers(
    register: Callable[[ScoringProvider], None], host: PluginHost
) -> None:
    provider = from_environment(host)
    if provider is not None:
        register(provider)
