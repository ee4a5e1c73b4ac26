"""Synthetic calibration files for testing providers — made-up numbers, never the PAM's.

A provider that wraps a licensee's calibration must be tested without it: the real calibration
is licensed content and belongs on the licensee's machines only, never in a test suite or a
repository. These helpers write a stand-in at test time, with the demo provider's evenly spaced
parameters. With ``licensee`` it carries a licence block, so a provider's *licensed* path
(no not-the-PAM flags, expiry) can be tested too; its id and name still say it is synthetic.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.scoring.demo import demo_calibration

__all__ = ["synthetic_calibration", "write_synthetic_calibration"]

_BY_ID = {i.id: i for i in BUILTIN_INSTRUMENTS}


def synthetic_calibration(
    instrument: Instrument | str = "PAM-13",
    *,
    licensee: str | None = None,
    valid_until: dt.date | None = None,
) -> dict[str, Any]:
    """A calibration document (JSON-ready) with made-up parameters for ``instrument``.

    Without ``licensee`` it is a demonstration calibration (``demo: true``: every result flagged
    ``demo``). With ``licensee`` it is not marked demo and carries a licence block valid until
    ``valid_until`` (default: a year from today) — for testing a licensed provider's behaviour,
    including expiry, with numbers that are still not the PAM's.

    >>> doc = synthetic_calibration(licensee="Example Licensee (test)",
    ...                             valid_until=dt.date(2030, 12, 31))
    >>> doc["id"], doc["demo"]
    ('synthetic-test-PAM-13', False)
    >>> doc["licence"]
    {'licensee': 'Example Licensee (test)', 'valid_until': '2030-12-31'}
    """
    inst = _BY_ID[instrument] if isinstance(instrument, str) else instrument
    doc = demo_calibration(inst).to_document()
    if licensee is None:
        return doc
    # a year from the local date, the calendar licences end on
    until = valid_until or dt.date.today() + dt.timedelta(days=365)  # noqa: DTZ011
    doc.update(
        id=f"synthetic-test-{inst.id}",
        name=f"Synthetic test calibration for {inst.id} (NOT the PAM)",
        description=(
            "Made-up parameters with a test licence block, for testing a licensed provider. "
            "Scores from it are not Patient Activation Measure scores."
        ),
        demo=False,
        licence={"licensee": licensee, "valid_until": until.isoformat()},
    )
    return doc


def write_synthetic_calibration(
    folder: str | os.PathLike[str],
    instrument: Instrument | str = "PAM-13",
    *,
    licensee: str | None = None,
    valid_until: dt.date | None = None,
    name: str = "synthetic-calibration.json",
) -> Path:
    """Write :func:`synthetic_calibration` as a JSON file in ``folder`` and return its path."""
    path = Path(folder) / name
    doc = synthetic_calibration(instrument, licensee=licensee, valid_until=valid_until)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path
