"""A bounded load test of the reference service: nothing lost, nothing doubled, exact scores.

Run: ``python examples/pamlib-service/benchmarks/load.py [--requests 20000] [--concurrency 32]
[--database postgresql] [--fault restart-postgres] [--fault kill-service]``.

Starts ``uvicorn pamlib_service:app`` in a subprocess on a free localhost port (a SQLite file in
a temporary directory, or a database of a throwaway PostgreSQL server started from the machine's
packages; the ``demo`` provider; a tokens file), waits for ``/readyz``, then sends
``--requests`` POSTs of synthetic PAM-13 QuestionnaireResponses from ``--concurrency`` workers
sharing one async HTTP client. A share of them (``--resend-share``) are resends — the same
response, same identifier, sent again after it was acknowledged — which must answer ``200`` with
the stored Bundle. A request that fails on the connection, or is answered ``503`` (the database
unavailable), is retried with the same body, as a careful client would; the retry may answer
``200`` if the first attempt was stored. ``--fault`` breaks something while the load runs, at
evenly spaced points of it: ``restart-postgres`` stops PostgreSQL at once (as if it crashed) and
starts it again a second later; ``kill-service`` kills uvicorn (SIGKILL) and starts a new one on
the same port. The run
stops by itself when every request is answered, then stops the service (SIGTERM, as in
production) and reports throughput and p50/p99 latency (per HTTP request, as seen by the
client).

Then it checks, in the database, that every acknowledged submission is stored exactly once
(and nothing else is), that the stored answers are the ones sent, and that the stored score,
level and status equal :func:`pamlib.score` (the ``demo`` provider) on the same answers, for
every row or a sample (``--check-scores``). It exits ``1`` if any check fails.

The answers and scores are synthetic (pamlib's demonstration calibration): they are not PAM
scores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx2 as httpx
from pamlib_service.models import Submission
from pamlib_service.testing import PostgresServer
from sqlalchemy import create_engine, select

import pamlib
from pamlib.fhir import questionnaire_response
from pamlib.plugins import PluginHost

PAM13 = pamlib.instruments.BUILTIN_INSTRUMENTS[0]
SITE = "North"
TOKEN = "load-test-token-0123456789"  # noqa: S105 - the run's own throwaway tokens file
ENDPOINT = "/fhir/QuestionnaireResponse"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
#: How long a request failing on the connection (or answered 503) is sent again before the run
#: gives up on it: longer than a restart of the service or of the database takes.
RETRY_SECONDS = 90.0
FAULTS = ("restart-postgres", "kill-service")


@attrs.frozen
class Planned:
    """One distinct submission: the answers sent (to check against the database) and the body."""

    assessment_id: str
    patient_id: str
    assessed_on: dt.date
    answers: dict[str, int]
    body: bytes
    resend: bool


@attrs.define
class Tally:
    """What the workers saw (mutated by one event loop only, so no lock)."""

    latencies: list[float] = attrs.Factory(list)
    statuses: Counter[int] = attrs.Factory(Counter)
    acknowledged: set[str] = attrs.Factory(set)
    created: Counter[str] = attrs.Factory(Counter)
    retries: int = 0
    failures: list[str] = attrs.Factory(list)


def plan(requests: int, resend_share: float, seed: int) -> list[Planned]:
    """Distinct synthetic submissions, some marked to be sent twice, ``requests`` POSTs in all.

    Answers are drawn per item (1-4, sometimes not applicable, sometimes missing, a few too
    sparse to score); patients get several assessments each, on different dates.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by seed
    resends = round(requests * resend_share)
    distinct = requests - resends
    if distinct < 1 or resends > distinct:
        raise SystemExit("load.py: error: --resend-share leaves too few distinct submissions")
    marked = set(rng.sample(range(distinct), resends))
    patients = max(1, distinct // 4)
    start = dt.date(2024, 1, 1)
    planned = []
    for n in range(distinct):
        if rng.random() < 0.02:  # too few answers: stored, answered 201, not scored
            items = rng.sample(PAM13.items, 3)
        else:
            items = [item for item in PAM13.items if rng.random() > 0.05]
        answers = {item: -1 if rng.random() < 0.03 else rng.randint(1, 4) for item in items}
        assessment = pamlib.Assessment(
            f"L{n:07d}",
            pamlib.Patient(f"LP{rng.randrange(patients):06d}"),
            PAM13,
            start + dt.timedelta(days=rng.randrange(730)),
            answers,
            site=SITE,
        )
        body = json.dumps(questionnaire_response(assessment)).encode()
        planned.append(
            Planned(
                assessment.id,
                assessment.patient.id or "",
                assessment.assessed_on,
                answers,
                body,
                n in marked,
            )
        )
    return planned


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_service(
    workdir: Path, port: int, database_url: str, *, append: bool = False
) -> tuple[subprocess.Popen[bytes], Path]:
    """``uvicorn pamlib_service:app`` on ``port``, configured as a user would, logging to a file."""
    tokens = workdir / "tokens.json"
    tokens.write_text(
        json.dumps({"tokens": {TOKEN: {"site": SITE, "roles": ["submit", "read", "report"]}}}),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "PAMLIB_SERVICE_DATABASE_URL": database_url,
        "PAMLIB_SERVICE_TOKENS": str(tokens),
        "PAMLIB_SERVICE_PROVIDER": "demo",
        "PAMLIB_PLUGINS": "only-built-ins",  # an allow-list naming no plugin: built-ins only
    }
    log = workdir / "service.log"
    command = [sys.executable, "-m", "uvicorn", "pamlib_service:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log.open("ab" if append else "wb") as out:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            command, env=env, cwd=workdir, stdout=out, stderr=out
        )
    return process, log


async def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited ({process.returncode}) before it was ready")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the service was not ready within {timeout:.0f} s")


async def post(client: httpx.AsyncClient, item: Planned, tally: Tally) -> httpx.Response | None:
    """POST one body, sent again on connection errors and ``503``s for up to ``RETRY_SECONDS``;
    the answer, or ``None`` if it never came."""
    give_up = time.monotonic() + RETRY_SECONDS
    attempt = 0
    while True:
        began = time.perf_counter()
        try:
            answer = await client.post(ENDPOINT, content=item.body, headers=HEADERS)
        except httpx.TransportError as error:
            why = type(error).__name__
        else:
            tally.latencies.append(time.perf_counter() - began)
            tally.statuses[answer.status_code] += 1
            if answer.status_code != 503:
                return answer
            why = "503"
        if time.monotonic() > give_up:
            tally.failures.append(f"{item.assessment_id}: gave up ({why})")
            return None
        tally.retries += 1
        await asyncio.sleep(min(1.0, 0.05 * 2**attempt))
        attempt += 1


async def worker(client: httpx.AsyncClient, queue: asyncio.Queue[Planned], tally: Tally) -> None:
    while True:
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        first = await post(client, item, tally)
        if first is None:
            continue
        if first.status_code not in (200, 201):  # 200: a retry whose first attempt was stored
            tally.failures.append(f"{item.assessment_id}: answered {first.status_code}")
            continue
        tally.acknowledged.add(item.assessment_id)
        if first.status_code == 201:
            tally.created[item.assessment_id] += 1
        if item.resend:
            again = await post(client, item, tally)
            if again is None:
                continue
            if again.status_code != 200:
                tally.failures.append(f"{item.assessment_id}: resend answered {again.status_code}")
            elif again.json() != first.json():
                tally.failures.append(f"{item.assessment_id}: resend answered another Bundle")


Fault = Callable[[], Awaitable[None]]


async def inject(faults: Sequence[Fault], distinct: int, tally: Tally) -> None:
    """Each fault in turn once the acknowledged submissions pass its share of the run."""
    for n, fault in enumerate(faults, start=1):
        while len(tally.acknowledged) < distinct * n // (len(faults) + 1):
            await asyncio.sleep(0.05)
        await fault()


async def drive(
    base: str, planned: Sequence[Planned], concurrency: int, faults: Sequence[Fault] = ()
) -> tuple[Tally, float]:
    """Every planned POST from ``concurrency`` workers; the tally and the wall-clock seconds."""
    queue: asyncio.Queue[Planned] = asyncio.Queue()
    for item in planned:
        queue.put_nowait(item)
    tally = Tally()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
        began = time.perf_counter()
        workers = [worker(client, queue, tally) for _ in range(concurrency)]
        breaker = asyncio.ensure_future(inject(faults, len(planned), tally))
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - began
        if not breaker.done():
            breaker.cancel()
            tally.failures.append("the run ended before every fault was injected")
        elif breaker.exception() is not None:
            tally.failures.append(f"a fault could not be injected: {breaker.exception()!r}")
    return tally, elapsed


def stop_service(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (uvicorn finishes in-flight requests), then SIGKILL if it does not stop."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def check_database(
    database_url: str, planned: Sequence[Planned], tally: Tally, check_scores: int, seed: int
) -> tuple[list[str], int]:
    """Problems found comparing the stored rows with what was acknowledged and with pamlib, and
    how many rows' scores were checked."""
    problems: list[str] = []
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(Submission)).all()
    engine.dispose()
    by_id = {item.assessment_id: item for item in planned}
    keys = Counter((r.site, r.identifier_system, r.identifier_value) for r in rows)
    for key, times in keys.items():
        if times != 1:
            problems.append(f"{key[2]}: stored {times} times")
    stored = {r.identifier_value for r in rows}
    for missing in sorted(tally.acknowledged - stored):
        problems.append(f"{missing}: acknowledged but not stored")
    for extra in sorted(stored - set(by_id)):
        problems.append(f"{extra}: stored but never sent")
    for twice in sorted(k for k, n in tally.created.items() if n > 1):
        problems.append(f"{twice}: answered 201 more than once")
    host = PluginHost(load_entry_points=False, disabled=())
    provider = pamlib.select_provider("demo", PAM13, host=host)
    sample = [r for r in rows if r.identifier_value in by_id]
    if 0 <= check_scores < len(sample):
        sample = random.Random(seed).sample(sample, check_scores)  # noqa: S311 - a sample
    for row in sample:
        item = by_id[row.identifier_value]
        if row.answers != item.answers:
            problems.append(f"{item.assessment_id}: stored answers differ from those sent")
        assessment = pamlib.Assessment(
            item.assessment_id,
            pamlib.Patient(item.patient_id),
            PAM13,
            item.assessed_on,
            item.answers,
            site=SITE,
        )
        result = pamlib.score(assessment, provider=provider, host=host)
        finite = result.score is not None and math.isfinite(result.score)
        level = None if result.level is None else int(result.level)
        expected = (result.score if finite else None, level, str(result.status))
        got = (row.score, row.level, row.status)
        if got != expected:
            problems.append(f"{item.assessment_id}: stored {got}, pamlib.score gives {expected}")
    return problems, len(sample)


@attrs.define
class Running:
    """The service process, which a fault may kill and start again on the same port."""

    workdir: Path
    port: int
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def launch(cls, workdir: Path, port: int, database_url: str) -> Running:
        process, log = start_service(workdir, port, database_url)
        return cls(workdir, port, database_url, process, log)

    def kill_and_start(self) -> None:
        self.process.kill()  # SIGKILL: no graceful shutdown, in-flight requests are cut off
        self.process.wait()
        self.process, _ = start_service(self.workdir, self.port, self.database_url, append=True)

    def stop(self) -> int:
        return stop_service(self.process)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def faults_for(
    names: Sequence[str], running: Running, server: PostgresServer | None, ready_timeout: float
) -> list[Fault]:
    base = f"http://127.0.0.1:{running.port}"

    async def restart_postgres() -> None:
        if server is None:
            raise RuntimeError("no PostgreSQL server to restart")
        await asyncio.to_thread(server.restart, "immediate", 1.0)

    async def kill_service() -> None:
        await asyncio.to_thread(running.kill_and_start)
        await wait_ready(base, running.process, ready_timeout)

    chosen = {"restart-postgres": restart_postgres, "kill-service": kill_service}
    return [chosen[name] for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000, help="POSTs in all (default 20000)")
    parser.add_argument("--concurrency", type=int, default=32, help="workers (default 32)")
    parser.add_argument(
        "--resend-share", type=float, default=0.05, help="share of POSTs that are resends"
    )
    parser.add_argument(
        "--check-scores", type=int, default=-1, help="rows whose score is checked (default all)"
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="a SQLite file, or a throwaway PostgreSQL server (default sqlite)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        choices=FAULTS,
        default=[],
        help="break this while the load runs (repeatable; restart-postgres needs PostgreSQL)",
    )
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if "restart-postgres" in args.fault and args.database != "postgresql":
        parser.error("--fault restart-postgres needs --database postgresql")

    planned = plan(args.requests, args.resend_share, args.seed)
    load_before = os.getloadavg()[0]  # other work on the machine, before the service starts
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pamlib-load-")))
        server = None
        if args.database == "postgresql":
            # Durable (fsync on), as a production server would be.
            server = stack.enter_context(PostgresServer(durable=True))
            database_url = server.create_database("load")
        else:
            database_url = f"sqlite:///{workdir / 'service.db'}"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        running = Running.launch(workdir, port, database_url)
        faults = faults_for(args.fault, running, server, args.ready_timeout)
        try:
            asyncio.run(wait_ready(base, running.process, args.ready_timeout))
            tally, elapsed = asyncio.run(drive(base, planned, args.concurrency, faults))
        except BaseException:
            running.stop()
            sys.stderr.write(running.log_tail())
            raise
        code = running.stop()
        problems = list(tally.failures)
        if code not in (0, -signal.SIGTERM):  # uvicorn re-raises the signal once it has stopped
            problems.append(f"the service exited with {code} on SIGTERM")
        found, checked = check_database(database_url, planned, tally, args.check_scores, args.seed)
        problems += found
        if problems:
            sys.stderr.write(running.log_tail())

    answered = len(tally.latencies)
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "database": args.database,
        "faults": args.fault,
        "requests": args.requests,
        "distinct_submissions": len(planned),
        "concurrency": args.concurrency,
        "answered": answered,
        "statuses": dict(sorted(tally.statuses.items())),
        "retries": tally.retries,
        "seconds": round(elapsed, 2),
        "throughput_per_s": round(answered / elapsed, 1) if elapsed else None,
        "p50_ms": round(percentile(tally.latencies, 50) * 1000, 1) if answered else None,
        "p99_ms": round(percentile(tally.latencies, 99) * 1000, 1) if answered else None,
        "acknowledged": len(tally.acknowledged),
        "stored_rows_score_checked": checked,
        "problems": len(problems),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for problem in problems[:50]:
        print(f"load.py: check failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
