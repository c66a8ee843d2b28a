"""calls

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 02:12:57.886753
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("incident_id", sa.String(length=26), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("desk", sa.String(length=32), nullable=True),
        sa.Column("party_name", sa.String(length=200), nullable=False),
        sa.Column("party_org", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=26), nullable=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("desk_channel", sa.String(length=100), nullable=True),
        sa.Column("party_channel", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_desk_channel"), ["desk_channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_party_channel"), ["party_channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_state"))
        batch_op.drop_index(batch_op.f("ix_calls_party_channel"))
        batch_op.drop_index(batch_op.f("ix_calls_incident_id"))
        batch_op.drop_index(batch_op.f("ix_calls_desk_channel"))
        batch_op.drop_index(batch_op.f("ix_calls_contact_id"))

    op.drop_table("calls")
