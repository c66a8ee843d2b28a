"""recording hold (reason, by whom, since when); the monitor file of calls the dialplan records itself

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=500), server_default="", nullable=False))
        batch_op.add_column(sa.Column("held_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("held_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("recording")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("held_at")
        batch_op.drop_column("held_by")
        batch_op.drop_column("hold_reason")
