"""A third party's provider, installed only as a folder on the path, is found by its entry point
on the executors and scores there; without it on the executors' path, the job refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pamlib.plugins import reset_host
from tests.calibrations import rsm_document
from tests.spark.exports import MAPPING, make_export

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

NAME = "pamlib_spark_test_provider"
PROVIDER = "spark-test-provider"
MODULE = '''"""A provider package as a vendor ships one (synthetic calibration: not the PAM)."""
from pathlib import Path

from pamlib import hookimpl
from pamlib.scoring import RaschProvider

__version__ = "0.0.1"


class TestProvider(RaschProvider):
    version = __version__


@hookimpl
def pamlib_register_scoring_providers(register, host):
    calibration = Path(__file__).with_name("calibration.json")
    register(TestProvider(calibration, id="spark-test-provider", host=host))
'''


@pytest.fixture
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding the package and its ``.dist-info`` with ``entry_points.txt``, as
    ``pip install --target`` leaves one; on the driver's path for this test only."""
    folder = tmp_path / "plugins"
    package = folder / NAME
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MODULE, encoding="utf-8")
    (package / "calibration.json").write_text(json.dumps(rsm_document()), encoding="utf-8")
    info = folder / f"{NAME}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pamlib-spark-test-provider\nVersion: 0.0.1\n",
        encoding="utf-8",
    )
    (info / "entry_points.txt").write_text(
        f"[pamlib]\npamlib-spark-test-provider = {NAME}\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(folder))
    reset_host(None)  # the driver's plugins are found again, this one among them
    yield folder
    monkeypatch.undo()
    reset_host(None)


def test_a_provider_installed_beside_the_job_scores_on_the_executors(
    spark: Any, plugin_folder: Path, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=80, seed=8)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=False)
    environment = spark.sparkContext.environment  # what every Python worker started gets
    environment["PYTHONPATH"] = str(plugin_folder)  # as spark.executorEnv.PYTHONPATH would
    try:
        run = ps.score(df, provider=PROVIDER)
        summary = run.summary()
        providers = {r["provider"] for r in run.scored.select("provider").distinct().collect()}
    finally:
        del environment["PYTHONPATH"]
    assert summary.reconciles
    assert summary.n_scored > 0
    assert providers == {PROVIDER}
    assert summary.providers == (PROVIDER,)

    # the same job on workers without the folder: they cannot load the provider, and refuse
    with pytest.raises(ps.SparkJobError, match=PROVIDER):
        ps.score(df, provider=PROVIDER).summary()
