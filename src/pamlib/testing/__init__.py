"""A testing kit for plugin authors: conformance tests and fixtures.

Vendors subclass :class:`~pamlib.testing.conformance.ProviderConformance` in their own test
suite and provide a ``provider`` fixture; the pytest plugin (registered under ``pytest11`` and
inert until used) supplies the shared fixtures. See the guide *Writing a licensed scoring
provider*.
"""

from pamlib.testing.conformance import ProviderConformance

__all__ = ["ProviderConformance"]
