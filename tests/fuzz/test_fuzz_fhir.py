"""Hostile FHIR input, generated: mutated responses and Bundles, repeats, junk lines.

Every example is a file (NDJSON, a Bundle, or a JSON array) built from valid
QuestionnaireResponses with some of: fields replaced by values of the wrong JSON type, fields
removed, responses repeated, subjects pointing at Patients later in the file, integers too long
to convert, nesting too deep, invalid UTF-8 and lines that are not JSON. The properties:

- reading never raises (every problem is a reject);
- ``read = valid + rejected``, and ``read`` equals a count of the records made here, by the
  rules of the documentation (a response, or anything that is not a resource, is a record);
- every record is either a row or a reject (matched by its JSON path);
- :func:`~pamlib.fhir.read_fhir` and the ``fhir`` format plugin (the columnar path) agree;
- ``pamlib score`` reconciles to the same count, without a traceback.

Inputs that once broke the reader are kept, minimised, in ``corpus/fhir`` and replayed.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.fhir import questionnaire_response, read_fhir
from pamlib.fhir.plugin import FhirFormat
from pamlib.formats.base import ReadOptions
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.plugins import PluginHost
from pamlib.testing.fhir import DEEP, HUGE, SURROGATE, hostile_json, mutated
from tests.fhir_support import fhir_assessments

CORPUS = Path(__file__).parent / "corpus" / "fhir"
PAM13 = BUILTIN_INSTRUMENTS[0]

#: Whole-record placeholders make their line (NDJSON) or document unreadable.
_UNREADABLE = (json.dumps(HUGE), json.dumps(DEEP))


@st.composite
def responses(draw: st.DrawFn) -> dict[str, Any]:
    """A valid response, often given a server reference to a Patient (see :func:`files`)."""
    assessment = draw(fhir_assessments(instrument=PAM13, id_=draw(st.sampled_from("ABCDEF"))))
    resource = questionnaire_response(assessment)
    if draw(st.integers(0, 9)) == 0:  # half a surrogate pair, as JSON can escape it
        resource["identifier"]["value"] += SURROGATE
    if draw(st.booleans()):
        del resource["identifier"]  # the id comes from the content
    if draw(st.booleans()):
        resource["subject"] = {"reference": f"Patient/p{draw(st.integers(0, 2))}"}
        del resource["contained"]
    return resource


PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "https://pamlib.org/fhir/Id/patient-id", "value": "P"}],
}
#: NDJSON lines that are not resources: (bytes, how many records they are).
JUNK_LINES = [
    (b"{not json", 1),
    (b"nul", 1),
    (b"42", 1),
    (b"[]", 0),
    (b'[1, {"resourceType": "Observation"}]', 1),
    (b"   ", 0),
    (b"\xef\xbb\xbf", 0),
    (b"\xff\xfe{}", 1),
    (b'{"resourceType": "QuestionnaireResponse", "status": "\xc3"}', 1),
    (b'{"resourceType": "Bundle", "entry": ' + b"[" * 80 + b"]" * 80 + b"}", 1),
]


def count_records(value: object, *, top: bool = True) -> int:
    """Records in a parsed value, by the documented rules (not by the reader's code)."""
    if top and isinstance(value, list):
        return sum(count_records(v, top=False) for v in value)
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return 1
    kind = value["resourceType"]
    if kind == "QuestionnaireResponse":
        return 1
    if kind != "Bundle":
        return 0
    entries = value.get("entry", [])
    total = 0
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict) and "resource" in entry:
            total += count_records(entry["resource"], top=False)
        else:
            total += 1
    return total


def record_paths(value: object, path: str, *, top: bool = True) -> list[str]:
    """The JSON path of each record, as :func:`count_records` counts them."""
    if top and isinstance(value, list):
        return [p for i, v in enumerate(value) for p in record_paths(v, f"{path}[{i}]", top=False)]
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return [path]
    if value["resourceType"] == "QuestionnaireResponse":
        return [path]
    if value["resourceType"] != "Bundle":
        return []
    entries = value.get("entry", [])
    out = []
    for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
        here = f"{path}.entry[{i}]"
        if isinstance(entry, dict) and "resource" in entry:
            out += record_paths(entry["resource"], f"{here}.resource", top=False)
        else:
            out.append(here)
    return out


def dumps(value: object) -> tuple[bytes, bool]:
    """JSON bytes with the placeholders swapped in; whether the text is unreadable as a whole."""
    unreadable = any(p in json.dumps(value) for p in _UNREADABLE)
    return hostile_json(value), unreadable


@st.composite
def files(draw: st.DrawFn) -> tuple[str, bytes, list[str]]:
    """(file suffix, content, the path of every record in it)."""
    base = draw(st.lists(responses(), min_size=1, max_size=4))
    resources: list[Any] = [draw(mutated(r)) if draw(st.booleans()) else r for r in base]
    for _ in range(draw(st.integers(0, 2))):  # exact repeats
        resources.insert(draw(st.integers(0, len(resources))), draw(st.sampled_from(resources)))
    for i in range(draw(st.integers(0, 3))):  # Patients, anywhere in the file
        patient = PATIENT | {"id": f"p{i}"}
        resources.insert(draw(st.integers(0, len(resources))), patient)
    layout = draw(st.sampled_from(["ndjson", "ndjson", "bundle", "array"]))
    if layout == "ndjson":
        lines: list[bytes] = []
        paths: list[str] = []
        for value in resources:
            if draw(st.integers(0, 5)) == 0:
                junk, n = draw(st.sampled_from(JUNK_LINES))
                lines.append(junk)
                paths += [f"line {len(lines)}"] * n
            data, unreadable = dumps(value)
            if draw(st.integers(0, 7)) == 0:  # a byte that is not UTF-8, anywhere in the line
                at = draw(st.integers(0, len(data)))
                data, unreadable = data[:at] + b"\xff" + data[at:], True
            lines.append(data)
            paths += (
                [f"line {len(lines)}"]
                if unreadable
                else record_paths(value, f"line {len(lines)}, $")
            )
        return ".ndjson", b"\n".join(lines) + b"\n", paths
    if layout == "bundle":
        doc: Any = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }
    else:
        doc = resources
    data, unreadable = dumps(doc)
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(data)))
        data, unreadable = data[:at] + b"\xff" + data[at:], True
    return ".json", data, (["$"] if unreadable else record_paths(doc, "$"))


def record_of(location: str, paths: set[str]) -> str:
    """The record a reject's location is in: the longest record path it starts with (a document
    that cannot be read at all is the one record ``$``, whatever the location says)."""
    if paths == {"$"}:
        return "$"
    found = [p for p in paths if location == p or location.startswith((p + ".", p + "[", p + ", "))]
    assert found, location
    return max(found, key=len)


#: pamlib's built-in plugins only, passed explicitly to what the helpers below call.
BUILTINS = PluginHost(load_entry_points=False, disabled=())


def check_file(path: Path, paths: list[str]) -> None:
    """Every property, for one file whose records are at ``paths``."""
    assessments, rejects, counts = read_fhir(path, instruments=BUILTINS.instruments())
    assert counts.n_read == counts.n_valid + counts.n_rejected == len(paths)
    assert counts.n_valid == len(assessments)
    assert counts.n_rejected == len(rejects)

    chunks = list(FhirFormat().read(path, ReadOptions(chunk_rows=2), host=BUILTINS))
    assert sum(c.n_read for c in chunks) == len(paths)
    rows = [
        (b.assessment_id[i], b.location(i))
        for c in chunks
        for b in c.batches
        for i in range(len(b))
    ]
    plugin_rejects = [r for c in chunks for r in c.rejects]
    assert sorted(str(a) for a, _ in rows) == sorted(a.id for a in assessments)
    key = lambda r: (r.location, r.code, r.message)  # noqa: E731
    assert sorted(map(key, plugin_rejects)) == sorted(map(key, rejects))
    assert len({str(a) for a, _ in rows}) == len(rows)  # no assessment id twice

    # Everything that is written out can be written as UTF-8.
    for a in assessments:
        values = [a.id, a.patient.id, a.site, a.language, dict(a.attributes)]
        json.dumps(values, ensure_ascii=False).encode()
    for r in rejects:
        json.dumps([r.location, r.code, r.message, dict(r.fields)], ensure_ascii=False).encode()

    wanted = set(paths)
    found = Counter([str(where) for _, where in rows])
    found.update(record_of(r.location, wanted) for r in plugin_rejects)
    assert found == Counter(paths)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(example=files())
def test_hostile_files_reconcile_and_both_paths_agree(
    example: tuple[str, bytes, list[str]], host: PluginHost
) -> None:
    suffix, data, paths = example
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        check_file(path, paths)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(example=files())
def test_hostile_files_through_the_command_line(
    example: tuple[str, bytes, list[str]],
    capsys: pytest.CaptureFixture[str],
    process_host: PluginHost,
) -> None:
    suffix, data, paths = example
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        out = Path(tmp) / "out.csv"
        code = main(["score", str(path), "--provider", "demo", "-o", str(out), "--no-progress"])
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert code == 0 or (code == 1 and "none of the" in text), text  # nothing scored: 1
        assert "Traceback" not in text
        (line,) = [x for x in text.splitlines() if x.startswith("read ")]
        assert line.startswith(f"read {len(paths)} = ")


def corpus() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".json", ".ndjson"))


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_corpus_replays(path: Path, host: PluginHost) -> None:
    """Each file is named ``what-it-is.N.suffix``: N is how many records it holds."""
    n = int(path.name.split(".")[-2])
    assessments, rejects, counts = read_fhir(path, instruments=host.instruments())
    assert counts.n_read == counts.n_valid + counts.n_rejected == n
    chunks = list(FhirFormat().read(path, ReadOptions(chunk_rows=1), host=host))
    assert sum(c.n_read for c in chunks) == n
    assert sum(len(b) for c in chunks for b in c.batches) == len(assessments)
    assert len([r for c in chunks for r in c.rejects]) == len(rejects)
