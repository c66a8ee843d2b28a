"""the receipt index carries the state too, so SQLite's planner never takes the claim index for a receipt

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:30:00

`UPDATE deliveries ... WHERE channel = ? AND remote_id = ? AND state IN (sent, delivered, unconfirmed)` matched two
columns of (channel, remote_id) and two of the claim index (channel, state, next_attempt_at); without statistics
SQLite broke the tie by the indexes' order in the schema, which `create_all` and batch migrations take from a set.
Where the claim index won, every receipt walked every receipted row of the channel (a bench run fell from 450 to
110 SMS/s). Three columns of (channel, remote_id, state) win in every order.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_remote", table_name="deliveries")
    op.create_index("ix_deliveries_remote", "deliveries", ["channel", "remote_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_remote", table_name="deliveries")
    op.create_index("ix_deliveries_remote", "deliveries", ["channel", "remote_id"])
