"""notices: notices with confirmation, one row per recipient; deliveries may belong to a notice's recipient

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("incident_id", sa.String(length=26), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("confirm", sa.Boolean(), nullable=False),
        sa.Column("confirm_by", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_code"), ["code"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_state"), ["state"], unique=False)
    op.create_table(
        "notice_recipients",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("notice_id", sa.String(length=26), nullable=False),
        sa.Column("person_id", sa.String(length=26), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("org_code", sa.String(length=40), nullable=False),
        sa.Column("org_name", sa.String(length=200), nullable=False),
        sa.Column("about_id", sa.String(length=26), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.JSON(), nullable=False),
        sa.Column("confirmed_channel", sa.String(length=32), nullable=True),
        sa.Column("confirmed_address", sa.String(length=200), nullable=True),
        sa.Column("confirmed_by", sa.String(length=100), nullable=True),
        sa.Column("confirmed_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_recipients_notice_id_notices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_recipients")),
    )
    with op.batch_alter_table("notice_recipients", schema=None) as batch_op:
        batch_op.create_index("ix_notice_recipients_notice_state", ["notice_id", "state"], unique=False)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("warning_id", existing_type=sa.String(length=26), nullable=True)
        batch_op.add_column(sa.Column("notice_recipient_id", sa.String(length=26), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_notice_recipient_id"), ["notice_recipient_id"], unique=False)
        batch_op.create_unique_constraint("uq_deliveries_notice_key", ["notice_recipient_id", "channel", "recipient"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_deliveries_notice_key", type_="unique")
        batch_op.drop_index(batch_op.f("ix_deliveries_notice_recipient_id"))
        batch_op.drop_column("notice_recipient_id")
        batch_op.alter_column("warning_id", existing_type=sa.String(length=26), nullable=False)
    with op.batch_alter_table("notice_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_recipients_notice_state")
    op.drop_table("notice_recipients")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_state"))
        batch_op.drop_index(batch_op.f("ix_notices_incident_id"))
        batch_op.drop_index(batch_op.f("ix_notices_code"))
    op.drop_table("notices")
