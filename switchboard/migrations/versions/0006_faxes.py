"""faxes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 03:48:32.751436
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "faxes",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("batch_id", sa.String(length=26), nullable=True),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("incident_id", sa.String(length=26), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("local_number", sa.String(length=32), nullable=False),
        sa.Column("party_name", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=26), nullable=True),
        sa.Column("remote_station", sa.String(length=100), nullable=False),
        sa.Column("document", sa.String(length=300), nullable=False),
        sa.Column("document_name", sa.String(length=200), nullable=False),
        sa.Column("pages_total", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("rate", sa.Integer(), nullable=True),
        sa.Column("ecm", sa.Boolean(), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("recording_id", sa.String(length=26), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faxes")),
    )
    with op.batch_alter_table("faxes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faxes_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index("ix_faxes_claim", ["direction", "state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_faxes_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_faxes_number"), ["number"], unique=False)
        batch_op.create_index(batch_op.f("ix_faxes_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("faxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_faxes_state"))
        batch_op.drop_index(batch_op.f("ix_faxes_number"))
        batch_op.drop_index(batch_op.f("ix_faxes_incident_id"))
        batch_op.drop_index("ix_faxes_claim")
        batch_op.drop_index(batch_op.f("ix_faxes_batch_id"))

    op.drop_table("faxes")
