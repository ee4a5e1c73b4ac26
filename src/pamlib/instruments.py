"""Instruments: structure only — ids, item ids, LOINC panel codes, versions. Never item wording.

PAM item text is the licensor's copyright. An :class:`Instrument` knows how many items there are
and what they are called (``pam13.01`` …), so responses can be validated and scored; the words a
patient reads are supplied at run time by a licensed provider through the ``pamlib_item_text``
hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from pamlib.errors import InstrumentError, Problem

__all__ = [
    "BUILTIN_INSTRUMENTS",
    "Instrument",
    "InstrumentRegistry",
]


def _item_ids(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i:02d}" for i in range(1, n + 1))


def _as_tuple(items: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Items given as a list are a tuple: a frozen instrument stays hashable."""
    return tuple(items) if isinstance(items, list) else items


def _read_only(codes: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(codes))


@attrs.frozen
class Instrument:
    """One PAM variant in one version: its id, its ordered item ids and its codes.

    ``loinc_panel`` is the LOINC code of the whole form where one is published; ``item_loinc``
    maps item ids to LOINC item codes and is empty unless a provider supplies them.
    """

    id: str
    name: str
    items: tuple[str, ...] = attrs.field(converter=_as_tuple)
    version: str = "1"
    loinc_panel: str | None = None
    #: Read-only: an instrument is shared by every user of a registry.
    item_loinc: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only, hash=False)
    n_categories: int = 4

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (and copied) as its fields: a read-only mapping does not pickle."""
        fields = (self.id, self.name, self.items, self.version, self.loinc_panel)
        return (Instrument, (*fields, dict(self.item_loinc), self.n_categories))

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def max_raw(self) -> int:
        """The highest raw total (categories scored 1..n_categories summed over all items)."""
        return self.n_items * self.n_categories

    def index(self, item_id: str) -> int:
        """Position of ``item_id`` in :attr:`items`, or an :class:`InstrumentError`."""
        try:
            return self.items.index(item_id)
        except ValueError:
            raise InstrumentError(
                f"unknown item for {self.id}",
                [Problem(item_id, "unknown-item", f"{self.id} has no item with this id")],
            ) from None


def _make(id_: str, name: str, prefix: str, n: int, loinc: str | None) -> Instrument:
    return Instrument(id=id_, name=name, items=_item_ids(prefix, n), loinc_panel=loinc)


#: The instruments pamlib knows without plugins (LOINC codes: see PAM-FACTS, "Instruments").
BUILTIN_INSTRUMENTS: tuple[Instrument, ...] = (
    _make("PAM-13", "Patient Activation Measure, 13 items", "pam13", 13, "86933-9"),
    _make("PAM-10", "Patient Activation Measure, 10 items", "pam10", 10, "86946-1"),
    _make("Parent-PAM-13", "Parent Patient Activation Measure, 13 items", "ppam13", 13, "87675-5"),
    _make("Parent-PAM-10", "Parent Patient Activation Measure, 10 items", "ppam10", 10, "87689-6"),
    _make("Caregiver-PAM-13", "Caregiver Activation Measure, 13 items", "cpam13", 13, "87703-5"),
    _make("Caregiver-PAM-10", "Caregiver Activation Measure, 10 items", "cpam10", 10, "87704-3"),
    _make("PAM-22", "Patient Activation Measure, original 22 items", "pam22", 22, None),
)


@attrs.define
class InstrumentRegistry:
    """Instruments by id; filled by the ``pamlib_register_instruments`` hook."""

    _by_id: dict[str, Instrument] = attrs.field(factory=dict, alias="by_id")

    def register(self, instrument: Instrument) -> None:
        """Add an instrument; registering a different definition under a taken id is an error."""
        existing = self._by_id.get(instrument.id)
        if existing is not None and existing != instrument:
            raise InstrumentError(
                "conflicting instrument definitions",
                [Problem(instrument.id, "duplicate-instrument", "already registered differently")],
            )
        self._by_id[instrument.id] = instrument

    def get(self, instrument_id: str) -> Instrument:
        """The instrument called ``instrument_id``, or an :class:`InstrumentError` listing ids."""
        try:
            return self._by_id[instrument_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise InstrumentError(
                "unknown instrument",
                [Problem("instrument", "unknown-instrument", f"not one of: {known}")],
            ) from None

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self._by_id

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def of(cls, instruments: Iterable[Instrument]) -> InstrumentRegistry:
        registry = cls()
        for instrument in instruments:
            registry.register(instrument)
        return registry
