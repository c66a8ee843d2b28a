"""warnings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 02:23:51.005686
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warnings",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("incident_id", sa.String(length=26), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("msg_type", sa.String(length=8), nullable=False),
        sa.Column("colour", sa.String(length=8), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=True),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("sent_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("replaces_id", sa.String(length=26), nullable=True),
        sa.Column("superseded_by_id", sa.String(length=26), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=True),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("issued_by", sa.String(length=100), nullable=True),
        sa.Column("cancelled_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("issued_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["replaces_id"], ["warnings.id"], name=op.f("fk_warnings_replaces_id_warnings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warnings")),
        sa.UniqueConstraint("identifier", name=op.f("uq_warnings_identifier")),
    )
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warnings_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_warnings_replaces_id"), ["replaces_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_warnings_state"), ["state"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("warning_id", sa.String(length=26), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("lease_until", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("remote_id", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["warning_id"], ["warnings.id"], name=op.f("fk_deliveries_warning_id_warnings"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("warning_id", "channel", "recipient", name="uq_deliveries_key"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_claim", ["channel", "state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_deliveries_remote", ["channel", "remote_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_remote")
        batch_op.drop_index("ix_deliveries_claim")

    op.drop_table("deliveries")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warnings_state"))
        batch_op.drop_index(batch_op.f("ix_warnings_replaces_id"))
        batch_op.drop_index(batch_op.f("ix_warnings_incident_id"))

    op.drop_table("warnings")
