"""consultations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 04:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultations",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.String(length=26), nullable=True),
        sa.Column("max_sites", sa.Integer(), nullable=False),
        sa.Column("pin", sa.String(length=16), nullable=False),
        sa.Column("room", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("recording", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultations")),
        sa.UniqueConstraint("room", name=op.f("uq_consultations_room")),
    )
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultations_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultations_state"), ["state"], unique=False)
    op.create_table(
        "consultation_invites",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("consultation_id", sa.String(length=26), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("person", sa.String(length=100), nullable=False),
        sa.Column("moderator", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("feed_url", sa.String(length=500), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("room_token", sa.String(length=64), nullable=False),
        sa.Column("expires_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_consultation_invites_consultation_id_consultations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_invites")),
    )
    with op.batch_alter_table("consultation_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_invites_consultation_id"), ["consultation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consultation_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_invites_consultation_id"))
    op.drop_table("consultation_invites")
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultations_state"))
        batch_op.drop_index(batch_op.f("ix_consultations_incident_id"))
    op.drop_table("consultations")
