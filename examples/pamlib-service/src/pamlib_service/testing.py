"""A throwaway PostgreSQL server for the service's tests and its load benchmark.

:class:`PostgresServer` runs the machine's own ``initdb`` and ``pg_ctl`` (PostgreSQL's server
packages; nothing is downloaded) in a temporary data directory, listening on a free localhost
port only, and removes everything when it stops. ``initdb`` refuses to run as root, so as root
the server runs as the ``postgres`` account where there is one, else ``nobody``, in a directory
given to that account. Where it cannot be started, :meth:`PostgresServer.start` raises
:class:`PostgresUnavailableError` saying why, so a test can skip with the reason.

It can also be stopped and started again on the same data and port (:meth:`restart`): the
fault tests restart the database under load.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresServer", "PostgresUnavailableError"]

#: Where Debian and most distributions put the server programs when they are not on PATH.
_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")


class PostgresUnavailableError(Exception):
    """PostgreSQL cannot be started here; the message says why."""


def _program(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for pattern in _SEARCH:
        for candidate in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            if (candidate / name).is_file():
                return str(candidate / name)
    raise PostgresUnavailableError(f"no {name} on PATH (install PostgreSQL's server package)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _account() -> pwd.struct_passwd | None:
    """The account to run the server as: None (this one) unless this one is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailableError("running as root, and there is no postgres or nobody account")


class PostgresServer:
    """One PostgreSQL server in a temporary directory on ``127.0.0.1:port``, trusting local
    connections (it is reachable from this machine only and holds synthetic data only).

    ``durable=False`` turns off fsync and synchronous commit: tests need speed, not survival of a
    power cut (a restart of the server still loses nothing committed)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.port = _free_port()
        self.user = "pamlib"
        self._root: Path | None = None
        self._account: pwd.struct_passwd | None = None

    # -- paths and commands ----------------------------------------------------------------

    @property
    def root(self) -> Path:
        if self._root is None:
            raise PostgresUnavailableError("the server has not been set up")
        return self._root

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        account = self._account
        try:
            return subprocess.run(  # noqa: S603 - the server's own programs, fixed arguments
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.root,
                user=None if account is None else account.pw_uid,
                group=None if account is None else account.pw_gid,
                extra_groups=None if account is None else [],
                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"},
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
            raise PostgresUnavailableError(
                f"{Path(command[0]).name} failed ({exc.returncode}): {' '.join(tail)}"
            ) from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailableError(f"{Path(command[0]).name} failed: {exc}") from None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Create the cluster (the first time) and start the server; wait until it answers."""
        if self._root is None:
            initdb = _program("initdb")
            self._account = _account()
            self._root = Path(tempfile.mkdtemp(prefix="pamlib-pg-"))
            if self._account is not None:
                os.chown(self._root, self._account.pw_uid, self._account.pw_gid)
            self._run(
                initdb,
                "--pgdata",
                str(self.data),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-instructions",
                "--no-sync",  # a throwaway cluster: a power cut is not what it must survive
            )
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=200",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            _program("pg_ctl"),
            "start",
            "--wait",
            "--timeout",
            "60",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "-o",
            " ".join(options),
            timeout=90,
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (roll back open transactions, close sessions) or
        ``immediate`` (as if it crashed: recovery runs at the next start)."""
        self._run(_program("pg_ctl"), "stop", "--wait", "--pgdata", str(self.data), "--mode", mode)

    def restart(self, mode: str = "fast", pause: float = 0.0) -> None:
        """Stop, wait ``pause`` seconds (the outage clients see), and start again."""
        self.stop(mode)
        time.sleep(pause)
        self.start()

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self._run(
            _program("psql"),
            "--no-psqlrc",
            "--quiet",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--username",
            self.user,
            "--dbname",
            "postgres",
            "--command",
            f'CREATE DATABASE "{name}"',
        )
        return self.url(name)

    def close(self) -> None:
        """Stop the server if it runs, and remove its directory."""
        if self._root is None:
            return
        try:
            if self.data.is_dir():
                self.stop("immediate")
        except PostgresUnavailableError:
            pass  # not running: nothing to stop
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
