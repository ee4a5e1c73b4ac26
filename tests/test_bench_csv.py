"""The CSV benchmark's input generator makes what the benchmark says it makes."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any

import pytest

from pamlib.pipeline import score_file
from pamlib.plugins import PluginHost
from pamlib.scoring.raw_sum import RawSumProvider
from tests.conftest import ROOT

pytest.importorskip("pyarrow")


def _bench() -> Any:
    """The benchmark script as a module (it is a script, not part of a package)."""
    spec = importlib.util.spec_from_file_location("bench_csv", ROOT / "benchmarks" / "bench_csv.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_cohort_scores_completely(tmp_path: Path) -> None:
    path = tmp_path / "bench.csv"
    _bench().write_cohort(path, 1_200)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1_201
    assert lines[0].startswith("patient_id,nhs_number,assessment_id,assessed_on,instrument,site")
    host = PluginHost(load_entry_points=False, disabled=())
    summary = score_file(
        path,
        select_provider=lambda _: RawSumProvider(),
        output=io.BytesIO(),
        rejects=io.BytesIO(),
        host=host,
    )
    assert summary.reconciliation == "read 1200 = scored 1200 + not scored 0 + rejected 0"


def test_filesystem_names_the_longest_mount_holding_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = _bench()
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "tmpfs /srv/mem tmpfs rw 0 0\n"
        "tmpfs /srv/memother tmpfs rw 0 0\n"
        "odd line\n",
        encoding="utf-8",
    )
    real = Path

    def fake(*parts: Any) -> Any:
        return mounts if parts == ("/proc/mounts",) else real(*parts)

    monkeypatch.setattr(bench, "Path", fake)
    assert bench.filesystem(real("/srv/mem/pamlib-bench")) == "tmpfs"
    assert bench.filesystem(real("/srv/memx")) == "ext4"  # a prefix of a name is not its folder
    assert bench.filesystem(real("/home")) == "ext4"


def test_filesystem_without_a_mount_table(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench()
    real = Path
    monkeypatch.setattr(
        bench,
        "Path",
        lambda *parts: real("/nonexistent-mounts") if parts == ("/proc/mounts",) else real(*parts),
    )
    assert bench.filesystem(real("/anywhere")) == "unknown file system"


def test_instruction_counts_subtract_start_up_and_leave_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--callgrind``: each command on the file and on its first two rows; the two-row count
    is start-up, the rest divided by the rows is the work a row."""
    bench = _bench()
    source = tmp_path / "pam13-4.csv"
    source.write_text("h\n1\n2\n3\n4\n", encoding="utf-8")
    seen: list[str] = []

    def counted(argv: list[str]) -> int:
        src = next(a for a in argv if a.endswith(".csv"))
        seen.append(Path(src).read_text(encoding="utf-8"))
        tiny = src.endswith("first-two-rows.csv")
        if "pamlib" in argv:
            return 1_000_000 if tiny else 1_000_000 + 4 * 3_000
        return 500_000 if tiny else 500_000 + 4 * 1_000

    monkeypatch.setattr(bench, "instructions", counted)
    bench.count_instructions(source, tmp_path, "demo", 4)
    out = capsys.readouterr().out
    assert seen == ["h\n1\n2\n", "h\n1\n2\n3\n4\n"] * 2
    assert "per row    3,000" in out
    assert "per row    1,000" in out
    assert "per row 3.00, in all 2.01" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pam13-4.csv"]


def test_the_rejected_export_is_rejected_whole(tmp_path: Path) -> None:
    bench = _bench()
    source, rejected = tmp_path / "bench.csv", tmp_path / "rejected.csv"
    bench.write_cohort(source, 300)
    bench.write_rejected(source, rejected)
    host = PluginHost(load_entry_points=False, disabled=())
    out, rejects = io.BytesIO(), io.BytesIO()
    summary = score_file(
        rejected,
        select_provider=lambda _: RawSumProvider(),
        output=out,
        rejects=rejects,
        host=host,
    )
    assert summary.reconciliation == "read 300 = scored 0 + not scored 0 + rejected 300"
    assert dict(summary.rejected_by_code) == {"date": 300}
