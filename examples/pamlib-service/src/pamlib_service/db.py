"""The database engine, its migrations, and the SQLite settings that make it safe to share.

SQLAlchemy 2 and a URL: ``sqlite:///pamlib-service.db`` to try the service,
``postgresql+psycopg://user@host/db`` to run it. Migrations (Alembic, in ``migrations/``) are
applied at start-up, so a new version of the service brings its schema with it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "make_engine", "migrate", "ping", "session_factory"]

MIGRATIONS = Path(__file__).parent / "migrations"
#: The PostgreSQL advisory lock key held while migrating (any fixed 64-bit number; this one is
#: the first eight bytes of sha256("pamlib-service migrations")).
MIGRATION_LOCK = 0x5833_6593_0E63_25EC


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets a busy timeout and ``BEGIN IMMEDIATE`` transactions:
    without them two threads that read and then write deadlock, and one fails at once instead
    of waiting its turn."""
    # hide_parameters: a database error's message must not quote a patient's values.
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)
    engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        _set_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _set_wal(cursor: Any, wait: float = 30.0) -> None:
    """Switch a new SQLite database to WAL. The switch needs the database to itself and SQLite
    answers "locked" at once, without its busy timeout, while another connection writes (as
    when several copies start on a new database): try again until ``wait`` seconds pass."""
    deadline = time.monotonic() + wait
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest revision (a no-op when it is there already).

    Several copies of the service starting at once must not race to create the same tables:
    the upgrade runs in one transaction that first takes a lock, so the others wait and then
    find nothing to do. On PostgreSQL that is a transaction-level advisory lock (released by
    the commit, or by the server if the process dies); on SQLite, ``BEGIN IMMEDIATE`` (above)
    already takes the database's single write lock.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def ping(engine: Engine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
