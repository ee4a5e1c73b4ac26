"""Hostile inputs to tailoring rules and cohort reports: the regression test of each case of the
reliability issue, named after it (``test_case_NN_…``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pamlib.cli import main
from pamlib.errors import RuleError, ValidationError
from pamlib.levels import CURRENT, HIBBARD_2005
from pamlib.plugins import PluginHost
from pamlib.tailoring import Context, ContextColumns, Engine, rule
from pamlib.tailoring.catalogue import BUILTIN_PATHWAYS
from pamlib.tailoring.context import demo_evidence

Rows = list[dict[str, str]]


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every command here sees pamlib's built-in plugins only."""


@pytest.fixture
def scored(tmp_path: Path, sample_data: Path) -> Path:
    """The sample cohort scored by the demo provider, NHS numbers kept."""
    out = tmp_path / "scored.csv"
    argv = ["score", str(sample_data / "cohort-small.csv"), "--provider", "demo",
            "--keep-nhs-number", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def read(path: Path) -> Rows:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write(path: Path, rows: Rows, fieldnames: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames or list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def edited(scored: Path, change: Callable[[dict[str, str]], None]) -> Path:
    rows = read(scored)
    for row in rows:
        change(row)
    return write(scored.with_name("edited.csv"), rows)


def report(source: Path, *options: str) -> tuple[int, Path, Path]:
    """``pamlib report SOURCE -o r.html --json r.json OPTIONS``: status, HTML and JSON paths."""
    html, summary = source.with_name("r.html"), source.with_name("r.json")
    return (
        main(["report", str(source), "-o", str(html), "--json", str(summary), *options]),
        html,
        summary,
    )


# -- case 6: an identifier published -------------------------------------------------------------


@pytest.mark.parametrize("publish", [True, False], ids=["publish", "internal"])
@pytest.mark.parametrize(
    "column", ["nhs_number", "assessment_id", "patient_id", "NHS Number", "date_of_birth", "name"]
)
def test_case_06_identifier_columns_never_group_a_report(
    scored: Path, column: str, publish: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read(scored)
    for row in rows:  # pass-through identifiers, as a site export might carry them
        row.setdefault(column, row["nhs_number"])
    source = write(scored.with_name("ids.csv"), rows, [*rows[0]])
    status, html, summary = report(source, "--group-by", column, *(["--publish"] * publish))
    err = capsys.readouterr().err
    assert status == 2, err
    assert "it identifies patients" in err
    assert not html.exists()
    assert not summary.exists()
    assert rows[0]["nhs_number"] not in err
    assert "Traceback" not in err


def test_case_06_a_column_whose_values_identify_patients_is_refused(
    scored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An innocent name, but one value per patient: a pass-through hospital number (nine
    # digits: ten could be read as an NHS number, which is refused for that reason first).
    source = edited(scored, lambda row: row.update(ref="H" + row["nhs_number"][::-1][:9]))
    status, html, summary = report(source, "--group-by", "ref", "--publish")
    err = capsys.readouterr().err
    assert status == 2
    assert "500 of its 500 values belong to one patient each" in err
    assert not html.exists()
    assert not summary.exists()


def test_case_06_grouping_by_site_still_works(scored: Path) -> None:
    status, _, summary = report(scored, "--group-by", "site", "--publish")
    assert status == 0
    groups = [g["group"] for g in json.loads(summary.read_text(encoding="utf-8"))["groups"]]
    assert groups == sorted({row["site"] for row in read(scored)})


def test_case_06_cutpoint_set_values_that_identify_patients_are_refused(
    scored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The report lists the cut-point sets used: a column mix-up must not publish NHS numbers.
    source = edited(scored, lambda row: row.update(cutpoint_set=row["nhs_number"]))
    status, html, _ = report(source, "--publish")
    assert status == 2
    assert "cutpoint_set" in capsys.readouterr().err
    assert not html.exists()


def test_case_06_tailoring_reprs_show_no_attribute_values() -> None:
    secrets = {"name": "Ann Example", "dob": "1950-02-03", "condition": "COPD"}
    context = Context("A-SECRET", level=2, attributes=secrets, not_scored_reason=None)
    columns = ContextColumns.from_contexts([context])
    for text in (repr(context), str(context), repr(columns)):
        assert "A-SECRET" not in text
        for value in secrets.values():
            assert value not in text
    assert "['condition', 'dob', 'name']" in repr(context)


def test_case_06_a_failing_python_rule_does_not_quote_the_context() -> None:
    @rule("py.age", reason="reads an attribute as a number")
    def age(ctx: Context) -> None:
        int(ctx.attributes["name"])  # ValueError quoting the value

    engine = Engine([age], {p.id: p for p in BUILTIN_PATHWAYS})
    with pytest.raises(RuleError) as info:
        engine.evaluate(Context("a", level=2, attributes={"name": "Ann Example"}))
    assert "Ann Example" not in str(info.value)
    assert info.value.problems[0].message == "raised ValueError"


# -- case 13: demo scores lose their marking -----------------------------------------------------


def test_case_13_demo_column_saying_false_against_the_evidence_is_refused(
    scored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = edited(scored, lambda row: row.update(demo="false"))
    status, html, summary = report(source)
    err = capsys.readouterr().err
    assert status == 1
    assert "the demo column says false but provider, calibration_id, flags say(s)" in err
    assert "@ edited.csv: row 1" in err
    assert not html.exists()
    assert not summary.exists()


def test_case_13_demo_scores_without_a_demo_column_stay_marked(scored: Path) -> None:
    rows = read(scored)
    source = write(scored.with_name("nodemo.csv"), rows, [c for c in rows[0] if c != "demo"])
    status, html, summary = report(source, "--publish")
    assert status == 0
    assert json.loads(summary.read_text(encoding="utf-8"))["demo"] is True
    page = html.read_text(encoding="utf-8")
    assert 'id="demo-banner"' in page
    assert 'id="demo-watermark"' in page


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"demo": None, "provider": "demo"}, (True, ())),
        ({"demo": None, "calibration_id": "synthetic-demo-PAM-13"}, (True, ())),
        ({"demo": None, "flags": "missing-items;demo"}, (True, ())),
        ({"demo": True}, (True, ())),
        ({"demo": False, "provider": "rasch", "calibration_id": "site-cal-1"}, (False, ())),
        ({"demo": False, "provider": "demo"}, (True, ("demo", "provider"))),
        ({"demo": False, "flags": "demo"}, (True, ("demo", "flags"))),
    ],
)
def test_case_13_one_rule_decides_demo_status(
    cells: dict[str, object], expected: tuple[bool, tuple[str, ...]]
) -> None:
    assert demo_evidence(**cells) == expected  # type: ignore[arg-type]


def test_case_13_tailoring_reads_demo_status_by_the_same_rule() -> None:
    row = {"assessment_id": "a", "patient_id": "p", "assessed_on": "2025-01-01",
           "status": "scored", "score": "50.0", "level": "2", "provider": "demo"}  # fmt: skip
    assert "demo" in Context.from_row(row).flags
    with pytest.raises(ValidationError) as info:
        Context.from_row(row | {"demo": "false"})
    assert info.value.problems[0].code == "demo-conflict"


# -- case 14: a rule that suppresses every pathway goes unnoticed ---------------------------------

QUIET = """
[[rule]]
id = "site.quiet"
reason = "Pause every pathway."
then = [{ suppress = "*" }]
"""

PIECEMEAL = """
[[rule]]
id = "site.a"
reason = "No coaching."
then = [{ suppress = ["health-coaching", "peer-support"] }]

[[rule]]
id = "site.b"
reason = "No education."
then = [{ suppress = "self-management-education" }]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (QUIET, "site.quiet': then[0]: suppresses every pathway for every assessment"),
        (PIECEMEAL, "together suppress every known pathway for every assessment: site.a, site.b"),
    ],
    ids=["wildcard", "together"],
)
def test_case_14_rules_check_warns_about_suppressing_every_pathway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    rules = tmp_path / "site.toml"
    rules.write_text(text, encoding="utf-8")
    assert main(["rules", "check", str(rules)]) == 0
    out = capsys.readouterr().out
    assert expected in out
    assert ": OK" not in out
    assert main(["rules", "check", "--strict", str(rules)]) == 1


def test_case_14_rows_without_a_pathway_say_why_and_are_counted(
    tmp_path: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "quiet.toml"
    rules.write_text(QUIET, encoding="utf-8")
    out = tmp_path / "tailored.csv"
    argv = ["score", str(sample_data / "cohort-small.csv"), "--provider", "demo",
            "--rules", str(rules), "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    rows = read(out)
    assert len(rows) == 788
    assert all(r["recommended_pathways"] == "" for r in rows)
    assert all(
        r["no_pathway_reason"].startswith("every recommended pathway was suppressed")
        and "site.quiet" in r["no_pathway_reason"]
        for r in rows
    )
    assert "tailored 788 rows: 0 with a pathway, 788 without" in err


# -- case 16: report trusts what it should check ---------------------------------------------------


def test_case_16_repeated_assessment_ids_are_refused(
    scored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read(scored)
    source = write(scored.with_name("repeated.csv"), [rows[0]] * 50)
    status, html, summary = report(source)
    err = capsys.readouterr().err
    assert status == 1
    assert "assessment_id repeats row 1 @ repeated.csv: row 2" in err
    assert "49 problem(s)" in err
    assert rows[0]["assessment_id"] not in err
    assert rows[0]["patient_id"] not in err
    assert not html.exists()
    assert not summary.exists()


@pytest.mark.parametrize(
    "score", ["４７.０", " 47.0 ", "047.0", "+47.0", "4.7e1", "nan", "47.0\u00a0", "47,0", "1_0"]
)
def test_case_16_scores_not_written_as_pamlib_writes_them_are_refused(
    scored: Path, score: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read(scored)[:3]
    rows[1]["score"] = score
    status, html, _ = report(write(scored.with_name("odd.csv"), rows))
    err = capsys.readouterr().err
    assert status == 1
    assert "score must be empty or a number from 0 to 100" in err
    assert "odd.csv: row 2" in err
    assert not html.exists()


@pytest.mark.parametrize("score", ["47", "47.0", "0", "0.5", "100.0", "55.25"])
def test_case_16_plain_scores_are_read(scored: Path, score: str) -> None:
    rows = read(scored)[:3]
    rows[1]["score"] = score
    # with the level of that score: a level its score contradicts is refused (level-mismatch)
    cutpoints = {c.id: c for c in (CURRENT, HIBBARD_2005)}[rows[1]["cutpoint_set"]]
    rows[1]["level"] = str(int(cutpoints.level(float(score))))
    assert report(write(scored.with_name("plain.csv"), rows))[0] == 0


def test_case_16_an_empty_file_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    status, html, _ = report(empty)
    err = capsys.readouterr().err
    assert status == 1
    assert "the file is empty: no header row @ empty.csv: line 1" in err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert not html.exists()


def test_case_16_a_header_only_file_is_an_empty_report(scored: Path) -> None:
    header = scored.read_text(encoding="utf-8").splitlines()[0]
    source = scored.with_name("header.csv")
    source.write_text(header + "\n", encoding="utf-8")
    status, _, summary = report(source)
    assert status == 0
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert (data["n_patients"], data["n_assessments"]) == (0, 0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a,b\n1,2,3\n", "3 fields where the header has 2 @ bad.csv: line 2"),
        (b"a,b\n\xff,2\n", "not UTF-8 text @ bad.csv: line 2"),
    ],
    ids=["fields", "utf8"],
)
def test_case_16_an_unreadable_csv_is_located_without_quoting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    assert report(bad)[0] == 1
    err = capsys.readouterr().err
    assert expected in err
    assert "1,2,3" not in err
    assert "internal error" not in err


def _parquet_with(scored: Path, name: str, values: object) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from pamlib.tables import ScoredTable

    table = ScoredTable.read(scored).to_arrow()
    column = pa.array(values(table.num_rows) if callable(values) else values)
    if name in table.column_names:
        table = table.set_column(table.schema.get_field_index(name), name, column)
    else:
        table = table.append_column(name, column)
    path = scored.with_name("hostile.parquet")
    pq.write_table(table, path)
    return path


HOSTILE_COLUMNS: dict[str, tuple[str, Callable[[int], object], str]] = {
    "a struct": ("extra", lambda n: [{"a": 1}] * n, "column 'extra' holds struct"),
    "lists of lists": ("flags", lambda n: [[["demo"]]] * n, "column 'flags' holds list"),
    "bytes not UTF-8": ("site", lambda n: [b"\xff"] * n, "column 'site' holds text that is not"),
    "an integer past 2**53": ("level", lambda n: [2**53 + 1] * n, "level must be empty or"),
    "a date past 9999": ("assessed_on", lambda n: [_far_day()] * n, "assessed_on is not an ISO"),
}


def _far_day() -> object:
    import numpy as np

    return np.datetime64("12000-01-01", "D")


@pytest.mark.parametrize("case", HOSTILE_COLUMNS.values(), ids=HOSTILE_COLUMNS.keys())
def test_case_16_a_parquet_column_no_scored_table_holds_is_a_clean_error(
    scored: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, Callable[[int], object], str]
) -> None:
    """A Parquet file of another shape (or one whose bytes are not text) is refused with the
    column named, not an internal error."""
    name, values, expected = case
    status, html, _ = report(_parquet_with(scored, name, values))
    err = capsys.readouterr().err
    assert status == 1, err
    assert expected in err
    assert "internal error" not in err
    assert not html.exists()


def test_case_16_json_lines_that_are_not_utf8_are_a_clean_error(
    scored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pyarrow's JSON reader passes bytes through: a patient id that is not UTF-8 is refused
    with its column named, not an internal error."""
    pytest.importorskip("pyarrow")
    from pamlib.tables import ScoredTable

    rows = ScoredTable.read(scored).to_arrow().to_pylist()
    text = "".join(json.dumps(r, default=str) + "\n" for r in rows).encode()
    first = f'"{rows[0]["patient_id"]}"'.encode()
    source = scored.with_name("hostile.jsonl")
    source.write_bytes(text.replace(first, b'"P\xe9"', 1))
    status, html, _ = report(source)
    err = capsys.readouterr().err
    assert status == 1, err
    assert "column 'patient_id' holds text that is not UTF-8" in err
    assert "internal error" not in err
    assert not html.exists()


@pytest.mark.parametrize("column", ["level", "status", "instrument", "demo", "cutpoint_set"])
def test_case_16_group_by_an_existing_column_works(scored: Path, column: str) -> None:
    status, _, summary = report(scored, "--group-by", column)
    assert status == 0
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["group_by"] == column
    assert sum(g["n_patients"] for g in data["groups"]) == data["n_patients"] == 500


# -- case 9 (rules part): hostile TOML in a rules file ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = " + "[" * 1500 + "]" * 1500, "nested more than 64 levels deep"),
        ('[[rule]]\nid = "a"\nreason = "r"\npriority = ' + "9" * 5000, "not usable TOML"),
        ("x = " + "{a = " * 1200 + "1" + "}" * 1200, "nested more than 64 levels deep"),
    ],
    ids=["deep-arrays", "huge-integer", "deep-tables"],
)
def test_case_09_hostile_rules_toml_is_a_located_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    rules = tmp_path / "site.toml"
    rules.write_text(text, encoding="utf-8")
    assert main(["rules", "check", str(rules)]) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert f"@ {rules}" in err
    assert "internal error" not in err
    assert "Traceback" not in err


# -- case 7 (the per-patient CSV): spreadsheet formulas and bare CRs ---------------------------


def test_case_07_the_per_patient_csv_is_spreadsheet_safe(scored: Path) -> None:
    def hostile(row: dict[str, str]) -> None:
        row["patient_id"] = "=HYPERLINK(1)" + row["patient_id"] + "\r"

    source = edited(scored, hostile)
    patients = source.with_name("patients.csv")
    status, _, _ = report(source, "--patients", str(patients))
    assert status == 0
    rows = read(patients)
    assert len(rows) == len({r["patient_id"] for r in read(source)})
    assert all(r["patient_id"].startswith("'=HYPERLINK(1)") for r in rows)
    assert all(r["patient_id"].endswith("\r") for r in rows)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--rules", "nosuch.toml"], "no rules file"),
        (["--rules", "garbage.bin"], "invalid rule file"),
        (["--mapping", "garbage.bin"], "--mapping applies to a raw export scored with"),
        (["--calibration", "garbage.bin"], "--calibration applies to a raw export"),
    ],
    ids=["missing-rules", "not-rules", "mapping-unused", "calibration-unused"],
)
def test_case_09_a_report_lists_only_side_files_it_read(
    scored: Path, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    """Rules files are listed in the report's context by name and digest, so each must be a
    rules file; a mapping or calibration is read only to score a raw export. Anything else is
    refused before a file is written."""
    garbage = scored.with_name("garbage.bin")
    garbage.write_bytes(bytes(range(256)))
    given = [str(scored.with_name(o)) if o.endswith((".toml", ".bin")) else o for o in options]
    status, html, summary = report(scored, *given)
    assert status in (1, 2)
    assert expected in capsys.readouterr().err
    assert not html.exists()
    assert not summary.exists()
