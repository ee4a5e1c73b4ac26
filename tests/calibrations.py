"""Made-up calibration documents for the tests (synthetic numbers, nothing from any licensor).

Also a minimal TOML writer for them, so each test can check that a JSON file and a TOML file with
the same content load to the same calibration.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument

PAM13 = BUILTIN_INSTRUMENTS[0]
PAM10 = BUILTIN_INSTRUMENTS[1]


def spaced(n: int, low: float, high: float) -> list[float]:
    return [round(low + (high - low) * j / max(n - 1, 1), 3) for j in range(n)]


def rsm_document(on: Instrument = PAM13, /, **fields: Any) -> dict[str, Any]:
    """A rating-scale calibration with symmetric, evenly spaced (made-up) parameters."""
    doc: dict[str, Any] = {
        "id": "test-rsm",
        "version": "1",
        "instrument": on.id,
        "model": "rating-scale",
        "item_difficulties": dict(zip(on.items, spaced(on.n_items, -1.2, 1.2), strict=True)),
        "thresholds": [-2.0, 0.0, 2.0],
        "estimator": {"method": "wle"},
        "scale": {"intercept": 50.0, "slope": 10.0, "min": 0, "max": 100, "decimals": 1},
        "min_answered": (on.n_items + 1) // 2,
        "cutpoints": "current",
    }
    doc.update(copy.deepcopy(fields))
    return doc


def pcm_document(on: Instrument = PAM13, /, **fields: Any) -> dict[str, Any]:
    """A partial-credit calibration: each item its own (made-up) steps."""
    n = on.n_items
    steps = {
        item: [round(b - 1.8 + 0.1 * (j % 3), 3), round(b, 3), round(b + 1.8 - 0.1 * (j % 2), 3)]
        for j, (item, b) in enumerate(zip(on.items, spaced(n, -1.0, 1.0), strict=True))
    }
    doc: dict[str, Any] = {
        "id": "test-pcm",
        "version": "2",
        "instrument": on.id,
        "model": "partial-credit",
        "steps": steps,
        "estimator": {"method": "eap", "prior_mean": 0.5, "prior_sd": 1.5},
        "scale": {"intercept": 55.0, "slope": 8.0, "min": 0, "max": 100},
        "min_answered": 3,
        "cutpoints": "hibbard-2005",
        "extreme_response": "not-scored",
    }
    doc.update(copy.deepcopy(fields))
    return doc


def today() -> dt.date:
    """Today as licences see it (UTC)."""
    return dt.datetime.now(dt.UTC).date()


def future(days: int = 3650) -> str:
    return (today() + dt.timedelta(days=days)).isoformat()


def past(days: int = 1) -> str:
    return (today() - dt.timedelta(days=days)).isoformat()


# -- TOML ------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value).__name__)


def to_toml(doc: dict[str, Any]) -> str:
    """Top-level scalars first, then one table per object (keys quoted)."""
    lines = [
        f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)
    ]
    for key, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{json.dumps(key)}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write(folder: Path, doc: Any, fmt: str = "json", name: str = "calibration") -> Path:
    path = folder / f"{name}.{fmt}"
    text = json.dumps(doc, indent=2) if fmt == "json" else to_toml(doc)
    path.write_text(text, encoding="utf-8")
    return path


# -- Hypothesis ------------------------------------------------------------------------------

logits = st.floats(-3.0, 3.0, allow_nan=False).map(lambda x: round(x, 4))


@st.composite
def calibration_documents(
    draw: st.DrawFn, instrument: Instrument | None = None, *, licensed: bool | None = None
) -> dict[str, Any]:
    """Valid calibration documents of either model, any estimator, scale and policy."""
    inst = instrument or draw(st.sampled_from([PAM13, PAM10]))
    n = inst.n_items
    estimator = draw(
        st.sampled_from(
            [
                {"method": "wle"},
                {"method": "mle"},
                {"method": "mle", "extreme_adjustment": 0.25},
                {"method": "eap"},
                {"method": "eap", "prior_mean": 0.4, "prior_sd": 1.3},
            ]
        )
    )
    doc: dict[str, Any] = {
        "id": draw(st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)),
        "version": draw(st.sampled_from(["1", "2.0", "2025-03"])),
        "instrument": inst.id,
        "estimator": estimator,
        "scale": {
            "intercept": draw(st.floats(20, 80).map(lambda x: round(x, 2))),
            "slope": draw(st.floats(0.5, 20).map(lambda x: round(x, 2))),
            "min": 0,
            "max": 100,
            "decimals": draw(st.integers(0, 2)),
        },
        "min_answered": draw(st.integers(1, n)),
        "extreme_response": draw(st.sampled_from(["flag", "not-scored", "ignore"])),
    }
    if draw(st.booleans()):
        doc["cutpoints"] = draw(st.sampled_from(["current", "hibbard-2005"]))
        doc["scale"]["decimals"] = 1  # the level is the band of the score as reported
    if draw(st.booleans()):
        doc["model"] = "rating-scale"
        doc["item_difficulties"] = {item: draw(logits) for item in inst.items}
        doc["thresholds"] = sorted(draw(st.lists(logits, min_size=3, max_size=3)))
    else:
        doc["model"] = "partial-credit"
        doc["steps"] = {item: draw(st.lists(logits, min_size=3, max_size=3)) for item in inst.items}
    use_licence = draw(st.booleans()) if licensed is None else licensed
    if use_licence:
        doc["licence"] = {"licensee": "Example Licensee (test)", "valid_until": future()}
    return doc
