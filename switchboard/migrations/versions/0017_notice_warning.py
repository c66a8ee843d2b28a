"""a notice may be a warning's internal audience (its desks and officials, asked to confirm)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warning_id", sa.String(length=26), nullable=True))
        batch_op.create_index(batch_op.f("ix_notices_warning_id"), ["warning_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_warning_id"))
        batch_op.drop_column("warning_id")
