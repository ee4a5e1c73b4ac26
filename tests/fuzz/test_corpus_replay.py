"""Every input in ``tests/fuzz/corpus/<surface>/`` replays through its fuzz harness, forever.

The corpus holds inputs that once broke pamlib (found by ``make fuzz``, by the hypothesis fuzz
tests, or reported in an issue), minimised, plus a few valid seeds the fuzzer starts from. The
harnesses are the functions ``make fuzz`` runs (:mod:`tests.fuzz.harnesses`), so an input that
crashed the fuzzer fails here the same way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.harnesses import SURFACES

CORPUS = Path(__file__).parent / "corpus"

#: Inputs that still break pamlib, by ``<surface>/<file name>``, with the issue case that fixes
#: them. Each replay must fail (strict): delete the entry when the fix lands.
KNOWN_FAILURES: dict[str, str] = {}

#: Folders of inputs that are not bytes for one harness (result batches a provider returns,
#: output cells), replayed instead by the fuzz test of their own area.
REPLAYED_ELSEWHERE: dict[str, str] = {
    "outputs": "tests/fuzz/test_fuzz_outputs.py",
    "plugins": "tests/fuzz/test_fuzz_plugins.py",
}


def corpus_files() -> list[str]:
    """``<surface>/<file name>`` of every corpus input (READMEs and dot-files are not inputs)."""
    return sorted(
        f"{folder.name}/{file.name}"
        for folder in CORPUS.iterdir()
        if folder.is_dir() and folder.name not in REPLAYED_ELSEWHERE
        for file in folder.iterdir()
        if file.is_file() and not file.name.startswith(".") and file.suffix != ".md"
    )


def _params() -> list[object]:
    params: list[object] = []
    for name in corpus_files():
        reason = KNOWN_FAILURES.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _params())
def test_replay(name: str) -> None:
    surface = name.split("/", 1)[0]
    SURFACES[surface]((CORPUS / name).read_bytes())


def test_every_folder_is_a_surface() -> None:
    folders = {f.name for f in CORPUS.iterdir() if f.is_dir()}
    assert folders <= set(SURFACES) | set(REPLAYED_ELSEWHERE), (
        "a corpus folder without a harness would never replay"
    )
    root = Path(__file__).resolve().parents[2]
    for folder, test_file in REPLAYED_ELSEWHERE.items():
        assert f'"{folder}"' in (root / test_file).read_text(encoding="utf-8"), test_file


def test_known_failures_name_corpus_files() -> None:
    assert set(KNOWN_FAILURES) <= set(corpus_files()), "an entry names no file"
    assert all(reason.startswith("issue case ") for reason in KNOWN_FAILURES.values())


def test_the_fuzz_runner_replays_without_atheris() -> None:
    """``make fuzz``'s runner imports the same harnesses (and needs atheris only to fuzz)."""
    root = Path(__file__).resolve().parents[2]
    seed = CORPUS / "csv" / "valid-two-rows.csv"
    done = subprocess.run(
        [sys.executable, str(root / "fuzz" / "run.py"), "csv", "--replay", str(seed)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": ok")
