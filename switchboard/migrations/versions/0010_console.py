"""the console's needs: pinyin initials of people's names (directory search); the desk each user sits at; the
sign-off of reports upward (报送单位, 签发人, 联系电话); no 初报 deadline for levels without one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from switchboard.core.db import UTCDateTime
from switchboard.directory.initials import COLUMN_LENGTH, initials

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("initials", sa.String(length=COLUMN_LENGTH), server_default="", nullable=False))
    people = sa.table("people", sa.column("id", sa.String), sa.column("name", sa.String), sa.column("initials"))
    connection = op.get_bind()
    for person_id, name in connection.execute(sa.select(people.c.id, people.c.name)).all():
        connection.execute(people.update().where(people.c.id == person_id).values(initials=initials(name)))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("desk", sa.String(length=32), nullable=True))
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reporting_unit", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("signed_by", sa.String(length=100), server_default="", nullable=False))
        batch_op.add_column(sa.Column("contact_phone", sa.String(length=40), server_default="", nullable=False))
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column("first_report_due_at", existing_type=UTCDateTime(timezone=True), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column("first_report_due_at", existing_type=UTCDateTime(timezone=True), nullable=False)
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.drop_column("contact_phone")
        batch_op.drop_column("signed_by")
        batch_op.drop_column("reporting_unit")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("desk")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("initials")
