"""A second reliability audit of FHIR R4 input: a time read past, a Patient reference that means
two people, and a file that is not UTF-8.

As in :mod:`tests.test_fhir_audit`, each test drives :func:`pamlib.fhir.read_fhir`, the ``fhir``
format plugin or the command line, and holds the non-negotiables: nothing is read wrong
silently, every record is counted once with its place and reason, and no identifier is quoted.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import importlib.util
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import FormatError
from pamlib.fhir import read_fhir
from pamlib.fhir._reader import FhirReader
from pamlib.fhir.codes import PATIENT_ID_SYSTEM
from pamlib.fhir.plugin import FhirFormat
from pamlib.formats.base import ReadOptions
from pamlib.plugins import PluginHost
from tests.test_fhir_audit import BUILTINS, both_paths, cites, qr, write_ndjson

HAS_MSGSPEC = importlib.util.find_spec("msgspec") is not None
if HAS_MSGSPEC:  # the typed path is there to compare with the others
    from tests.test_fhir_json import standard_library_only
    from tests.test_fhir_typed import dictionaries_only, everything


def read_three_ways(data: bytes) -> list[object]:
    """What the typed path, the dictionary path and the standard library's parser each make
    of an NDJSON file, three records a chunk (a :class:`FormatError` as its problems)."""
    out: list[object] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.ndjson"
        path.write_bytes(data)
        for way in (contextlib.nullcontext, dictionaries_only, standard_library_only):
            with way():
                try:
                    out.append(everything(path))
                except FormatError as exc:
                    out.append(exc.problems)
    return out


# -- authored: a time FHIR does not allow is no date ---------------------------------------------

#: FHIR R4's dateTime, as the specification writes its regex (section 2.24.0.1).
FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?\Z"
)
#: What pamlib reads: FHIR's pattern, with the seconds and the zone that FHIR requires of a
#: time allowed to be missing (the date is certain without them).
READ_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)(\.[0-9]+)?)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?\Z"
)

BAD_TIMES = [
    "2025-03-01T25:99",
    "2025-03-01T24:00:01",
    "2025-03-01T24:00:00Z",
    "2025-03-01T12:60:00Z",
    "2025-03-01T12:00:61Z",
    "2025-03-01T10:00:00+25:00",
    "2025-03-01T10:00:00+14:01",
    "2025-03-01T",
    "2025-03-01T10:00:00.Z",
    "2025-03-01t10:00:00z",
    "2025-03-01 10:00:00Z",
    "2025-03-01T10:00:00Z trailing",
    "2025-03-01T1٠:00:00Z",  # an Arabic-Indic digit: int() would read it
]


def _one(resource: dict[str, Any], tmp_path: Path) -> list[tuple[str, Any, str, str]]:
    """What the dictionary path and the NDJSON path (typed where it applies) make of one
    response: (path, date or None, reject location, reject code)."""
    out = []
    dictionary, dict_rejects, _ = read_fhir(resource, instruments=BUILTINS.instruments())
    ndjson, nd_rejects, _ = read_fhir(
        write_ndjson(tmp_path / "one.ndjson", [resource]), instruments=BUILTINS.instruments()
    )
    for name, found, rejects in (
        ("dict", dictionary, dict_rejects),
        ("ndjson", ndjson, nd_rejects),
    ):
        assert len(rejects) <= 1
        day = found[0].assessed_on if found else None
        where = "".join(r.location.removeprefix("line 1, ") for r in rejects)
        out.append((name, day, where, "".join(r.code for r in rejects)))
    return out


@pytest.mark.parametrize("authored", BAD_TIMES)
def test_an_impossible_time_rejects_the_response_at_authored(authored: str, tmp_path: Path) -> None:
    resource = qr()
    resource["authored"] = authored
    assert _one(resource, tmp_path) == [
        ("dict", None, "$.authored", "date"),
        ("ndjson", None, "$.authored", "date"),
    ]
    _, (reject,), _ = read_fhir(resource, instruments=BUILTINS.instruments())
    assert authored not in reject.message
    assert "time" in reject.message


@pytest.mark.parametrize(
    ("authored", "day"),
    [
        ("2025-03-01T23:30:00-05:00", dt.date(2025, 3, 1)),  # 04:30 on 2 March in UTC
        ("2025-03-01T00:30:00+14:00", dt.date(2025, 3, 1)),  # 10:30 on 28 February in UTC
        ("2025-03-01T23:59:60Z", dt.date(2025, 3, 1)),  # a leap second
        ("2025-03-01T09:41:27.112Z", dt.date(2025, 3, 1)),
        ("2025-03-01", dt.date(2025, 3, 1)),
        ("2025-03-01T10:00:00", dt.date(2025, 3, 1)),  # no zone, which FHIR requires
        ("2025-03-01T10:00Z", dt.date(2025, 3, 1)),  # no seconds, which FHIR requires
        ("2025-03-01T10:00", dt.date(2025, 3, 1)),
    ],
)
def test_a_valid_time_gives_the_date_as_written(
    authored: str, day: dt.date, tmp_path: Path
) -> None:
    """The author's own calendar date, never moved to another day by a zone."""
    resource = qr()
    resource["authored"] = authored
    assert _one(resource, tmp_path) == [("dict", day, "", ""), ("ndjson", day, "", "")]


_TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")
_TIMES = st.one_of(
    st.just(""),
    st.just("T"),
    st.builds(
        lambda h, m, s, frac, zone: f"T{h}:{m}" + ("" if s is None else f":{s}") + frac + zone,
        _TWO,
        _TWO,
        st.none() | _TWO,
        st.sampled_from(["", ".5", ".123456789", "."]),
        st.sampled_from(["", "Z", "z", "+00:00", "-05:00", "+14:00", "-14:01", "+13:59", "+25:00"])
        | st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), _TWO, _TWO),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    day=st.sampled_from(["2025-03-01", "2024-02-29", "2025-02-29", "2025-12-31", "2025-03"]),
    time=_TIMES,
)
def test_authored_is_read_exactly_when_fhir_allows_it(day: str, time: str) -> None:
    """A response is read when, and only when, ``authored`` is a FHIR dateTime with a full,
    real date (seconds and zone may be missing); its date is then the date written. The typed
    NDJSON path, the dictionary path and the standard library's parser agree on every value."""
    authored = day + time
    resource = qr()
    resource["authored"] = authored
    found, rejects, counts = read_fhir(resource, instruments=BUILTINS.instruments())
    assert counts.n_read == 1
    try:
        real = dt.date.fromisoformat(authored[:10])
    except ValueError:
        real = None
    if FHIR_DATETIME.match(authored):
        assert READ_DATETIME.match(authored)  # the oracle of what is read is the wider
    if READ_DATETIME.match(authored) and len(day) == 10 and real is not None:
        assert [a.assessed_on for a in found] == [real]
    else:
        assert [(r.location, r.code) for r in rejects] == [("$.authored", "date")]
    data = (json.dumps(resource) + "\n" + json.dumps(qr("A2")) + "\n").encode()
    if HAS_MSGSPEC:
        typed, dictionaries, stdlib = read_three_ways(data)
        assert typed == dictionaries == stdlib


# -- one Patient reference, two different Patients ---------------------------------------------


def patient(person: str, meta: dict[str, str] | None = None) -> dict[str, Any]:
    """``Patient/1``, whose id in pamlib's system is ``person``."""
    resource = {
        "resourceType": "Patient",
        "id": "1",
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": person}],
    }
    return resource if meta is None else resource | {"meta": meta}


def bundle(*resources: dict[str, Any], full_urls: bool = False) -> dict[str, Any]:
    """A collection Bundle; ``full_urls`` gives each Patient the RESTful ``fullUrl`` of its id."""
    entries: list[dict[str, Any]] = []
    for r in resources:
        entry: dict[str, Any] = {"resource": r}
        if full_urls and r["resourceType"] == "Patient":
            entry["fullUrl"] = f"https://x.test/fhir/Patient/{r['id']}"
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def no_ids_in(rejects: list[Any]) -> None:
    """No reject (or error) quotes a patient's id or the reference."""
    for reject in rejects:
        message = getattr(reject, "message", str(reject))
        for text in ("X1", "Y1", "Patient/1"):
            assert text not in message


@pytest.mark.parametrize("nested", [False, True])
def test_each_bundle_resolves_its_own_patient(nested: bool) -> None:
    """Two Bundles of one input, each with a different ``Patient/1``: a response finds the one
    in its own Bundle (FHIR resolves a reference inside a Bundle against its entries)."""
    first = bundle(patient("X1"), cites("Patient/1", "A1"))
    second = bundle(cites("Patient/1", "A2"), patient("Y1"), full_urls=True)
    source: Any = bundle(first, second) if nested else [first, second]
    found, rejects = both_paths(source)
    assert (found, rejects) == ([("A1", "X1"), ("A2", "Y1")], [])


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(bundle(patient("X1"), patient("Y1"), cites("Patient/1", "A1")), id="one"),
        pytest.param(
            bundle(patient("X1"), patient("Y1"), cites("Patient/1", "A1"), full_urls=True),
            id="one-full-urls",
        ),
        pytest.param(
            [bundle(patient("X1")), bundle(patient("Y1")), cites("Patient/1", "A1")], id="outside"
        ),
        pytest.param(
            bundle(bundle(patient("X1")), bundle(patient("Y1")), cites("Patient/1", "A1")),
            id="nested",
        ),
        pytest.param(
            [patient("X1"), bundle(patient("Y1")), bundle(cites("Patient/1", "A1"))], id="third"
        ),
    ],
)
def test_a_reference_two_different_patients_answer_to_is_ambiguous(source: Any) -> None:
    found, rejects = both_paths(source)
    assert found == []
    (reject,) = rejects
    assert reject.code == "ambiguous-reference"
    assert reject.location.endswith(".subject.reference")
    no_ids_in(rejects)


def test_copies_of_one_patient_are_one_patient() -> None:
    """The same Patient twice (a Bundle per response repeats it; a later version differs in
    ``meta`` only) is not ambiguous."""
    v2 = patient("X1", meta={"versionId": "2"})
    source: Any = [
        bundle(patient("X1")),
        bundle(v2),
        patient("X1"),
        cites("Patient/1", "A1"),
        cites("https://x.test/fhir/Patient/1/_history/2", "A2"),
    ]
    assert both_paths(source) == ([("A1", "X1"), ("A2", "X1")], [])


#: Lines of an NDJSON file: "X"/"Y" a Patient/1 line of person X1/Y1, "x" a copy of X1 that
#: differs in meta only, "r" a response citing Patient/1, "c" one with a contained Patient.
_LINES = st.lists(st.sampled_from("XYxrc"), min_size=1, max_size=8)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_LINES)
def test_a_patient_reference_two_patients_have_is_never_read_as_either(
    lines: list[str], tmp_path_factory: Any
) -> None:
    """In NDJSON, read in one pass, a response citing ``Patient/1`` is X1's when every Patient
    line with that id is X1. When X1 and Y1 are both there, it is rejected
    (``ambiguous-reference``) — or, when the second of them comes after responses were read as
    the first's, the read stops (``FormatError`` naming that line) rather than leave them so.
    Whatever the chunk size, and the same on every parsing path."""
    resources: list[dict[str, Any]] = []
    for i, kind in enumerate(lines):
        if kind in "XYx":
            meta = {"versionId": "2"} if kind == "x" else None
            resources.append(patient("Y1" if kind == "Y" else "X1", meta))
        else:
            resources.append(cites("Patient/1", f"A{i}") if kind == "r" else qr(f"A{i}", "P1"))
    path = write_ndjson(tmp_path_factory.mktemp("n") / "in.ndjson", resources)
    # The oracle: who each response is, line by line, as the file unfolds.
    people = {"X": "X1", "x": "X1", "Y": "Y1"}
    seen: set[str] = set()
    read_as: set[str] = set()  # whose Patient line responses read so far were given
    stop = None
    for i, kind in enumerate(lines):
        if kind in people:
            if read_as and people[kind] not in seen | read_as:
                stop = f"line {i + 1}"
                break
            seen.add(people[kind])
        elif kind == "r" and len(seen) == 1:
            read_as |= seen
    everyone = {people[k] for k in lines if k in people}
    responses = [i for i, kind in enumerate(lines) if kind in "rc"]
    want = [(f"A{i}", "P1") for i in responses if lines[i] == "c"]
    if len(everyone) <= 1:
        want += [(f"A{i}", min(everyone or {"Patient/1"})) for i in responses if lines[i] == "r"]
    ambiguous = [] if len(everyone) <= 1 else [i for i in responses if lines[i] == "r"]
    for chunk_rows in (1, 3, 100):
        reader = FhirReader(BUILTINS.instruments(), chunk_rows=chunk_rows)
        if stop is not None:
            with pytest.raises(FormatError) as caught:
                list(reader.read(path))
            (problem,) = caught.value.problems
            assert (problem.where, problem.code) == (stop, "ambiguous-reference")
            no_ids_in([caught.value])
            continue
        chunks = list(reader.read(path))
        rows = [r for c in chunks for r in c.rows]
        rejects = [r for c in chunks for r in c.rejects]
        assert sum(c.n_read for c in chunks) == len(responses) == len(rows) + len(rejects)
        assert sorted((r.assessment_id, r.patient_id) for r in rows) == sorted(want)
        assert sorted(r.location for r in rejects) == sorted(
            f"line {i + 1}, $.subject.reference" for i in ambiguous
        )
        assert {r.code for r in rejects} <= {"ambiguous-reference"}
        no_ids_in(rejects)
    if HAS_MSGSPEC:  # the typed path, the dictionary path, no msgspec: the same
        typed, dictionaries, stdlib = read_three_ways(path.read_bytes())
        assert typed == dictionaries == stdlib


def test_a_response_before_its_patients_waits_and_is_ambiguous(tmp_path: Path) -> None:
    path = write_ndjson(
        tmp_path / "in.ndjson",
        [cites("Patient/1", "A1"), qr("A2"), patient("X1"), patient("Y1")],
    )
    found, (reject,) = both_paths(path)
    assert found == [("A2", "P1")]
    assert (reject.location, reject.code) == ("line 1, $.subject.reference", "ambiguous-reference")
    no_ids_in([reject])


def test_responses_read_before_a_second_patient_stop_the_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], process_host: PluginHost
) -> None:
    """Responses already read cannot be taken back: a later, different Patient under the
    reference they cite stops the read with one clear error naming the line and no id, and
    ``pamlib score`` writes no output."""
    path = write_ndjson(
        tmp_path / "in.ndjson",
        [patient("X1"), cites("Patient/1", "A1"), qr("A2"), patient("Y1")],
    )
    with pytest.raises(FormatError) as caught:
        read_fhir(path, instruments=BUILTINS.instruments())
    (problem,) = caught.value.problems
    assert (problem.where, problem.code) == ("line 4", "ambiguous-reference")
    no_ids_in([caught.value])
    out = tmp_path / "scored.csv"
    code = main(["score", str(path), "--provider", "demo", "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    assert "line 4" in err
    assert not out.exists()


def test_a_patient_inside_an_ndjson_bundle_line_is_that_lines(tmp_path: Path) -> None:
    """A Bundle line resolves its own Patient first; a response on a line of its own finds the
    Patient line (a Bundle's entries are not the server's Patients)."""
    path = write_ndjson(
        tmp_path / "in.ndjson",
        [
            patient("Y1"),
            bundle(cites("Patient/1", "A1"), patient("X1"), patient("X1")),
            cites("Patient/1", "A2"),
        ],
    )
    assert both_paths(path) == ([("A1", "X1"), ("A2", "Y1")], [])


# -- --encoding: a file that is not UTF-8 is read as the user says it is ------------------------

#: Names with characters outside ASCII that each encoding below can hold.
_NAMES = st.text(alphabet=st.sampled_from("abcXYZ019 éüßÆøœ€—’"), min_size=1, max_size=8).filter(
    str.strip
)
ENCODINGS = ["cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "utf-8"]


def _encoded(text: str, encoding: str) -> bytes:
    if encoding == "latin-1":
        text = text.translate({ord(c): "?" for c in "€—’œ"})
    return text.encode(encoding)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(_NAMES, min_size=1, max_size=3),
    encoding=st.sampled_from(ENCODINGS),
    layout=st.sampled_from(["ndjson", "json"]),
)
def test_a_file_in_the_encoding_given_reads_as_its_utf8_twin(
    names: list[str], encoding: str, layout: str, tmp_path_factory: Any
) -> None:
    """``encoding=`` (``--encoding``): each patient id is read as the characters written."""
    if encoding == "latin-1":
        names = [n.translate({ord(c): "?" for c in "€—’œ"}) for n in names]
    resources = [qr(f"A{i}", name) for i, name in enumerate(names)]
    if layout == "ndjson":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in resources)
    else:
        text = json.dumps(bundle(*resources), ensure_ascii=False, indent=1)
    path = tmp_path_factory.mktemp("e") / f"in.{layout}"
    path.write_bytes(_encoded(text, encoding))
    found, rejects, _ = read_fhir(path, instruments=BUILTINS.instruments(), encoding=encoding)
    assert rejects == []
    assert [(a.id, a.patient.id) for a in found] == [(f"A{i}", n) for i, n in enumerate(names)]
    chunks = list(
        FhirFormat().read(path, ReadOptions(settings={"encoding": encoding}), host=BUILTINS)
    )
    assert [str(b.patient_id[i]) for c in chunks for b in c.batches for i in range(len(b))] == [
        *names
    ]


def test_bytes_the_encoding_given_cannot_read_reject_their_line(tmp_path: Path) -> None:
    """cp1252 has no character for 0x81: that line is rejected and says which encoding."""
    good = json.dumps(qr("A1", "Zoë"), ensure_ascii=False).encode("cp1252")
    bad = json.dumps(qr("A2", "Zo?"), ensure_ascii=False).encode("cp1252").replace(b"?", b"\x81")
    path = tmp_path / "in.ndjson"
    path.write_bytes(good + b"\n" + bad + b"\n")
    found, (reject,), _ = read_fhir(path, instruments=BUILTINS.instruments(), encoding="cp1252")
    assert [(a.id, a.patient.id) for a in found] == [("A1", "Zoë")]
    assert (reject.location, reject.code, reject.message) == (
        "line 2",
        "encoding",
        "not CP1252 text",
    )


#: (``--encoding``, how the file's text is encoded)
SCORED = [
    ("utf-16", "utf-16-le"),  # no byte order mark
    ("utf-16", "utf-16-be"),
    ("utf-16", "utf-16"),  # with one
    ("utf-32", "utf-32-be"),
    ("cp1252", "cp1252"),
    ("utf-8", "utf-8"),
]


@pytest.mark.parametrize("encoding", SCORED, ids="/".join)
@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_score_with_encoding_reads_fhir(
    encoding: tuple[str, str],
    suffix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    process_host: PluginHost,
) -> None:
    """``pamlib score x.ndjson --encoding utf-16`` reads the file, never a traceback or
    "unknown FHIR input settings"."""
    resources = [qr("A1", "Zoë"), qr("A2", "Zoë")]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in resources)
    if suffix == ".json":
        text = json.dumps(bundle(*resources), ensure_ascii=False)
    path = tmp_path / f"x{suffix}"
    given, written = encoding
    path.write_bytes(text.encode(written))
    out = tmp_path / "scored.csv"
    args = ["score", str(path), "--encoding", given, "--provider", "demo", "-o", str(out)]
    code = main([*args, "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 0, err
    assert "read 2 = scored 2 + not scored 0 + rejected 0" in err
    assert out.read_text(encoding="utf-8").count("Zoë") == 2


def test_a_bad_encoding_setting_is_one_clear_error() -> None:
    from pamlib.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown encoding"):
        read_fhir(copy.deepcopy(qr()), instruments=BUILTINS.instruments(), encoding="nonsense")
