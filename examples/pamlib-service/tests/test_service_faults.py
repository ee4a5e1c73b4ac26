"""Faults under load, on PostgreSQL: the database restarted and the service killed mid-run.

``benchmarks/load.py`` does the work (it is the same load test, kept small here so that it runs
in ``make test``): it restarts PostgreSQL at once (as after a crash) a third of the way through,
kills uvicorn with SIGKILL and starts a new one two thirds through, while its clients retry
failed and ``503`` requests with the same body. Then it checks the database: every acknowledged
submission stored exactly once, nothing else stored, no response created twice, every score
equal to :func:`pamlib.score`. Nobody steps in: the service's pool reconnects by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pamlib_service.testing import PostgresServer

LOAD = Path(__file__).parents[1] / "benchmarks" / "load.py"


def test_no_submission_lost_or_doubled_when_postgres_restarts_and_the_service_is_killed(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    figures = tmp_path / "figures.json"
    command = [sys.executable, str(LOAD), "--requests", "300", "--concurrency", "8"]
    command += ["--database", "postgresql", "--fault", "restart-postgres"]
    command += ["--fault", "kill-service", "--json", str(figures)]
    run = subprocess.run(  # noqa: S603 - this interpreter, the project's own script
        command, capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(figures.read_text())
    assert got["problems"] == 0
    assert got["faults"] == ["restart-postgres", "kill-service"]
    assert got["acknowledged"] == got["distinct_submissions"] == 285
    assert got["statuses"].get("500", 0) == 0
    assert got["retries"] > 0  # the faults were felt, and got over
    assert got["stored_rows_score_checked"] == 285
    if got["statuses"].get("503", 0) == 0:
        pytest.fail("no request met the database restart")  # the fault came too late to count
