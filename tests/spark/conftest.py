"""One Spark session for every Spark test (local[2], small partitions, no UI); the tests skip
with the reason where pyspark or Java is missing."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.spark.exports import Export, make_export


def _missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (the spark extra)"
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        return "Java (17 or later) is not installed"
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)', done.stderr)
    if done.returncode != 0 or found is None:
        return "java -version failed"
    if int(found.group(1)) < 17:
        return f"Spark 4 needs Java 17 or later, not {found.group(1)}"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    why = _missing()
    if why is not None:
        pytest.skip(why)
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers import this pamlib
    session = (
        SparkSession.builder.master("local[2]")
        .appName("pamlib-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.files.maxPartitionBytes", "4096")  # several tasks per file
        .config("spark.sql.files.openCostInBytes", "1024")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """Every kind of fault the export generator makes, but no quote on any line: every record
    one line."""
    return make_export(tmp_path_factory.mktemp("lines"), n=300, quotes=False)


@pytest.fixture(scope="session")
def quoted(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """The same with its quoted fields (a comma, a doubled quote) on one line each."""
    return make_export(tmp_path_factory.mktemp("quoted"), n=300, line_breaks=False)
