"""The single place the version lives (read by the build backend and by ``pamlib --version``)."""

__version__ = "0.1.0"
