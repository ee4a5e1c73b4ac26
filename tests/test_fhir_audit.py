"""A reliability audit of FHIR R4 input: faults found with inputs real exports hold.

Each test drives :func:`pamlib.fhir.read_fhir` and the ``fhir`` format plugin (the columnar
path ``pamlib score`` reads), or the command line itself, and holds the non-negotiables: every
record is counted once (scored, not scored or rejected with its place and reason), one person
is one patient, and a file is read as the file it is.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.fhir import questionnaire_response, read_fhir
from pamlib.fhir.codes import PATIENT_ID_SYSTEM
from pamlib.fhir.plugin import FhirFormat
from pamlib.formats.base import ReadOptions, Reject
from pamlib.identity import Patient
from pamlib.plugins import PluginHost
from tests.test_fhir_out import sample

#: pamlib's built-in plugins only, passed explicitly to what the helpers below call.
BUILTINS = PluginHost(load_entry_points=False, disabled=())
ALL_ANSWERED = {f"pam13.{i:02d}": 1 + i % 4 for i in range(1, 14)}


def qr(aid: str = "A1", patient: str = "P1") -> dict[str, Any]:
    """A scoreable response with a contained Patient."""
    return questionnaire_response(sample(id=aid, patient=Patient(patient), responses=ALL_ANSWERED))


def cites(reference: str, aid: str) -> dict[str, Any]:
    """A response whose subject is ``reference`` (no contained Patient)."""
    resource = qr(aid)
    del resource["contained"]
    resource["subject"] = {"reference": reference}
    return resource


PATIENT = {
    "resourceType": "Patient",
    "id": "123",
    "identifier": [{"system": PATIENT_ID_SYSTEM, "value": "P9"}],
}


def both_paths(source: Path | dict[str, Any]) -> tuple[list[tuple[str, str | None]], list[Reject]]:
    """((assessment id, patient id) of each assessment, rejects), checking that the library and
    the format plugin agree and that the counts reconcile."""
    assessments, rejects, counts = read_fhir(source, instruments=BUILTINS.instruments())
    assert counts.n_read == counts.n_valid + counts.n_rejected
    assert (counts.n_valid, counts.n_rejected) == (len(assessments), len(rejects))
    if isinstance(source, Path):
        chunks = list(FhirFormat().read(source, ReadOptions(chunk_rows=2), host=BUILTINS))
        assert sum(c.n_read for c in chunks) == counts.n_read
        rows = sorted(
            (str(b.assessment_id[i]), str(b.patient_id[i]) or None)
            for c in chunks
            for b in c.batches
            for i in range(len(b))
        )
        assert rows == sorted((a.id, a.patient.id) for a in assessments)
        key = lambda r: (r.location, r.code, r.message)  # noqa: E731
        assert sorted(map(key, [r for c in chunks for r in c.rejects])) == sorted(map(key, rejects))
    return [(a.id, a.patient.id) for a in assessments], rejects


def write_ndjson(path: Path, resources: list[dict[str, Any]], encoding: str = "utf-8") -> Path:
    path.write_bytes("".join(json.dumps(r) + "\n" for r in resources).encode(encoding))
    return path


# -- one Patient, cited in every shape a server writes, is one patient ---------------------------

BASES = ["", "https://x.test/fhir/", "http://other.test/R4/"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shapes=st.lists(st.tuples(st.sampled_from(BASES), st.booleans()), min_size=1, max_size=5),
    patient_has_id=st.booleans(),
    layout=st.sampled_from(["bundle", "ndjson"]),
)
def test_a_patient_cited_by_any_reference_shape_is_one_patient(
    shapes: list[tuple[str, bool]], *, patient_has_id: bool, layout: str, tmp_path_factory: Any
) -> None:
    """Relative, absolute and versioned (``/_history/2``) references to one Patient all find
    it, also when the Patient is known only by a RESTful ``fullUrl``: every response is that
    patient's (``P9``), never a patient ``Patient/123`` of its own."""
    patient = copy.deepcopy(PATIENT)
    if not patient_has_id:
        del patient["id"]
    responses = [
        cites(f"{base}Patient/123" + ("/_history/2" if versioned else ""), f"A{i}")
        for i, (base, versioned) in enumerate(shapes)
    ]
    source: Path | dict[str, Any]
    if layout == "bundle" or not patient_has_id:  # NDJSON Patients are found by their id
        entries = [{"fullUrl": "https://x.test/fhir/Patient/123", "resource": patient}]
        entries += [{"resource": r} for r in responses]
        doc = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        path = tmp_path_factory.mktemp("b") / "in.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        source = path
    else:
        source = write_ndjson(tmp_path_factory.mktemp("n") / "in.ndjson", [*responses, patient])
    found, rejects = both_paths(source)
    assert rejects == []
    assert found == [(f"A{i}", "P9") for i in range(len(shapes))]


def test_a_versioned_reference_does_not_bypass_the_patients_problems(host: PluginHost) -> None:
    """A Patient whose NHS number fails its check rejects every response that cites it, by
    whatever reference."""
    patient = PATIENT | {
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765910"}]
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": cites("Patient/123/_history/1", "A1")}],
    }
    found, (reject,) = both_paths(bundle)
    assert found == []
    assert (reject.location, reject.code) == (
        "$.entry[0].resource.identifier[0].value",
        "nhs-number",
    )
    assert "9434765910" not in reject.message


# -- UTF-16 and UTF-32 text, by its byte order mark --------------------------------------------

WIDE = ["utf-16", "utf-16-be-bom", "utf-32", "utf-32-be-bom"]


def encode(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding``, byte order mark first (Python's ``utf-16``/``utf-32`` write the
    little-endian one; ``-be-bom`` the big-endian one)."""
    if encoding.endswith("-be-bom"):
        return ("\ufeff" + text).encode(encoding.removesuffix("-bom"))
    return text.encode(encoding)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 4),
    encoding=st.sampled_from(WIDE),
    newline=st.sampled_from(["\n", "\r\n"]),
    bad_line=st.booleans(),
)
def test_wide_unicode_ndjson_reads_as_its_utf8_twin(
    n: int, encoding: str, newline: str, *, bad_line: bool, tmp_path_factory: Any
) -> None:
    """A UTF-16/32 NDJSON file (PowerShell's ``>`` writes one) holds the same records as the
    same text in UTF-8: no line is a fragment of a character, no record appears from nothing."""
    lines = [json.dumps(qr(f"A{i}")) for i in range(n)]
    if bad_line:
        lines.insert(1, "{not json")
    text = newline.join(lines) + newline
    folder = tmp_path_factory.mktemp("w")
    utf8 = folder / "utf8.ndjson"
    utf8.write_bytes(text.encode("utf-8"))
    wide = folder / "wide.ndjson"
    wide.write_bytes(encode(text, encoding))
    want, want_rejects = both_paths(utf8)
    got, got_rejects = both_paths(wide)
    assert got == want == [(f"A{i}", "P1") for i in range(n)]
    assert [(r.location, r.code) for r in got_rejects] == [
        (r.location, r.code) for r in want_rejects
    ]


@pytest.mark.parametrize("encoding", WIDE)
def test_wide_unicode_json_document_is_read(encoding: str, tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": qr()}]}
    path = tmp_path / "in.json"
    path.write_bytes(encode(json.dumps(bundle, indent=1), encoding))
    assert both_paths(path) == ([("A1", "P1")], [])


def test_a_broken_wide_unicode_line_is_that_lines_reject(tmp_path: Path) -> None:
    """An unpaired UTF-16 surrogate on one line rejects that line (``encoding``) only."""
    data = ("\ufeff" + json.dumps(qr("A1")) + "\n").encode("utf-16-le")
    data += '{"resourceType": "x"}'.encode("utf-16-le")[:4] + b"\x00\xd8" + "\n".encode("utf-16-le")
    data += (json.dumps(qr("A2")) + "\n").encode("utf-16-le")
    path = tmp_path / "in.ndjson"
    path.write_bytes(data)
    found, (reject,) = both_paths(path)
    assert found == [("A1", "P1"), ("A2", "P1")]
    assert (reject.location, reject.code) == ("line 2", "encoding")


# -- an answer of the wrong type is never silently no answer -----------------------------------


@pytest.mark.parametrize("answer", [{}, "", 0, False, {"valueCoding": {"code": "3"}}])
def test_an_answer_that_is_not_a_list_rejects_its_response(answer: object) -> None:
    resource = qr()
    resource["item"][0]["answer"] = answer
    found, (reject,) = both_paths(resource)
    assert found == []
    assert (reject.location, reject.code) == ("$.item[0].answer", "type")


def test_an_empty_or_null_answer_is_no_answer() -> None:
    answers: list[object] = [[], None]
    for answer in answers:
        resource = qr()
        resource["item"][0]["answer"] = answer
        (assessment,), _, _ = read_fhir(resource, instruments=BUILTINS.instruments())
        assert "pam13.01" not in assessment.responses


# -- a subject that could be either of two contained Patients is nobody's ----------------------


@pytest.mark.parametrize("layout", ["json", "ndjson"])
def test_two_contained_resources_with_one_id_are_an_ambiguous_subject(
    layout: str, tmp_path: Path
) -> None:
    resource = qr("A1", "P1")
    other = copy.deepcopy(resource["contained"][0])
    other["identifier"][0]["value"] = "P2"
    resource["contained"].append(other)
    path = tmp_path / f"in.{layout}"
    if layout == "ndjson":
        write_ndjson(path, [resource, qr("A2")])
        where = "line 1, $.subject.reference"
    else:
        path.write_text(json.dumps([resource, qr("A2")]), encoding="utf-8")
        where = "$[0].subject.reference"
    found, (reject,) = both_paths(path)
    assert found == [("A2", "P1")]
    assert (reject.location, reject.code) == (where, "ambiguous-reference")
    assert "P1" not in reject.message
    assert "P2" not in reject.message


# -- a file is read as the file it is ----------------------------------------------------------


@pytest.mark.parametrize("name", ["[site A] export.json", "{2025} export.ndjson", "[x].json"])
def test_a_file_name_that_starts_like_json_is_a_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path given as text (as the command line gives it) whose name starts with a
    bracket is still the file: its records are read, not the name parsed as JSON."""
    monkeypatch.chdir(tmp_path)
    if name.endswith(".ndjson"):
        write_ndjson(tmp_path / name, [qr("A1"), qr("A2")])
    else:
        (tmp_path / name).write_text(json.dumps([qr("A1"), qr("A2")]), encoding="utf-8")
    assessments, rejects, _ = read_fhir(name, instruments=BUILTINS.instruments())
    assert ([a.id for a in assessments], rejects) == (["A1", "A2"], [])
    chunks = list(FhirFormat().read(name, ReadOptions(), host=BUILTINS))
    assert [r for c in chunks for r in c.rejects] == []
    assert sum(len(b) for c in chunks for b in c.batches) == 2


def test_ndjson_in_a_json_file_is_one_reject_that_says_what_it_is(tmp_path: Path) -> None:
    """A file's name says how it is read: NDJSON saved as ``.json`` stays one reject (as the
    fuzz harness counts it), and its message says how to have it read line by line."""
    path = tmp_path / "export.json"
    path.write_text(json.dumps(qr("A1")) + "\n" + json.dumps(qr("A2")) + "\n", encoding="utf-8")
    found, (reject,) = both_paths(path)
    assert (found, reject.location, reject.code) == ([], "line 2 column 1", "json")
    assert reject.message.endswith("a JSON value per line is NDJSON (name the file .ndjson)")


def test_a_broken_json_document_is_still_one_plain_reject(tmp_path: Path) -> None:
    """Two pretty-printed Bundles pasted together are not NDJSON: one reject, as before."""
    bundle = json.dumps({"resourceType": "Bundle", "type": "collection"}, indent=1)
    path = tmp_path / "in.json"
    path.write_text(bundle + "\n" + bundle + "\n", encoding="utf-8")
    found, (reject,) = both_paths(path)
    assert (found, reject.code, reject.message) == ([], "json", "not JSON: Extra data")


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 5),
    newline=st.sampled_from(["\n", "\r\n"]),
    blank_lines=st.booleans(),
    junk_at=st.none() | st.integers(1, 4),
)
def test_ndjson_on_standard_input_is_read_line_by_line(
    n: int, newline: str, *, blank_lines: bool, junk_at: int | None
) -> None:
    """Standard input has no name to say what it holds: NDJSON there is read line by line, each
    line a record with its line number, not the whole input one reject."""
    from pamlib.fhir._reader import FhirReader

    lines = [json.dumps(qr(f"A{i}")) for i in range(n)]
    if junk_at is not None:
        lines.insert(min(junk_at, len(lines)), "{not json")
    data = ((newline * 2 if blank_lines else newline).join(lines) + newline).encode()

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", Stdin)
        chunks = list(FhirReader(BUILTINS.instruments(), chunk_rows=2).read("-"))
    rows = [row.assessment_id for c in chunks for row in c.rows]
    rejects = [r for c in chunks for r in c.rejects]
    assert sum(c.n_read for c in chunks) == n + (junk_at is not None)
    assert rows == [f"A{i}" for i in range(n)]
    assert [r.code for r in rejects] == ([] if junk_at is None else ["json"])
    assert all(r.location.startswith("line ") and r.source == "<stdin>" for r in rejects)


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_fhir_on_standard_input(
    layout: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    process_host: PluginHost,
) -> None:
    """``pamlib score - --input-format fhir``: the help says ``-`` is standard input."""
    if layout == "bundle":
        doc: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
        doc["entry"] = [{"resource": qr("A1")}, {"resource": qr("A2")}]
        data = json.dumps(doc).encode()
    else:
        data = (json.dumps(qr("A1")) + "\n" + json.dumps(qr("A2")) + "\n").encode()

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr("sys.stdin", Stdin)
    out = tmp_path / "scored.csv"
    args = ["score", "-", "--input-format", "fhir", "--provider", "demo", "-o", str(out)]
    code = main([*args, "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 0, err
    assert "read 2 = scored 2 + not scored 0 + rejected 0" in err


# -- Bundles of every shape: each record once, at its own JSON path ------------------------------

#: Entries that are not records (``None``), or the one record each is (a reject, or a response).
ODD_ENTRIES: list[tuple[object, str | None]] = [
    (None, "reject"),
    ([], "reject"),
    ("text", "reject"),
    (3, "reject"),
    ({"fullUrl": "urn:uuid:x"}, "reject"),
    ({"resource": None}, "reject"),
    ({"resource": [1]}, "reject"),
    ({"resource": {"resourceType": "Observation"}}, None),
    ({"resource": {"resourceType": 7}}, "reject"),
]


@st.composite
def bundles(
    draw: st.DrawFn, depth: int = 0, ids: list[str] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A Bundle of odd entries, responses and Bundles, and (path, what) of each record in it,
    paths relative to the Bundle; ``ids`` are the assessment ids given so far."""
    ids = [] if ids is None else ids
    n_entries = draw(st.integers(0, 4))
    entries: list[object] = []
    records: list[tuple[str, str]] = []
    for i in range(n_entries):
        kind = draw(st.sampled_from(["odd", "response", "bundle"] if depth < 2 else ["odd"]))
        if kind == "odd":
            entry, what = draw(st.sampled_from(ODD_ENTRIES))
            entries.append(copy.deepcopy(entry))
            if what is not None:
                inside = isinstance(entry, dict) and "resource" in entry
                records.append((f".entry[{i}]" + (".resource" if inside else ""), what))
        elif kind == "response":
            aid = f"R{len(ids)}"
            ids.append(aid)
            entries.append({"resource": qr(aid)})
            records.append((f".entry[{i}].resource", aid))
        else:
            inner, inner_records = draw(bundles(depth + 1, ids))
            entries.append({"resource": inner})
            records += [(f".entry[{i}].resource{p}", w) for p, w in inner_records]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    # one entry, not in an array (not a list itself: that would be read as the array)
    if len(entries) == 1 and not isinstance(entries[0], list) and draw(st.booleans()):
        bundle["entry"] = entries[0]
        records = [(p.replace(".entry[0]", ".entry", 1), w) for p, w in records]
    elif len(entries) > 0 or draw(st.booleans()):
        bundle["entry"] = entries
    return bundle, records


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=bundles())
def test_every_record_of_any_bundle_is_counted_once_at_its_path(
    example: tuple[dict[str, Any], list[tuple[str, str]]],
) -> None:
    bundle, records = example
    assessments, rejects, counts = read_fhir(bundle, instruments=BUILTINS.instruments())
    assert counts.n_read == counts.n_valid + counts.n_rejected == len(records)
    responses = {f"${p}": w for p, w in records if w != "reject"}
    odd = sorted(f"${p}" for p, w in records if w == "reject")
    assert sorted(r.location for r in rejects) == odd
    assert {a.id for a in assessments} == set(responses.values())
    # Each row is located at its response, a path that exists in the document.
    rows = [(row.assessment_id, row.location) for row in _rows(bundle)]
    assert sorted(rows) == sorted((w, p) for p, w in responses.items())


def _rows(source: dict[str, Any]) -> list[Any]:
    from pamlib.fhir._reader import FhirReader

    reader = FhirReader(BUILTINS.instruments())
    return [row for chunk in reader.read(source) for row in chunk.rows]


def test_a_search_page_that_links_to_a_next_page_is_said_to_be_partial(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The rest of the search is not in the input: a warning says so, without the link (a
    search URL may hold an identifier)."""
    link = "https://x.test/fhir/QuestionnaireResponse?subject.identifier=9434765919&page=2"
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [
            {"relation": "self", "url": "https://x.test/a"},
            {"relation": "next", "url": link},
        ],
        "entry": [{"resource": qr()}],
    }
    with caplog.at_level("WARNING", logger="pamlib.fhir"):
        (_,), _, _ = read_fhir(bundle, instruments=BUILTINS.instruments())
    (record,) = [r for r in caplog.records if "next page" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert "9434765919" not in record.getMessage()
    assert "x.test" not in record.getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="pamlib.fhir"):
        read_fhir(
            bundle | {"link": [{"relation": "self", "url": link}]},
            instruments=BUILTINS.instruments(),
        )
    assert not [r for r in caplog.records if "next page" in r.getMessage()]
