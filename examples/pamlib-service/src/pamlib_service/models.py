"""The database: one row per accepted submission, in SQLAlchemy 2's typed declarative style.

The schema is created and changed only by the Alembic migrations in ``migrations/`` (applied at
start-up); this module describes the same tables for queries, and a test checks that the two
agree. Types are portable: the same models run on SQLite (to try the service) and PostgreSQL.

Idempotency is the database's job: ``(site, identifier_system, identifier_value)`` is unique, so
two concurrent submissions of one response cannot both be stored, whatever the service checked
before inserting.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["MAX_SITE", "MAX_TEXT", "Base", "Submission"]

#: Constraint names are fixed so that migrations can name them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
#: Longest identifier system, identifier value, assessment id or patient key accepted.
MAX_TEXT = 512
#: Longest site name a tokens file may give (the column's width).
MAX_SITE = 128


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Submission(Base):
    """One stored QuestionnaireResponse with what pamlib made of it.

    ``scored_row`` is the assessment's row of a scored table (pamlib's columns, patient key
    columns included): reports, trajectories and tailoring rebuild a
    :class:`~pamlib.tables.scored.ScoredTable` from these rows. ``bundle`` is the answer sent
    when the response was stored, sent again verbatim to a resubmission.
    """

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("site", "identifier_system", "identifier_value"),
        Index(None, "site", "patient_key"),
        Index(None, "site", "reassess_by"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(MAX_SITE))
    identifier_system: Mapped[str] = mapped_column(String(MAX_TEXT))
    identifier_value: Mapped[str] = mapped_column(String(MAX_TEXT))
    content_sha256: Mapped[str] = mapped_column(String(64))
    assessment_id: Mapped[str] = mapped_column(String(MAX_TEXT))
    patient_key: Mapped[str] = mapped_column(String(MAX_TEXT))
    instrument: Mapped[str] = mapped_column(String(64))
    assessed_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int | None] = mapped_column(SmallInteger)
    provider: Mapped[str] = mapped_column(String(128))
    provider_version: Mapped[str] = mapped_column(String(64))
    calibration_id: Mapped[str | None] = mapped_column(String(256))
    calibration_sha256: Mapped[str | None] = mapped_column(String(64))
    cutpoint_set: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    answers: Mapped[dict[str, int]] = mapped_column(JSON)
    pathways: Mapped[list[str]] = mapped_column(JSON)
    rules_fired: Mapped[list[str]] = mapped_column(JSON)
    reassess_by: Mapped[dt.date | None] = mapped_column(Date)
    scored_row: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    bundle: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:  # no identifier, no patient key
        return f"Submission(id={self.id!r}, site={self.site!r}, status={self.status!r})"
