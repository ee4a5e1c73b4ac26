"""Issue cases 8, 9 and 15 for FHIR input: repeats, hostile JSON and mapping files that misread.

Every test drives the command line (``pamlib score``, ``pamlib fhir check``) or both reading paths
of the library: :func:`pamlib.fhir.read_fhir` (assessments) and the ``fhir`` format plugin
(record batches, as ``pamlib score`` reads).
"""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pamlib.cli import main
from pamlib.errors import ConfigurationError, ValidationError
from pamlib.fhir import (
    parse_mapping,
    questionnaire_response,
    read_fhir,
)
from pamlib.fhir.codes import QUESTIONNAIRE_BASE
from pamlib.fhir.mapping import FhirMapping, QuestionnaireMapping, load_mapping
from pamlib.fhir.plugin import FhirFormat
from pamlib.formats.base import ReadOptions, Reject
from pamlib.identity import Patient
from pamlib.plugins import PluginHost
from pamlib.serialize import loads
from tests.test_fhir_in import FOREIGN_URL, bundle_of, foreign_qr, mapping
from tests.test_fhir_out import sample

#: Every item of PAM-13 answered, so the demo provider scores the response.
ALL_ANSWERED = {f"pam13.{i:02d}": 1 + i % 4 for i in range(1, 14)}


def qr(aid: str | None = "A1", patient: str = "P1") -> dict[str, Any]:
    """A scoreable QuestionnaireResponse with assessment id ``aid`` (no identifier if None)."""
    resource = questionnaire_response(
        sample(id=aid or "unused", patient=Patient(patient), responses=ALL_ANSWERED)
    )
    if aid is None:
        del resource["identifier"]
    return resource


def ndjson(path: Path, *lines: object) -> Path:
    """Write ``lines`` (resources, or raw ``str``/``bytes`` lines) as NDJSON."""
    out = b""
    for line in lines:
        if isinstance(line, bytes):
            out += line
        elif isinstance(line, str):
            out += line.encode("utf-8")
        else:
            out += json.dumps(line).encode("utf-8")
        out += b"\n"
    path.write_bytes(out)
    return path


def score(
    source: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, list[dict[str, str]]]:
    """Run ``pamlib score`` with the demo provider: (exit status, reconciliation line, rejects)."""
    out = source.with_name(source.name + ".scored.csv")
    rejects = source.with_name(source.name + ".rejects.csv")
    code = main(
        ["score", str(source), "--provider", "demo", "-o", str(out), "--rejects", str(rejects)]
    )
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    assert "internal error" not in text
    lines = [line for line in text.splitlines() if line.startswith("read ")]
    rows = []
    if rejects.exists():
        with rejects.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    return code, lines[-1] if lines else text, rows


#: pamlib's built-in plugins only, passed explicitly to what the helpers below call.
BUILTINS = PluginHost(load_entry_points=False, disabled=())


def both_paths(source: Path | dict[str, Any], **kwargs: Any) -> tuple[list[str], list[Reject]]:
    """(assessment ids, rejects), checking that the library and the format plugin agree."""
    assessments, rejects, counts = read_fhir(source, **kwargs, instruments=BUILTINS.instruments())
    assert counts.n_read == counts.n_valid + counts.n_rejected
    if isinstance(source, Path):
        chunks = list(FhirFormat().read(source, ReadOptions(chunk_rows=1), host=BUILTINS))
        ids = [i for c in chunks for b in c.batches for i in b.assessment_id.tolist()]
        plugin_rejects = [r for c in chunks for r in c.rejects]
        assert sum(c.n_read for c in chunks) == counts.n_read
        assert sorted(ids) == sorted(a.id for a in assessments)
        key = lambda r: (r.location, r.code, r.message)  # noqa: E731
        assert sorted(map(key, plugin_rejects)) == sorted(map(key, rejects))
    return [a.id for a in assessments], rejects


# -- case 8: a repeated response is rejected, as in CSV ------------------------------------------


def csv_duplicate_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The message of the CSV reader's reject for a repeated assessment id."""
    header = "patient_id,assessment_id,assessed_on,instrument," + ",".join(
        f"q{i}" for i in range(1, 14)
    )
    row = "P1,A1,2025-03-01,PAM-13," + ",".join(["2"] * 13)
    path = tmp_path / "repeat.csv"
    path.write_text(f"{header}\n{row}\n{row}\n", encoding="utf-8")
    _, _, (reject,) = score(path, capsys)
    assert reject["code"] == "duplicate-assessment-id"
    return reject["message"].split(" @ ")[0]


@pytest.mark.parametrize("layout", ["bundle", "ndjson", "array"])
def test_case_08_repeated_fhir_response_is_rejected(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], process_host: PluginHost
) -> None:
    first, other, repeat = qr("A1"), qr("A2", "P2"), qr("A1")
    if layout == "bundle":
        path = tmp_path / "in.json"
        path.write_text(json.dumps(bundle_of(first, other, repeat)), encoding="utf-8")
        where = "$.entry[2].resource.identifier.value"
    elif layout == "array":
        path = tmp_path / "in.json"
        path.write_text(json.dumps([first, other, repeat]), encoding="utf-8")
        where = "$[2].identifier.value"
    else:
        path = ndjson(tmp_path / "in.ndjson", first, other, repeat)
        where = "line 3, $.identifier.value"
    code, reconciliation, (reject,) = score(path, capsys)
    assert code == 0
    assert reconciliation == "read 3 = scored 2 + not scored 0 + rejected 1"
    assert (reject["line"], reject["code"]) == (where, "duplicate-assessment-id")
    assert reject["message"] == csv_duplicate_message(tmp_path, capsys)
    ids, (lib_reject,) = both_paths(path)
    assert ids == ["A1", "A2"]
    assert (lib_reject.location, lib_reject.code) == (where, "duplicate-assessment-id")


def test_case_08_repeats_across_chunks_and_lines_in_file_order(
    tmp_path: Path, host: PluginHost, process_host: PluginHost
) -> None:
    """The first response of the file keeps its id, even one that waits for its Patient."""
    waiting = qr("A1") | {"subject": {"reference": "Patient/p9"}, "contained": []}
    patient = {
        "resourceType": "Patient",
        "id": "p9",
        "identifier": [{"system": "https://pamlib.org/fhir/Id/patient-id", "value": "P9"}],
    }
    path = ndjson(tmp_path / "in.ndjson", waiting, qr("A2"), qr("A1"), patient, qr("A2"))
    ids, rejects = both_paths(path)
    assert sorted(ids) == ["A1", "A2"]
    assert [(r.location, r.code) for r in rejects] == [
        ("line 3, $.identifier.value", "duplicate-assessment-id"),
        ("line 5, $.identifier.value", "duplicate-assessment-id"),
    ]
    (a1,) = [a for a in read_fhir(path, instruments=host.instruments())[0] if a.id == "A1"]
    assert a1.patient.id == "P9"  # the one on line 1, read once its Patient was known


def test_case_08_repeat_of_a_rejected_response_is_still_a_repeat(
    tmp_path: Path, host: PluginHost
) -> None:
    """As in CSV, every response's id counts as seen; the repeat lists both problems."""
    stopped = qr("A1") | {"status": "stopped"}
    path = ndjson(tmp_path / "in.ndjson", stopped, qr("A1"), stopped)
    ids, rejects = both_paths(path)
    assert ids == []
    assert [r.code for r in rejects] == ["status", "duplicate-assessment-id", "status"]
    assert "duplicate-assessment-id" not in rejects[0].message
    assert "the assessment id was used by an earlier record" in rejects[2].message


def test_case_08_ids_from_the_resource_id_and_from_content(
    tmp_path: Path, host: PluginHost
) -> None:
    """A response with no identifier repeats by its ``id``; with no id either, only when the
    whole response repeats — two patients' identical answers stay two assessments."""
    by_id = qr(None) | {"id": "server-1"}
    anonymous_p1, anonymous_p2 = qr(None, "P1"), qr(None, "P2")
    path = ndjson(tmp_path / "in.ndjson", by_id, by_id, anonymous_p1, anonymous_p2, anonymous_p1)
    ids, rejects = both_paths(path)
    assert [(r.location, r.code) for r in rejects] == [
        ("line 2, $.id", "duplicate-assessment-id"),
        ("line 5, $", "duplicate-assessment-id"),
    ]
    assert ids[0] == "server-1"
    assert ids[1].startswith("qr-")
    assert ids[2] == ids[1] + "-2"
    assert len(set(ids)) == 3


def test_case_08_repeats_in_parsed_data_and_identifier_lists(host: PluginHost) -> None:
    listed = copy.deepcopy(qr("A1"))
    listed["identifier"] = [{"system": "https://other.test/id", "value": "X"}, listed["identifier"]]
    ids, (reject,) = both_paths(bundle_of(qr("A1"), listed))
    assert ids == ["A1"]
    assert reject.location == "$.entry[1].resource.identifier[1].value"


# -- case 9: hostile JSON is a reject of that line or document, never a traceback --------------

DEEP = "[" * 3000 + "]" * 3000
HUGE = '{"resourceType": "QuestionnaireResponse", "n": ' + "7" * 5000 + "}"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (DEEP, "too-deep"),
        ('{"resourceType": "Bundle", "entry": ' + DEEP + "}", "too-deep"),
        (HUGE, "json"),
        (b'{"resourceType": "QuestionnaireResponse", "status": "\xff"}', "encoding"),
        (b"\xef\xbb\xbf\xc3", "encoding"),
        ("{not json", "json"),
    ],
    ids=["deep", "deep-bundle", "huge-integer", "invalid-utf8", "truncated-utf8", "syntax"],
)
def test_case_09_hostile_ndjson_line_rejects_only_that_line(
    line: str | bytes,
    code: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    process_host: PluginHost,
) -> None:
    path = ndjson(tmp_path / "in.ndjson", qr("A1"), line, qr("A2"))
    status, reconciliation, (reject,) = score(path, capsys)
    assert status == 0
    assert reconciliation == "read 3 = scored 2 + not scored 0 + rejected 1"
    assert (reject["line"], reject["code"]) == ("line 2", code)
    ids, (lib_reject,) = both_paths(path)
    assert ids == ["A1", "A2"]
    assert (lib_reject.location, lib_reject.code) == ("line 2", code)


@pytest.mark.parametrize(
    ("data", "where", "code"),
    [
        (DEEP.encode(), "$", "too-deep"),
        (HUGE.encode(), "$", "json"),
        (b'[\n{"resourceType": "\xff"}]', "line 2", "encoding"),
        (b'{"resourceType": ', "line 1 column 18", "json"),
    ],
    ids=["deep", "huge-integer", "invalid-utf8", "syntax"],
)
def test_case_09_hostile_json_document_is_one_reject(
    process_host: PluginHost,
    data: bytes,
    *,
    where: str,
    code: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    host: PluginHost,
) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(data)
    status, reconciliation, (reject,) = score(path, capsys)
    assert status == 1  # records read and none scored: never a silent zero
    assert reconciliation == "read 1 = scored 0 + not scored 0 + rejected 1"
    assert (reject["line"], reject["code"]) == (where, code)
    ids, (lib_reject,) = both_paths(path)
    assert (ids, lib_reject.location, lib_reject.code) == ([], where, code)
    _, (from_bytes,), _ = read_fhir(data)  # JSON given as bytes
    assert (from_bytes.location, from_bytes.code) == (where, code)


def test_case_09_hostile_ndjson_in_a_real_process(tmp_path: Path) -> None:
    """The installed command, in its own process: every kind of hostile line at once."""
    broken = qr("A4") | {"status": ["completed"]}
    path = ndjson(tmp_path / "in.ndjson", qr("A1"), DEEP, HUGE, b"\xff", broken, qr("A2"), qr("A1"))
    out = tmp_path / "out.csv"
    result = subprocess.run(
        [sys.executable, "-m", "pamlib", "score", str(path), "--provider", "demo", "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "read 7 = scored 2 + not scored 0 + rejected 5" in result.stderr + result.stdout
    with out.with_name("out.rejects.csv").open(encoding="utf-8", newline="") as f:
        codes = [row["code"] for row in csv.DictReader(f)]
    assert codes == ["too-deep", "json", "encoding", "status", "duplicate-assessment-id"]


def test_case_09_deep_parsed_data_is_one_reject(host: PluginHost) -> None:
    deep: Any = []
    for _ in range(2000):
        deep = [deep]
    _, (reject,), counts = read_fhir(
        {"resourceType": "Bundle", "entry": deep}, instruments=host.instruments()
    )
    assert (reject.location, reject.code, counts.n_read) == ("$", "too-deep", 1)


def _set(resource: dict[str, Any], path: tuple[str | int, ...], value: object) -> None:
    target: Any = resource
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


EXT = "https://pamlib.org/fhir/StructureDefinition/assessment"
MODE_ARRAY = {"url": "mode", "valueCode": []}
ATTRIBUTE_NOT_LIST = {"url": "attribute", "extension": 3}
ATTRIBUTE_URL_ARRAY = {"url": "attribute", "extension": [{"url": [], "valueString": "x"}]}

#: (field, value of the wrong type, where the reject points, its code)
WRONG_TYPES = [
    (("status",), ["completed"], "$.status", "status"),
    (("status",), {"code": "completed"}, "$.status", "status"),
    (("item", 0, "linkId"), ["pam13.01"], "$.item[0].linkId", "required"),
    (("item", 0, "linkId"), {"a": "pam13.01"}, "$.item[0].linkId", "required"),
    (("item", 0, "answer", 0, "valueCoding", "code"), ["3"], "$.item[0].answer[0]", "answer-type"),
    (("item", 0, "answer", 0, "valueCoding", "code"), {}, "$.item[0].answer[0]", "answer-type"),
    (("item", 0, "answer", 0, "valueCoding", "system"), [], "$.item[0].answer[0].valueCoding.system", "type"),  # noqa: E501
    (("questionnaire",), ["x"], "$.questionnaire", "type"),
    (("authored",), {"date": "2025-01-01"}, "$.authored", "no-date"),
    (("subject",), ["Patient/1"], "$.subject", "type"),
    (("subject",), {"reference": ["#patient"]}, "$.subject", "no-subject"),
    (("item",), {"linkId": "pam13.01"}, "$.item", "type"),
    (("item",), ["pam13.01"], "$.item[0]", "type"),
    (("item", 0, "answer"), {"valueCoding": {}}, "$.item[0].answer", "type"),
    (("identifier",), [["A2"]], "", None),  # no usable identifier: an id from the content
]  # fmt: skip


@pytest.mark.parametrize(
    ("field", "bad", "where", "code"),
    WRONG_TYPES,
    ids=[f"{'.'.join(map(str, f))}-{type(b).__name__}" for f, b, _, _ in WRONG_TYPES],
)
def test_case_09_wrongly_typed_field_rejects_that_response(
    process_host: PluginHost,
    field: tuple[str | int, ...],
    bad: object,
    *,
    where: str,
    code: str | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    host: PluginHost,
) -> None:
    broken = qr("A2")
    _set(broken, field, bad)
    path = ndjson(tmp_path / "in.ndjson", qr("A1"), broken, qr("A3"))
    status, reconciliation, rejects = score(path, capsys)
    assert status == 0
    if code is None:
        assert (reconciliation, rejects) == ("read 3 = scored 3 + not scored 0 + rejected 0", [])
        return
    assert reconciliation == "read 3 = scored 2 + not scored 0 + rejected 1"
    assert [(r["line"], r["code"]) for r in rejects] == [(f"line 2, {where}", code)]
    bundle = tmp_path / "in.json"
    bundle.write_text(json.dumps(bundle_of(qr("A1"), broken, qr("A3"))), encoding="utf-8")
    ids, (lib_reject,) = both_paths(bundle)
    assert ids == ["A1", "A3"]
    assert lib_reject.location == where.replace("$", "$.entry[1].resource", 1)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: _set(r, ("extension",), [{"url": EXT, "extension": [MODE_ARRAY]}]),
        lambda r: _set(r, ("extension",), [{"url": EXT, "extension": [ATTRIBUTE_NOT_LIST]}]),
        lambda r: _set(r, ("extension",), [{"url": EXT, "extension": [ATTRIBUTE_URL_ARRAY]}]),
        lambda r: _set(r, ("item", 0, "answer", 0, "valueCoding", "code"), "4" * 5000),
    ],
    ids=["mode-array", "attribute-not-a-list", "attribute-url-array", "long-code"],
)  # fmt: skip
def test_case_09_wrong_types_deeper_in_a_response(mutate: Any, host: PluginHost) -> None:
    broken = qr("A2")
    mutate(broken)
    assessments, (reject,), counts = read_fhir(
        json.dumps(bundle_of(qr("A1"), broken)), instruments=host.instruments()
    )
    assert [a.id for a in assessments] == ["A1"]
    assert reject.location.startswith("$.entry[1].resource")
    assert (counts.n_read, counts.n_rejected) == (2, 1)


def test_case_09_unpaired_surrogate_escape_rejects_that_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], process_host: PluginHost
) -> None:
    """JSON may escape half a surrogate pair; no output file can hold it, so the response is
    rejected (and the status, the response's own text, is not repeated in the message)."""
    lines = [qr("A1"), qr("A2") | {"status": "SURROGATE"}, qr("A3"), qr("SURROGATE")]
    text = "\n".join(json.dumps(r) for r in lines).replace("SURROGATE", "\\ud800")
    path = tmp_path / "in.ndjson"
    path.write_text(text + "\n", encoding="utf-8")
    status, reconciliation, rejects = score(path, capsys)
    assert status == 0
    assert reconciliation == "read 4 = scored 2 + not scored 0 + rejected 2"
    assert [(r["line"], r["code"]) for r in rejects] == [
        ("line 2, $.status", "status"),
        ("line 4, $", "encoding"),
    ]
    assert rejects[0]["message"].endswith("not a status FHIR does not define")
    ids, _ = both_paths(path)
    assert ids == ["A1", "A3"]


def test_case_09_weight_too_large_for_a_float(host: PluginHost) -> None:
    """A 400-digit ordinalValue (valid JSON, too large for a float) is out of range."""
    text = json.dumps(foreign_qr({"pam1": 123456789})).replace("123456789", "9" * 400)
    _, (reject,), _ = read_fhir(text, mapping=mapping(), instruments=host.instruments())
    assert (reject.location, reject.code) == (
        "$.item[0].answer[0].valueCoding",
        "weight-out-of-range",
    )


def test_case_09_wrong_types_in_a_questionnaire_of_the_input(host: PluginHost) -> None:
    """A Questionnaire whose answer option has a system of the wrong type gives no weight."""
    q = {
        "resourceType": "Questionnaire",
        "url": FOREIGN_URL,
        "version": "0.1.0",
        "item": [
            {
                "linkId": "pam1",
                "answerOption": [{"valueCoding": {"system": ["x"], "code": "4"}}],
            }
        ],
    }
    _, _, counts = read_fhir(
        bundle_of(q, foreign_qr()), mapping=mapping(), instruments=host.instruments()
    )
    assert counts.n_read == counts.n_valid + counts.n_rejected == 1


def test_case_09_fhir_check_reports_hostile_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP, encoding="utf-8")
    lines = ndjson(tmp_path / "lines.ndjson", qr("A1"), b"\xff", DEEP, HUGE)
    assert main(["fhir", "check", str(deep), str(lines), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(p["where"], p["code"]) for p in report[0]["problems"]] == [("$", "too-deep")]
    assert [(p["where"], p["code"]) for p in report[1]["problems"]] == [
        ("line 2", "encoding"),
        ("line 3", "too-deep"),
        ("line 4", "json"),
    ]


def test_case_09_hostile_questionnaire_and_serialized_json(
    tmp_path: Path, host: PluginHost
) -> None:
    path = tmp_path / "q.json"
    path.write_text(DEEP, encoding="utf-8")
    settings = {"questionnaires": [str(path)]}
    with pytest.raises(ConfigurationError, match=r"q\.json"):
        list(FhirFormat().read(tmp_path / "none.json", ReadOptions(settings=settings)))
    for text in (DEEP, HUGE, b"\xff"):
        with pytest.raises(ValidationError):
            loads(text, Patient)


# -- case 15: mapping files that would misread every response are refused ----------------------


def mapping_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(
        f'[[questionnaire]]\nurl = "{FOREIGN_URL}"\ninstrument = "PAM-13"\n{body}',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("body", "where", "named"),
    [
        (
            '[questionnaire.items]\npam1 = "pam13.01"\npam1b = "pam13.01"\n',
            "questionnaire[0].items.pam1b",
            "items.pam1",
        ),
        (
            'ignore = ["pam1"]\n[questionnaire.items]\npam1 = "pam13.01"\n',
            "questionnaire[0].ignore",
            "items.pam1",
        ),
        ("versions = []\n", "questionnaire[0].versions", "matches no version"),
        (
            (
                f'versions = ["1", "2"]\n[[questionnaire]]\nurl = "{FOREIGN_URL}"\n'
                'instrument = "PAM-13"\nversions = ["2"]\n'
            ),
            "questionnaire[1].url",
            "questionnaire[0]",
        ),
    ],
    ids=["two-link-ids-one-item", "ignored-and-mapped", "empty-versions", "url-mapped-twice"],
)
def test_case_15_mapping_that_misreads_is_an_error(
    body: str, where: str, named: str, tmp_path: Path, host: PluginHost
) -> None:
    path = mapping_file(tmp_path, body)
    with pytest.raises(ConfigurationError) as info:
        load_mapping(path)
    message = str(info.value)
    assert f"map.toml: {where}" in message
    assert named in message
    for call in (
        lambda: read_fhir(foreign_qr(), mapping=path, instruments=host.instruments()),
        lambda: list(FhirFormat().read(path, ReadOptions(settings={"mapping": str(path)}))),
    ):
        with pytest.raises(ConfigurationError):
            call()


def test_case_15_mappings_built_in_code_are_checked_too(host: PluginHost) -> None:
    twice = QuestionnaireMapping(
        url=FOREIGN_URL,
        instrument="PAM-13",
        items={"a": "pam13.01", "b": "pam13.01"},
        ignore=frozenset({"a"}),
        versions=frozenset(),
    )
    with pytest.raises(ConfigurationError) as info:
        read_fhir(foreign_qr(), mapping=FhirMapping((twice,)), instruments=host.instruments())
    message = str(info.value)
    assert "questionnaire[0].items.b" in message
    assert "items.a" in message
    assert "questionnaire[0].versions" in message
    assert "questionnaire[0].ignore" in message


def test_case_15_good_mappings_still_pass(host: PluginHost) -> None:
    parsed = parse_mapping(
        {
            "questionnaire": [
                {"url": FOREIGN_URL, "instrument": "PAM-13", "versions": ["1"]},
                {"url": FOREIGN_URL, "instrument": "PAM-13", "versions": ["2"]},
                {"url": "https://x.test/Q", "instrument": "PAM-13", "ignore": ["total"]},
            ]
        }
    )
    assert len(parsed.questionnaires) == 3


@pytest.mark.parametrize(
    "data",
    [b"a = " + b"[" * 3000 + b"]" * 3000, b"a = " + b"1" * 5000, b'a = "\xff"'],
    ids=["deep", "huge-integer", "invalid-utf8"],
)
def test_case_15_hostile_mapping_file_is_a_clean_error(
    data: bytes, tmp_path: Path, host: PluginHost
) -> None:
    path = tmp_path / "map.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigurationError, match=r"map\.toml"):
        load_mapping(path)


def test_case_15_answers_of_the_wrong_type(tmp_path: Path, host: PluginHost) -> None:
    path = mapping_file(tmp_path, 'answers = "4"\n')
    with pytest.raises(ConfigurationError, match=r"questionnaire\[0\]\.answers"):
        load_mapping(path)


# -- FHIR output: the NHS number only when asked for --------------------------------------------

_NHS_ONLY = (
    "patient_id,nhs_number,assessment_id,assessed_on,instrument,"
    + ",".join(f"q{i:02d}" for i in range(1, 14))
    + "\n,943 476 5919,A1,2024-01-02,PAM-13,"
    + ",".join(["3"] * 13)
    + "\n"
)


def test_fhir_output_without_a_patient_identifier_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "nhs-only.csv"
    source.write_text(_NHS_ONLY, encoding="utf-8")
    out = tmp_path / "s.ndjson"
    argv = ["score", str(source), "--provider", "demo", "--format", "fhir", "-o", str(out)]
    assert main([*argv, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no-patient-identifier" in err or "needs an identifier" in err
    assert "9434765919" not in err
    assert not out.exists()
    assert main([*argv, "--no-progress", "--keep-nhs-number"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "https://fhir.nhs.uk/Id/nhs-number" in text
    assert "9434765919" in text


# -- a response's own text is never repeated in a message -----------------------------------------

NAME_AND_NUMBER = "Jane Smith 9434765919"


@pytest.mark.parametrize(
    ("field", "bad", "code"),
    [
        (("status",), NAME_AND_NUMBER, "status"),
        (("item", 0, "linkId"), NAME_AND_NUMBER, "unknown-item"),
        (("questionnaire",), f"{QUESTIONNAIRE_BASE}/PAM-13|{NAME_AND_NUMBER}",
         "questionnaire-version"),
    ],
    ids=["status", "link-id", "questionnaire-version"],
)  # fmt: skip
def test_a_value_of_the_response_is_not_repeated_in_its_reject(
    field: tuple[str | int, ...], bad: str, code: str
) -> None:
    """A status, linkId or questionnaire version is the document's own text, and could hold
    anything (a service passes these messages to its clients): the reject says where and what
    kind, never the value. A status FHIR defines is still named."""
    broken = qr("A2")
    _set(broken, field, bad)
    _, (reject,) = both_paths(bundle_of(qr("A1"), broken))
    assert reject.code == code
    assert "9434765919" not in reject.message
    assert "Jane" not in reject.message
    in_progress = qr("A3")
    _set(in_progress, ("status",), "in-progress")
    _, (named,) = both_paths(bundle_of(in_progress))
    assert "'in-progress'" in named.message
