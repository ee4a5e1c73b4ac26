"""The submissions table: one row per stored response, unique by site and identifier.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("identifier_system", sa.String(512), nullable=False),
        sa.Column("identifier_value", sa.String(512), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("assessment_id", sa.String(512), nullable=False),
        sa.Column("patient_key", sa.String(512), nullable=False),
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("provider_version", sa.String(64), nullable=False),
        sa.Column("calibration_id", sa.String(256), nullable=True),
        sa.Column("calibration_sha256", sa.String(64), nullable=True),
        sa.Column("cutpoint_set", sa.String(64), nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("pathways", sa.JSON(), nullable=False),
        sa.Column("rules_fired", sa.JSON(), nullable=False),
        sa.Column("reassess_by", sa.Date(), nullable=True),
        sa.Column("scored_row", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("bundle", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_submissions"),
        sa.UniqueConstraint(
            "site",
            "identifier_system",
            "identifier_value",
            name="uq_submissions_site_identifier_system_identifier_value",
        ),
    )
    op.create_index("ix_submissions_site_patient_key", "submissions", ["site", "patient_key"])
    op.create_index("ix_submissions_site_reassess_by", "submissions", ["site", "reassess_by"])


def downgrade() -> None:
    op.drop_index("ix_submissions_site_reassess_by", table_name="submissions")
    op.drop_index("ix_submissions_site_patient_key", table_name="submissions")
    op.drop_table("submissions")
