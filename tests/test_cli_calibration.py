"""``pamlib calibration``: checks files, shows the hash, never the parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pamlib.cli import main
from pamlib.plugins import PluginHost
from pamlib.scoring.calibration import load_calibration
from tests.calibrations import future, pcm_document, rsm_document, write


def test_a_valid_file_is_summarised_without_its_numbers(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, pcm_document(), "toml")
    assert main(["calibration", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: ok" in out
    assert load_calibration(path).sha256 in out
    assert "partial-credit; estimator eap (prior_mean 0.5, prior_sd 1.5)" in out
    assert "flagged 'unlicensed'" in out
    assert "-1.8" not in out
    assert "0.9" not in out


def test_invalid_files_list_every_problem_and_exit_1(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, rsm_document(), name="good")
    bad = write(tmp_path, rsm_document(min_answered=0, colour="red"), name="bad")
    assert main(["calibration", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{good}: ok" in out
    assert f"{bad}: invalid" in out
    assert f"@ {bad}: min_answered" in out
    assert f"@ {bad}: colour" in out


def test_json_output(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = rsm_document(licence={"licensee": "Example Trust", "valid_until": future()})
    path = write(tmp_path, doc)
    assert main(["calibration", "--json", str(path)]) == 0
    [summary] = json.loads(capsys.readouterr().out)
    assert summary["valid"]
    assert summary["licence"]["licensee"] == "Example Trust"
    assert summary["sha256"] == load_calibration(path).sha256
    assert "item_difficulties" not in summary
