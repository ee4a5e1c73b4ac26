"""The contract of a format plugin."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Format"]


@runtime_checkable
class Format(Protocol):
    """A named file format that pamlib can read assessments from and/or write results to."""

    @property
    def name(self) -> str:
        """Short name used on the command line (``--format NAME``)."""
        ...

    @property
    def extensions(self) -> tuple[str, ...]:
        """File-name endings this format claims, with the dot (``.csv``)."""
        ...

    @property
    def description(self) -> str: ...
