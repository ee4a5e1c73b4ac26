"""Generated mapping files: only clean errors, and a mapping that loads changes no built-in answer.

Properties, over generated TOML (well-formed and mangled) and every file of ``corpus/mapping``:

* :func:`~pamlib.formats.layout.load_mapping` raises nothing but a
  :class:`~pamlib.errors.PamlibError`, whose problems all name the file;
* a mapping that loads reads every built-in answer spelling as pamlib does without it, has no
  two answer labels that are one label with different answers, drops no column pamlib reads,
  and its instrument aliases never re-point a built-in instrument id (or are refused cleanly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, PamlibError
from pamlib.formats.base import ReadOptions
from pamlib.formats.layout import InputMapping, Layout, load_mapping
from pamlib.formats.values import InstrumentResolver, answer_code, label_key
from pamlib.instruments import BUILTIN_INSTRUMENTS

CORPUS = Path(__file__).parent / "corpus" / "mapping"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BUILTIN_SPELLINGS = (
    "1", "2", "3", "4", "", " ", "Agree", "agree", " AGREE ", "Disagree", "Strongly agree",
    "agree strongly", "agree_strongly", "Strongly  Disagree", "disagree strongly", "NA", "na",
    "N/A", "n / a", "Not applicable", "NOT APPLICABLE",
)  # fmt: skip
HEADER = (
    "patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument", "site",
    *(f"q{i:02d}" for i in range(1, 14)), "Q1", "Notes", "NHS Number", "Date Completed",
)  # fmt: skip

labels = st.sampled_from(
    [*BUILTIN_SPELLINGS, "Sometimes", "SOMETIMES", "some times", "Often", "often ", "5", "0"]
) | st.text(max_size=8)
answer_values = st.sampled_from(["1", "2", "3", "4", "NA", "na", "5", ""]) | st.integers(-2, 6)
columns = st.sampled_from(HEADER) | st.text(max_size=6)
targets = st.sampled_from([*HEADER[:6], "q01", "q02", "Q3", "q22", "q23", "nope"])
instrument_names = st.sampled_from(["PAM-13", "pam-13", "PAM-10", "pam13", "PAM13", "x", ""])
other_values = st.one_of(
    st.booleans(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2), st.none()
)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string, or (control characters) a TOML error
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value) if "e" not in repr(value) or "." in repr(value) else f"{value:.1f}"
    return str(value)


def table(name: str, entries: Mapping[str, object]) -> str:
    lines = [f"[{name}]"]
    lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in entries.items() if v is not None]
    return "\n".join(lines) + "\n"


@st.composite
def mapping_texts(draw: st.DrawFn) -> bytes:
    parts = []
    if draw(st.booleans()):
        entries: dict[str, object] = {}
        if draw(st.booleans()):
            entries["drop"] = draw(st.lists(columns, max_size=3))
        if draw(st.booleans()):
            entries["instrument"] = draw(instrument_names | other_values)
        if draw(st.booleans()):
            entries["dates"] = draw(st.sampled_from(["day-first", "month-first", "sideways"]))
        if draw(st.booleans()):
            entries["delimiter"] = draw(st.sampled_from([",", ";", "\t", '"', "\n", "é", ";;"]))
        if draw(st.booleans()):
            entries["colour"] = "blue"
        parts.append(table("input", entries))
    if draw(st.booleans()):
        parts.append(table("columns", draw(st.dictionaries(columns, targets | other_values))))
    if draw(st.booleans()):
        parts.append(table("answers", draw(st.dictionaries(labels, answer_values, max_size=5))))
    if draw(st.booleans()):
        aliases = draw(st.dictionaries(instrument_names, instrument_names, max_size=3))
        parts.append(table("instruments", aliases))
    text = "".join(parts).encode("utf-8")
    mangle = draw(st.sampled_from(["none"] * 4 + ["truncate", "bad-byte", "deep", "bom"]))
    if mangle == "truncate" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif mangle == "bad-byte":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + b"\xff" + text[at:]
    elif mangle == "deep":
        text += b"deep = " + b"[" * 100 + b"]" * 100 + b"\n"
    elif mangle == "bom":
        text = b"\xef\xbb\xbf" + text
    return text


def check_mapping(path: Path) -> None:
    try:
        mapping = load_mapping(path)
    except PamlibError as exc:
        problems = getattr(exc, "problems", ())
        assert all(p.where.startswith(path.name) for p in problems)
        return
    check_loaded(mapping)


def check_loaded(mapping: InputMapping) -> None:
    options = mapping.apply(ReadOptions())
    keyed = {label_key(k): v for k, v in options.answer_labels.items()}
    for spelling in BUILTIN_SPELLINGS:
        assert answer_code(spelling, keyed) == answer_code(spelling)
    by_label: dict[str, set[str]] = {}
    for label, value in options.answer_labels.items():
        by_label.setdefault(label_key(label), set()).add(value)
    assert all(len(values) == 1 for values in by_label.values())
    try:
        layout = Layout.resolve(HEADER[:19], options, source="x.csv")
    except PamlibError:
        pass
    else:  # dropping columns changed nothing pamlib reads
        kept = Layout.resolve(HEADER[:19], attrs.evolve(options, drop=frozenset()))
        assert layout.items == kept.items
        assert {k: v for k, v in layout.columns.items() if k != "site"} == {
            k: v for k, v in kept.columns.items() if k != "site"
        }
    try:
        resolver = InstrumentResolver(BUILTIN_INSTRUMENTS, aliases=options.instrument_aliases)
    except ConfigurationError:
        return
    for instrument in BUILTIN_INSTRUMENTS:
        assert resolver.resolve(instrument.id) is instrument
        assert resolver.resolve(instrument.id.lower()) is instrument


@FUZZ
@given(text=mapping_texts())
def test_generated_mapping_files(tmp_path_factory: pytest.TempPathFactory, text: bytes) -> None:
    path = tmp_path_factory.mktemp("mapping") / "map.toml"
    path.write_bytes(text)
    check_mapping(path)


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_corpus_file(path: Path) -> None:
    check_mapping(path)
