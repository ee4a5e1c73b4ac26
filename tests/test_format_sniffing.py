"""A ``.json`` file is told FHIR or JSON Lines rows from its start: a minified Bundle (one line
of tens of megabytes) is not parsed whole to find that out and then parsed again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.formats import typed
from pamlib.pipeline import find_input_format
from pamlib.plugins import PluginHost

cells = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(alphabet='ab{}[]",\\:é ', max_size=12)
)
values = st.recursive(cells, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
objects = st.dictionaries(
    st.sampled_from(["a", "b", "resourceType", 'x"{', "[q]"]), values, max_size=5
)


def _whole_line_is_fhir(value: Any) -> bool:
    """What the sniff decides for a first line it reads whole."""
    return (
        not isinstance(value, dict)
        or "resourceType" in value
        or any(isinstance(v, (dict, list)) for v in value.values())
    )


@given(st.one_of(objects, st.lists(objects, max_size=2)), st.integers(1, 200))
def test_the_start_of_a_long_first_line_decides_as_the_whole_line_would(
    value: Any, cut: int
) -> None:
    line = json.dumps(value).encode()
    start = line[:cut]
    decided = typed._long_line_is_fhir(start, first=True)
    if cut >= len(line):
        assert decided == _whole_line_is_fhir(value)
    elif decided:  # what the start shows holds for the whole line
        assert _whole_line_is_fhir(value) or b"resourceType" in line


@pytest.fixture
def small_sniff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typed, "_SNIFF_BYTES", 64)

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a line longer than the sniff was parsed")

    monkeypatch.setattr(json, "loads", refuse)  # the module typed reads it from


def _format(path: Path) -> str:
    host = PluginHost(load_entry_points=False, disabled=())
    fmt = find_input_format(host, str(path), None)
    return next(name for name, f in host.formats().items() if f is fmt)


def test_a_minified_bundle_is_fhir_from_its_start(tmp_path: Path, small_sniff: None) -> None:
    entries = [
        {"resource": {"resourceType": "QuestionnaireResponse", "id": str(i)}} for i in range(9)
    ]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": entries}), encoding="utf-8")
    assert _format(path) == "fhir"
    path.write_text(json.dumps({"type": "collection", "entry": entries}), encoding="utf-8")
    assert _format(path) == "fhir"  # an object holding a list, before the start ends


def test_a_long_flat_row_is_json_lines(tmp_path: Path, small_sniff: None) -> None:
    row = {"assessment_id": "a1", "note": "x" * 200 + ' [not] {nested} "quoted"', "q01": "3"}
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert _format(path) != "fhir"


def test_the_collector_is_paused_while_a_document_is_made_and_only_then() -> None:
    """A JSON document's values hold no cycle; the collector is off while they are made (and
    the chunks read from them), and as it was while the caller works and afterwards."""
    import gc

    from pamlib._documents import collector_paused, made_paused

    seen: list[tuple[str, bool]] = []

    def chunks() -> Any:
        for i in range(2):
            seen.append(("made", gc.isenabled()))
            yield i

    was = gc.isenabled()
    gc.enable()
    try:
        for _ in made_paused(chunks()):
            seen.append(("used", gc.isenabled()))
        assert seen == [("made", False), ("used", True)] * 2
        with pytest.raises(ValueError, match="inside"), collector_paused():
            raise ValueError("inside")
        assert gc.isenabled()
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        (gc.enable if was else gc.disable)()
