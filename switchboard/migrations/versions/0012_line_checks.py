"""line checks: one row per line per run of the probe

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "line_checks",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        sa.Column("answer_ms", sa.Integer(), nullable=True),
        sa.Column("level_dbfs", sa.Float(), nullable=True),
        sa.Column("delay_ms", sa.Float(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("checked_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_line_checks")),
    )
    with op.batch_alter_table("line_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_line_checks_checked_at"), ["checked_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_line_checks_number"), ["number"], unique=False)
        batch_op.create_index(batch_op.f("ix_line_checks_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("line_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_line_checks_run_id"))
        batch_op.drop_index(batch_op.f("ix_line_checks_number"))
        batch_op.drop_index(batch_op.f("ix_line_checks_checked_at"))
    op.drop_table("line_checks")
