"""cameras: the registry of GB/T 28181 devices (with their catalog's channels) and RTSP cameras

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("organisation_id", sa.String(length=26), nullable=False),
        sa.Column("device_id", sa.String(length=20), nullable=True),
        sa.Column("password_ha1", sa.String(length=32), nullable=False),
        sa.Column("rtsp_url", sa.String(length=500), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("offline_reason", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("last_seen_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_cameras_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
        sa.UniqueConstraint("device_id", name=op.f("uq_cameras_device_id")),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cameras_organisation_id"), ["organisation_id"], unique=False)
    op.create_table(
        "camera_channels",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("camera_id", sa.String(length=26), nullable=False),
        sa.Column("channel_id", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("manufacturer", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("civil_code", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=20), nullable=False),
        sa.Column("ptz_type", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("updated_at", switchboard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_camera_channels_camera_id_cameras"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_channels")),
        sa.UniqueConstraint("camera_id", "channel_id", name=op.f("uq_camera_channels_camera_id")),
    )
    with op.batch_alter_table("camera_channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_channels_camera_id"), ["camera_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("camera_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_channels_camera_id"))
    op.drop_table("camera_channels")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_organisation_id"))
    op.drop_table("cameras")
