"""A real client: LHC-Forms renders pamlib's Questionnaire in headless Chromium, a user clicks
the answers, the form exports a QuestionnaireResponse, and pamlib reads and scores it exactly.

Needs Chromium and the ``lforms`` npm package in ``.cache/lforms/`` — ``make test`` installs
both through ``scripts/install-test-deps.sh``; where that is impossible the test skips, saying why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pamlib.fhir import check, questionnaire, read_fhir
from pamlib.fhir.codes import ANSWER_SYSTEM, ORDINAL_VALUE
from pamlib.plugins import PluginHost
from pamlib.responses import NOT_APPLICABLE_CODE
from pamlib.scoring.raw_sum import RawSumProvider
from tests.browser import chromium, find_chromium, static_server
from tests.conftest import ROOT

LFORMS_VERSION = "40.1.3"

# Scripts at the end of <body>, as LHC-Forms needs; the form goes into #formContainer.
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>loading</title>
<link rel="stylesheet" href="lforms/webcomponent/styles.css"></head>
<body>
<div id="formContainer"></div>
<script src="lforms/webcomponent/assets/lib/zone.min.js"></script>
<script src="lforms/webcomponent/runtime.js"></script>
<script src="lforms/webcomponent/polyfills.js"></script>
<script src="lforms/webcomponent/main.js"></script>
<script src="lforms/fhir/R4/lformsFHIR.min.js"></script>
<script>
fetch('questionnaire.json')
  .then(r => r.json())
  .then(q => LForms.Util.addFormToPage(q, 'formContainer', {fhirVersion: 'R4'}))
  .then(() => { document.title = 'ready'; },
        e => { document.title = 'error: ' + e; });
</script>
</body>
</html>
"""

#: What the user answers, item by item: 1-4, -1 not applicable, 0 left unanswered.
ANSWERS = [4, 3, NOT_APPLICABLE_CODE, 0, 1, 2, 4, 4, 3, 0, 2, NOT_APPLICABLE_CODE, 3]


def lforms_dir() -> Path:
    configured = os.environ.get("PAMLIB_LFORMS_DIR")
    if configured:
        return Path(configured)
    return ROOT / ".cache" / "lforms" / LFORMS_VERSION / "package" / "dist" / "lforms"


def option_id(link_id: str, code: int) -> str:
    """The id LHC-Forms gives the label of one radio option."""
    answer = "NA" if code == NOT_APPLICABLE_CODE else str(code)
    return f"{link_id}/1|{ANSWER_SYSTEM}|{answer}"


@pytest.mark.slow
def test_lhc_forms_answers_read_back_and_score_identically(
    tmp_path: Path, host: PluginHost
) -> None:
    lforms = lforms_dir()
    if not (lforms / "fhir" / "R4" / "lformsFHIR.min.js").is_file():
        pytest.skip(
            f"LHC-Forms {LFORMS_VERSION} is not in .cache/lforms "
            "(scripts/install-test-deps.sh could not fetch it with npm)"
        )
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/install-test-deps.sh could not install it)")
    pytest.importorskip("websockets", reason="the websockets package drives Chromium")

    form = questionnaire("PAM-13", host=host)
    site = tmp_path / "site"
    site.mkdir()
    (site / "lforms").symlink_to(lforms, target_is_directory=True)
    (site / "questionnaire.json").write_text(json.dumps(form), encoding="utf-8")
    (site / "index.html").write_text(PAGE, encoding="utf-8")
    items = [item["linkId"] for item in form["item"]]

    with static_server(site) as url, chromium(executable, tmp_path / "profile") as page:
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{url}/index.html")
        title = page.wait_for(
            "['ready'].includes(document.title) || document.title.startsWith('error')"
            " ? document.title : ''",
            timeout=60,
        )
        assert title == "ready"
        shown = page.evaluate("document.getElementById('formContainer').innerText")
        assert "Item 1 of PAM-13 — wording supplied by a licensed provider" in shown
        # A user changes their mind on the first item, then answers the rest in order.
        page.click(option_id(items[0], 1))
        for link_id, code in zip(items, ANSWERS, strict=True):
            if code:
                page.click(option_id(link_id, code))
        exported = page.evaluate(
            "LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', "
            "document.getElementById('formContainer'), "
            "{subject: {resourceType: 'Patient', id: 'lhc-test-1'}})"
        )

    assert exported["resourceType"] == "QuestionnaireResponse"
    assert exported["questionnaire"] == f"{form['url']}|{form['version']}"
    assert check(exported) == []
    # The renderer copied each option's weight onto the answer, as real clients do.
    for item in exported["item"]:
        coding = item["answer"][0]["valueCoding"]
        weights = [
            e["valueDecimal"] for e in coding.get("extension", []) if e["url"] == ORDINAL_VALUE
        ]
        assert weights == ([] if coding["code"] == "NA" else [int(coding["code"])])

    assessments, rejects, counts = read_fhir(exported, instruments=host.instruments())
    assert rejects == []
    assert (counts.n_read, counts.n_valid) == (1, 1)
    (assessment,) = assessments
    assert assessment.patient.id == "Patient/lhc-test-1"
    assert assessment.codes().tolist() == ANSWERS

    provider = RawSumProvider()
    expected = provider.score_batch(assessment.instrument, np.array([ANSWERS], dtype=np.int8))
    result = provider.score(assessment)
    assert result == expected.result(0, assessment.id)
    assert result.raw_score == sum(c for c in ANSWERS if c > 0)
    assert result.n_answered == sum(1 for c in ANSWERS if c > 0)
