"""The dashboard's rollups (usage_days, entry_days, broadcast_tallies) and members by last seen.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("province", sa.String(40), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("thumbs_up", sa.Integer(), nullable=False),
        sa.Column("thumbs_down", sa.Integer(), nullable=False),
    )
    op.create_table(
        "entry_days",
        sa.Column("province", sa.String(40), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("entry_id", sa.String(40), primary_key=True),
        sa.Column("questions", sa.Integer(), nullable=False),
    )
    op.create_table(
        "usage_days_settled",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "broadcast_tallies",
        sa.Column(
            "broadcast_id",
            sa.Integer(),
            sa.ForeignKey("broadcasts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("status", sa.String(12), primary_key=True),
        sa.Column("messages", sa.Integer(), nullable=False),
    )
    op.create_index("ix_members_last_seen_at", "members", ["last_seen_at"])


def downgrade() -> None:
    op.drop_table("broadcast_tallies")
    op.drop_index("ix_members_last_seen_at", table_name="members")
    op.drop_table("usage_days_settled")
    op.drop_table("entry_days")
    op.drop_table("usage_days")
