"""The clinical safety hazard log (docs/hazard-log.rst) is evidence, not prose: every test it
names exists and passes, every hazard has every field, and its risk arithmetic is right."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LOG = ROOT / "docs" / "hazard-log.rst"

#: A cited test: its pytest node id in double back-quotes.
NODE = re.compile(r"``(tests/[\w/.-]+\.py(?:::[^`\s]+)+)``")
SECTION = re.compile(r"^(H-\d\d) ([^\n]+)\n-+\n(.*?)(?=^H-\d\d [^\n]+\n-+\n|\Z)", re.M | re.S)
RISK = re.compile(r"severity (\d) × likelihood (\d) = (\d+) \(([a-z ]+)\)")
FIELDS = (
    ":Hazard:",
    ":Causes:",
    ":Effect:",
    ":Controls:",
    ":Verified by:",
    ":Open:",
    ":Initial risk:",
    ":Residual risk:",
    ":Owner / status:",
)


def band(risk: int) -> str:
    """The risk band of the log's matrix."""
    if risk <= 3:
        return "acceptable"
    if risk <= 6:
        return "low"
    if risk <= 10:
        return "medium"
    if risk <= 16:
        return "high"
    return "very high"


def hazards() -> dict[str, tuple[str, str]]:
    """Each hazard's id → (title, body)."""
    text = LOG.read_text(encoding="utf-8")
    return {m.group(1): (m.group(2), m.group(3)) for m in SECTION.finditer(text)}


def cited_tests() -> list[str]:
    return sorted(set(NODE.findall(LOG.read_text(encoding="utf-8"))))


def test_every_hazard_has_every_field() -> None:
    found = hazards()
    assert list(found) == [f"H-{i:02d}" for i in range(1, len(found) + 1)]
    for hid, (_, body) in found.items():
        missing = [f for f in FIELDS if f not in body]
        assert not missing, f"{hid} lacks {missing}"
        verified = body.split(":Verified by:", 1)[1].split(":Open:", 1)[0]
        assert NODE.search(verified), f"{hid} names no test that verifies its controls"


def test_the_risk_arithmetic_and_the_summary_agree() -> None:
    text = LOG.read_text(encoding="utf-8")
    for hid, (title, body) in hazards().items():
        risks = []
        for field in (":Initial risk:", ":Residual risk:"):
            line = body.split(field, 1)[1].split("\n", 1)[0]
            match = RISK.search(line)
            assert match, f"{hid} {field} is not 'severity S × likelihood L = R (band)'"
            s, likelihood, r, name = match.groups()
            assert int(s) * int(likelihood) == int(r), f"{hid} {field}"
            assert name == band(int(r)), f"{hid} {field}: {r} is {band(int(r))}"
            risks.append(f"{r} {name}")
        row = re.search(rf"^{hid}\s+{re.escape(title)}\s+(\d+ \w+)\s+(\d+ \w+)\s*$", text, re.M)
        assert row, f"{hid} is not in the summary table as titled"
        assert [row.group(1), row.group(2)] == risks, f"{hid}: summary and section differ"


def test_the_hazards_the_issue_asks_for_are_logged() -> None:
    titles = " / ".join(title.lower() for title, _ in hazards().values())
    for words in (
        "rounding or cut-points",
        "demonstration or unlicensed",
        "lost or duplicated",
        "wrong patient",
        "identifiers disclosed",
        "expired licence",
        "suppresses all support",
        "scored and recorded twice",
        "overwrites an input",
        "partial output",
        "wrong calibration",
    ):
        assert words in titles, words


@pytest.mark.slow
def test_every_cited_test_exists_and_passes() -> None:
    tests = cited_tests()
    assert tests
    assert not [t for t in tests if t.startswith("tests/test_hazard_log.py")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *tests],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    passed = set(re.findall(r"^PASSED (\S+)", done.stdout, re.M))
    # A parametrized test is cited by its name: every one of its cases must pass.
    missing = [
        t for t in tests if t not in passed and not any(p.startswith(f"{t}[") for p in passed)
    ]
    assert not missing, f"cited tests that did not pass or do not exist: {missing}"
    assert done.returncode == 0, done.stdout[-3000:]
