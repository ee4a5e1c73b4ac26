"""``pamlib score`` and ``pamlib demo`` from the command line."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Collection
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pamlib.cli import main
from pamlib.cli._progress import Progress
from pamlib.errors import ConfigurationError
from pamlib.formats.base import ReadOptions
from pamlib.formats.delimited import CsvFormat
from pamlib.instruments import Instrument
from pamlib.levels import CURRENT
from pamlib.plugins import PluginHost
from pamlib.results import Flag
from pamlib.scoring.provider import FLAG_BITS, BaseProvider, BatchScores, Licence
from tests.conftest import ROOT

pytest.importorskip("pyarrow")

MAPPING = str(ROOT / "docs" / "examples" / "site-export-mapping.toml")
HEADER = "patient_id,nhs_number,assessment_id,assessed_on,instrument,site," + ",".join(
    f"q{i:02d}" for i in range(1, 14)
)
ANSWERS = ",".join(["3"] * 13)


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def write_input(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_site_export(
    sample_data: Path, tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored.csv"
    code = main(
        ["score", str(sample_data / "site-export-semicolon.csv"), "--provider", "raw-sum",
         "--mapping", MAPPING, "-o", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert last_line(err) == "read 70 = scored 65 + not scored 1 + rejected 4"
    assert "NOT PAM scores" in err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 66
    assert list(rows[0])[:20] == [
        "assessment_id", "patient_id", "assessed_on", "instrument", "status", "n_answered",
        "raw_score", "theta", "theta_se", "score", "score_se", "level", "cutpoint_set", "flags",
        "provider", "provider_version", "calibration_id", "calibration_sha256", "demo", "reason",
    ]  # fmt: skip
    assert list(rows[0])[20:] == ["site"]  # Clinician and Notes dropped by the mapping
    assert {r["demo"] for r in rows} == {"false"}
    assert all("raw-only" in r["flags"].split(";") for r in rows)
    rejects = list(
        csv.DictReader(io.StringIO((tmp_path / "scored.rejects.csv").read_text(encoding="utf-8")))
    )
    assert [(r["line"], r["code"]) for r in rejects] == [
        ("13", "nhs-number"), ("14", "date"), ("32", "impossible-answer"), ("33", "unknown-label")
    ]  # fmt: skip
    assert rejects[0]["Notes"] == "bad NHS checksum"


def test_cohort_small_scores_fully(
    sample_data: Path, tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored.csv"
    args = ["score", str(sample_data / "cohort-small.csv"), "--provider", "raw-sum"]
    assert main([*args, "-o", str(out), "--strict"]) == 0
    assert last_line(capsys.readouterr().err) == (
        "read 788 = scored 788 + not scored 0 + rejected 0"
    )
    assert len(out.read_text(encoding="utf-8").splitlines()) == 789


def test_strict_exits_1_and_still_writes_everything(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_input(
        tmp_path,
        f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}",
        f"P2,,A2,2024-02-31,PAM-13,s,{ANSWERS}",
    )
    out = tmp_path / "o.csv"
    code = main(["score", str(path), "--provider", "raw-sum", "-o", str(out), "--strict"])
    err = capsys.readouterr().err
    assert code == 1
    assert "records rejected (--strict)" in err
    assert last_line(err) == "read 2 = scored 1 + not scored 0 + rejected 1"
    assert out.exists()
    assert (tmp_path / "o.rejects.csv").exists()


def test_stdout_output_and_default_rejects_path(
    tmp_path: Path,
    process_host: PluginHost,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_input(tmp_path, f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}", "P2,only,two")
    monkeypatch.chdir(tmp_path)
    assert main(["score", str(path), "--provider", "raw-sum"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out.decode().startswith("assessment_id,patient_id,")
    assert b"\r" not in captured.err  # no progress bar off a terminal
    rejects = (tmp_path / "in.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert rejects[1].split(",")[1:3] == ["3", "field-count"]


def test_spreadsheet_formulas_are_defused(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        f"{HEADER},comment\n"
        f'=HYPERLINK("x"),,@A1,2024-01-01,PAM-13,+site,{ANSWERS},-1.5\n'
        f"-12,,A2,2024-01-01,PAM-13,\tsite,{ANSWERS},=1+2\n",
        encoding="utf-8",
    )
    out = tmp_path / "o.csv"
    assert main(["score", str(path), "--provider", "raw-sum", "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0]["patient_id"] == '\'=HYPERLINK("x")'
    assert rows[0]["assessment_id"] == "'@A1"
    assert rows[0]["site"] == "'+site"
    assert rows[0]["comment"] == "-1.5"
    assert rows[1]["patient_id"] == "-12"
    assert rows[1]["site"] == "'\tsite"
    assert rows[1]["comment"] == "'=1+2"


def test_nhs_numbers_only_when_asked(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_input(tmp_path, f",999 000 0018,A1,2024-01-01,PAM-13,s,{ANSWERS}")
    out = tmp_path / "o.csv"
    assert main(["score", str(path), "--provider", "raw-sum", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "9990000018" not in text
    assert "999 000 0018" not in text
    assert "0018" not in capsys.readouterr().err
    row = next(csv.DictReader(text.splitlines()))
    assert row["patient_id"] == ""
    assert (
        main(["score", str(path), "--provider", "raw-sum", "-o", str(out), "--keep-nhs-number"])
        == 0
    )
    row = next(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert row["nhs_number"] == "9990000018"
    assert list(row)[20:] == ["nhs_number", "site"]


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_typed_outputs(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    path = write_input(
        tmp_path,
        f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}",
        "P2,,A2,2024-01-02,PAM-13,s," + ",".join([""] * 13),
    )
    out = tmp_path / "o.data"
    assert main(["score", str(path), "--provider", "raw-sum", "-o", str(out), "--format", fmt]) == 0
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        rows = table.to_pylist()
        assert str(table.schema.field("assessed_on").type) == "date32[day]"
        assert rows[0]["assessed_on"] == dt.date(2024, 1, 1)
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert rows[0]["assessed_on"] == "2024-01-01"
    assert rows[0]["raw_score"] == 39
    assert rows[0]["theta"] is None
    assert rows[0]["flags"] == ["raw-only"]
    assert rows[0]["patient_id"] == "P1"
    assert rows[0]["demo"] is False
    assert rows[1]["status"] == "not-scored"
    assert rows[1]["reason"] == "nothing-answered"


class _Fixed(BaseProvider):
    """Returns preset numbers, to check how they are written (valid results: flagged demo, and
    levels of the scores, as pamlib checks every provider's results)."""

    id = "fixed"
    version = "1"
    demo = True

    def __init__(self, theta: float, score: float, licence: Licence | None = None) -> None:
        self.theta_value = theta
        self.score_value = score
        self.licence = licence

    def instruments(self) -> Collection[str]:
        return {"PAM-13"}

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        n = codes.shape[0]
        full = np.full(n, 1.0)
        return BatchScores(
            scored=np.ones(n, dtype=bool),
            n_answered=np.full(n, 13),
            raw_score=np.full(n, 39),
            mean_response=full * 3,
            theta=full * self.theta_value,
            theta_se=full * 0.1,
            score=full * self.score_value,
            score_se=full * 2.25,
            level=CURRENT.levels(full * self.score_value),
            flags=np.full(n, FLAG_BITS[Flag.DEMO], dtype=np.uint8),
            reason_code=np.full(n, ""),
            provider=self.id,
            provider_version=self.version,
            cutpoint_set="current",
            calibration_id="=cal",
            calibration_sha256="ab" * 32,
            demo=True,
        )


def _score_with(provider: BaseProvider, path: Path) -> dict[str, str]:
    from pamlib.pipeline import score_file

    host = PluginHost(load_entry_points=False, disabled=())
    out = io.BytesIO()
    score_file(path, select_provider=lambda _: provider, output=out, rejects=io.BytesIO(),
               host=host)  # fmt: skip
    return next(csv.DictReader(io.StringIO(out.getvalue().decode())))


@pytest.mark.parametrize(
    ("theta", "score", "written"),
    [(-1.5, 60.0, "60.0"), (0.1 + 0.2, 47.05, "47.1"), (-1e-7, 55.149, "55.1"), (2.0, 0.0, "0.0")],
)
def test_numbers_are_written_exactly(
    tmp_path: Path, theta: float, score: float, written: str
) -> None:
    path = write_input(tmp_path, f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}")
    row = _score_with(_Fixed(theta, score), path)
    assert float(row["theta"]) == theta  # full precision: reads back exactly
    assert not row["theta"].startswith("'")  # numbers are not "protected"
    assert row["score"] == written
    assert row["theta_se"] == "0.1"
    assert row["score_se"] == "2.25"
    level = str(int(CURRENT.level(score)))
    assert (row["level"], row["cutpoint_set"], row["demo"]) == (level, "current", "true")
    assert row["calibration_id"] == "'=cal"


def test_an_expired_licence_stops_the_run_and_leaves_no_output(tmp_path: Path) -> None:
    from pamlib.errors import LicenceError
    from pamlib.pipeline import score_file

    path = write_input(tmp_path, f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}")
    licence = Licence("Org", frozenset({"PAM-13"}), dt.date(2000, 1, 1))
    provider = _Fixed(0.0, 50.0, licence)
    host = PluginHost(load_entry_points=False, disabled=())
    with pytest.raises(LicenceError):
        score_file(path, select_provider=lambda _: provider, output=tmp_path / "o.csv",
                   host=host)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--provider", "nope"], 1, "no scoring provider called 'nope'"),
        (["--provider", "raw-sum", "--format", "xlsx"], 2, "no output format 'xlsx'"),
        (["--provider", "raw-sum", "--chunk-rows", "0"], 2, "--chunk-rows"),
        (["--provider", "raw-sum", "--calibration", "/nonexistent.toml"], 2, "calibration"),
        (["--provider", "raw-sum", "--instrument", "PAM-99"], 1, "PAM-99"),
    ],
)
def test_errors(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    *,
    argv: list[str],
    status: int,
    message: str,
) -> None:
    path = write_input(tmp_path, f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}")
    assert main(["score", str(path), "-o", str(tmp_path / "o.csv"), *argv]) == status
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_input(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["score", str(tmp_path / "absent.csv"), "--provider", "raw-sum"]) == 2
    assert "no such input file: absent.csv" in capsys.readouterr().err


def test_progress_bar_draws_only_on_a_terminal() -> None:
    stream = io.StringIO()
    Progress(stream).update(0.5, 10)
    assert stream.getvalue() == ""
    bar = Progress(stream, enabled=True)
    bar.update(0.5, 1234)
    bar.finish()
    assert "50%" in stream.getvalue()
    assert "1,234 records" in stream.getvalue()


def test_demo_writes_its_files(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--patients", "20", "--output-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        ".pamlib-demo", "rejects.csv", "report.html", "scored.csv", "summary.json",
        "synthetic-cohort.csv",
    ]  # fmt: skip
    assert "NOT PAM scores" in text
    (reconciliation,) = [line for line in text.splitlines() if line.startswith("read ")]
    assert reconciliation.endswith("+ rejected 3")
    assert any(line.startswith("Cohort report: ") for line in text.splitlines())
    with (out / "scored.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert all(r["demo"] == "true" for r in rows)
    assert all(r["recommended_pathways"] and r["reassess_by"] for r in rows)
    assert "DEMO" in (out / "report.html").read_text(encoding="utf-8")
    rejects = list(csv.DictReader(io.StringIO((out / "rejects.csv").read_text(encoding="utf-8"))))
    assert sorted(r["code"] for r in rejects) == ["date", "impossible-answer", "nhs-number"]


def test_rejects_without_columns_keep_their_fields(tmp_path: Path) -> None:
    from pamlib.formats.base import Reject
    from pamlib.formats.output import RejectsWriter

    writer = RejectsWriter(tmp_path / "r.csv", ())
    writer.write([Reject("qr.json", "$.item[2].answer", "unknown-label", "no", {"linkId": "=2"})])
    writer.close()
    (row,) = csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8")))
    assert row["line"] == "$.item[2].answer"
    assert json.loads(row["record"]) == {"linkId": "=2"}


def test_recommend_adds_tailoring_columns(
    tmp_path: Path, process_host: PluginHost, sample_data: Path
) -> None:
    from pamlib.tailoring import EXAMPLE_SITE_RULES

    out = tmp_path / "scored.csv"
    argv = ["score", str(sample_data / "cohort-small.csv"), "--provider", "demo", "-o", str(out),
            "--rules", str(EXAMPLE_SITE_RULES)]  # fmt: skip
    assert main(argv) == 0
    with out.open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames is not None
    assert reader.fieldnames[-4:] == [
        "recommended_pathways", "recommendation_rules", "reassess_by", "no_pathway_reason"
    ]  # fmt: skip
    assert len(rows) == 788
    assert all(r["recommended_pathways"] for r in rows)
    assert any("riverside." in r["recommendation_rules"] for r in rows)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_recommend_writes_every_table_format(
    tmp_path: Path, process_host: PluginHost, sample_data: Path, suffix: str
) -> None:
    from pamlib.tables.scored import ScoredTable

    base = ["score", str(sample_data / "cohort-small.csv"), "--provider", "demo", "--recommend"]
    assert main([*base, "-o", str(tmp_path / "t.csv")]) == 0
    assert main([*base, "-o", str(tmp_path / f"t{suffix}")]) == 0
    as_csv = ScoredTable.read(tmp_path / "t.csv").to_arrow()
    assert ScoredTable.read(tmp_path / f"t{suffix}").to_arrow().equals(as_csv)
    assert as_csv.column("recommended_pathways").to_pylist()[0]


def test_recommend_refuses_a_format_that_cannot_write_tables(
    tmp_path: Path, process_host: PluginHost, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.fhir.json"
    argv = ["score", str(sample_data / "cohort-small.csv"), "--provider", "demo",
            "-o", str(out), "--recommend"]  # fmt: skip
    assert main(argv) == 1
    assert "cannot write a scored table" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_report_scores_a_raw_export_first(
    tmp_path: Path, process_host: PluginHost, sample_data: Path
) -> None:
    import json

    html, summary = tmp_path / "r.html", tmp_path / "s.json"
    argv = ["report", str(sample_data / "cohort-small.csv"), "--provider", "demo",
            "-o", str(html), "--json", str(summary)]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert (data["n_patients"], data["n_assessments"], data["demo"]) == (500, 788, True)
    assert (tmp_path / "r.scored.csv").is_file()


def test_csv_to_fhir_and_back_scores_the_same(
    tmp_path: Path, process_host: PluginHost, sample_data: Path
) -> None:
    first, bundle, back = tmp_path / "a.csv", tmp_path / "a.fhir.json", tmp_path / "b.csv"
    source = str(sample_data / "cohort-small.csv")
    assert main(["score", source, "--provider", "demo", "-o", str(first)]) == 0
    assert main(["score", source, "--provider", "demo", "-o", str(bundle)]) == 0
    assert bundle.read_text(encoding="utf-8").startswith('{"resourceType":"Bundle"')
    assert main(["score", str(bundle), "--provider", "demo", "-o", str(back)]) == 0

    def scores(path: Path) -> dict[str, tuple[str, str, str]]:
        with path.open(encoding="utf-8") as f:
            return {r["assessment_id"]: (r["raw_score"], r["score"], r["level"])
                    for r in csv.DictReader(f)}  # fmt: skip

    assert scores(back) == scores(first)
    assert len(scores(first)) == 788


def test_the_removed_python_engine_is_refused_in_words(
    tmp_path: Path, host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--engine python`` once chose a second CSV reader; it is refused, without a traceback,
    before anything is read or written, and ``engine="python"`` is refused in the API too."""
    source = tmp_path / "export.csv"
    source.write_text("patient_id,assessed_on\np1,2025-03-01\n", encoding="utf-8")
    out = tmp_path / "scored.csv"
    argv = ["score", str(source), "--provider", "demo", "-o", str(out), "--engine", "python"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--engine python was removed" in err
    assert "Traceback" not in err
    assert not out.exists()
    with pytest.raises(ConfigurationError, match="engine 'python' was removed"):
        list(CsvFormat().read(source, ReadOptions(engine="python")))
