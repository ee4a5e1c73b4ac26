"""pamlib: a typed, pluggable core library for the Patient Activation Measure (PAM)."""

from pamlib._version import __version__

__all__ = ["__version__"]
