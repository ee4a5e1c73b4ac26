"""An export that identifies patients by NHS number only scores, tailors and reports end to end,
from the command line and from Python, and the number is written nowhere unless asked for.

The export is generated here in the shape of a site's semicolon export (NHS numbers spaced as
people type them, day-first dates, agreement labels, a practice column), with the example
mapping file from the docs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pamlib.cli import main
from pamlib.plugins import PluginHost
from pamlib.synthetic import test_nhs_number as synthetic_nhs_number

pa = pytest.importorskip("pyarrow")

ROOT = Path(__file__).parent.parent
MAPPING = ROOT / "docs" / "examples" / "site-export-mapping.toml"
LABELS = ("Disagree Strongly", "Disagree", "Agree", "Agree Strongly", "Not applicable", "3")


def _numbers(n: int) -> list[str]:
    out: list[str] = []
    k = 0
    while len(out) < n:
        number = synthetic_nhs_number(k)
        k += 1
        if number is not None:
            out.append(number)
    return out


def _export(path: Path, n_patients: int = 30, seed: int = 3) -> list[str]:
    """Two or three assessments a patient, NHS number only; returns the numbers used."""
    rng = np.random.default_rng(seed)
    numbers = _numbers(n_patients)
    header = ["NHS Number", "Date Completed", "Practice", "Clinician"]
    header += [f"Q{k}" for k in range(1, 14)] + ["Notes"]
    lines = [";".join(header)]
    for i, number in enumerate(numbers):
        spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
        for visit in range(2 + i % 2):
            low = min(visit, 2)  # later visits answer higher: activation grows
            answers = [LABELS[int(rng.integers(low, 4))] for _ in range(13)]
            date = f"{10 + visit:02d}/0{3 + 3 * visit}/2024"
            site = "SITE-A" if i % 2 else "SITE-B"
            lines.append(";".join([spaced, date, site, "Dr Example", *answers, ""]))
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    return numbers


def _contains_a_number(folder: Path, numbers: list[str]) -> list[str]:
    found = []
    for path in sorted(folder.iterdir()):
        if path.name == "export.csv":
            continue
        data = path.read_bytes()
        for number in numbers:
            spaced = f"{number[:3]} {number[3:6]} {number[6:]}".encode()
            if number.encode() in data or spaced in data:
                found.append(path.name)
                break
    return found


def test_score_tailor_report_from_the_command_line(
    tmp_path: Path, process_host: PluginHost
) -> None:
    numbers = _export(tmp_path / "export.csv")
    mapping = ["--mapping", str(MAPPING), "--provider", "demo"]
    report = ["-o", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")]
    assert main(["report", str(tmp_path / "export.csv"), *mapping, *report]) == 0
    summary = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert summary["nqf2483"]["denominator"] > 0, "follow-ups were linked by NHS number"
    assert main(["score", str(tmp_path / "export.csv"), *mapping, "--recommend",
                 "-o", str(tmp_path / "tailored.parquet")]) == 0  # fmt: skip
    tailored = pa.parquet.read_table(tmp_path / "tailored.parquet")
    assert all(tailored.column("recommended_pathways").to_pylist())
    assert _contains_a_number(tmp_path, numbers) == []
    assert main(["score", str(tmp_path / "export.csv"), *mapping, "--keep-nhs-number",
                 "-o", str(tmp_path / "kept.csv")]) == 0  # fmt: skip
    assert _contains_a_number(tmp_path, numbers) == ["kept.csv"]
    assert main(["report", str(tmp_path / "kept.csv"), "-o", str(tmp_path / "k.html"),
                 "--json", str(tmp_path / "k.json")]) == 0  # fmt: skip
    kept = json.loads((tmp_path / "k.json").read_text(encoding="utf-8"))
    assert kept["nqf2483"] == summary["nqf2483"]


def test_a_scored_file_without_the_number_says_how_to_link(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    _export(tmp_path / "export.csv")
    assert main(["score", str(tmp_path / "export.csv"), "--mapping", str(MAPPING),
                 "--provider", "demo", "-o", str(tmp_path / "s.csv")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["report", str(tmp_path / "s.csv"), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "--pseudonym-key" in err
    assert "Traceback" not in err


def test_pseudonyms_link_across_runs_and_differ_between_keys(
    tmp_path: Path, process_host: PluginHost
) -> None:
    numbers = _export(tmp_path / "export.csv")
    keys = []
    for name, secret in (("k1", b"a" * 32), ("k2", b"b" * 40)):
        (tmp_path / name).write_bytes(secret)
        (tmp_path / name).chmod(0o600)
        keys.append(tmp_path / name)
    args = [str(tmp_path / "export.csv"), "--mapping", str(MAPPING), "--provider", "demo"]
    outputs = {}
    for label, key in (("a", keys[0]), ("b", keys[0]), ("c", keys[1])):
        out = tmp_path / f"{label}.parquet"
        assert main(["score", *args, "--pseudonym-key", str(key), "-o", str(out)]) == 0
        outputs[label] = pa.parquet.read_table(out).column("nhs_pseudonym").to_pylist()
    assert outputs["a"] == outputs["b"], "the same key gives the same pseudonym on every run"
    assert not set(outputs["a"]) & set(outputs["c"]), "another key gives unlinkable values"
    assert _contains_a_number(tmp_path, numbers) == []
    assert main(["report", str(tmp_path / "a.parquet"), "-o", str(tmp_path / "r.html"),
                 "--json", str(tmp_path / "r.json")]) == 0  # fmt: skip


def test_the_same_from_python(tmp_path: Path, host: PluginHost) -> None:
    import pamlib

    numbers = _export(tmp_path / "export.csv")
    scorer = pamlib.TableScorer(provider="demo", mapping=MAPPING, host=host)
    run = scorer.score_source(tmp_path / "export.csv")
    assert run.summary.reconciles
    assert "nhs_number" not in run.scored.column_names
    keys = run.scored.patient_keys()
    assert all(str(k).startswith("nhs:") for k in keys)
    tailored = pamlib.tailor(run.scored, host=host)
    report = pamlib.build_report(tailored, host=host)
    assert report.nqf2483.denominator > 0
    frame = tailored.to_arrow().to_pylist()
    assert not any(n in json.dumps(frame, default=str) for n in numbers)


def test_the_per_patient_csv_holds_no_number_that_was_not_kept(
    tmp_path: Path, process_host: PluginHost
) -> None:
    numbers = _export(tmp_path / "export.csv")
    argv = ["report", str(tmp_path / "export.csv"), "--mapping", str(MAPPING)]
    argv += ["--provider", "demo", "-o", str(tmp_path / "r.html")]
    argv += ["--patients", str(tmp_path / "p.csv")]
    assert main(argv) == 0
    assert _contains_a_number(tmp_path, numbers) == []
    rows = (tmp_path / "p.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + len(numbers)


def test_rules_overdue_follows_people_up_by_their_key(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = _export(tmp_path / "export.csv")
    argv = ["score", str(tmp_path / "export.csv"), "--mapping", str(MAPPING)]
    argv += ["--provider", "demo", "--keep-nhs-number", "-o", str(tmp_path / "kept.csv")]
    assert main(argv) == 0
    capsys.readouterr()
    argv = ["rules", "overdue", "--input", str(tmp_path / "kept.csv"), "--on", "2030-01-01"]
    assert main([*argv, "--all"]) == 0
    listed = capsys.readouterr().out.splitlines()[1:]
    assert sorted(line.split(",")[0] for line in listed) == sorted(numbers)
