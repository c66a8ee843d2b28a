"""bridges

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 03:51:01.477175
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bridge_sessions",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bridge", sa.String(length=20), nullable=False),
        sa.Column("incident_id", sa.String(length=26), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("started_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bridge_sessions")),
    )
    with op.batch_alter_table("bridge_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bridge_sessions_bridge"), ["bridge"], unique=False)
        batch_op.create_index(batch_op.f("ix_bridge_sessions_ended_at"), ["ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_bridge_sessions_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "bridge_participants",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("session_id", sa.String(length=26), nullable=False),
        sa.Column("how", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("org", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=26), nullable=True),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("tries", sa.JSON(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("max_rounds", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("next_try_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("joined_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["bridge_sessions.id"], name=op.f("fk_bridge_participants_session_id_bridge_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bridge_participants")),
    )
    with op.batch_alter_table("bridge_participants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bridge_participants_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_bridge_participants_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bridge_participants_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bridge_participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bridge_participants_state"))
        batch_op.drop_index(batch_op.f("ix_bridge_participants_session_id"))
        batch_op.drop_index(batch_op.f("ix_bridge_participants_channel"))

    op.drop_table("bridge_participants")
    with op.batch_alter_table("bridge_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bridge_sessions_incident_id"))
        batch_op.drop_index(batch_op.f("ix_bridge_sessions_ended_at"))
        batch_op.drop_index(batch_op.f("ix_bridge_sessions_bridge"))

    op.drop_table("bridge_sessions")
