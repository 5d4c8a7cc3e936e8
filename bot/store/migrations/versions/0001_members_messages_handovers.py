"""Members, message log, hand-overs; the review log of the first release.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # Databases made before migrations existed already hold the review log.
    if not sa.inspect(op.get_bind()).has_table("review_questions"):
        op.create_table(
            "review_questions",
            sa.Column("id", sa.Integer(), primary_key=True),
            _timestamp("created_at"),
            sa.Column("channel", sa.String(20), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("reason", sa.String(30), nullable=False),
            sa.Column("intent", sa.String(80)),
            sa.Column("confidence", sa.Float()),
            sa.Column("status", sa.String(20), nullable=False),
        )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("province", sa.String(40)),
        sa.Column("coop_type", sa.String(40)),
        sa.Column("coop_role", sa.String(40)),
        sa.Column("vat_period", sa.String(20)),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("consent_reminders", sa.Boolean(), nullable=False),
        sa.Column("consent_broadcasts", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("last_seen_at"),
        sa.UniqueConstraint("channel", "external_id", name="uq_members_channel_user"),
    )
    op.create_index("ix_members_province", "members", ["province"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("intent", sa.String(80)),
        sa.Column("confidence", sa.Float()),
        sa.Column("entry_id", sa.String(40)),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("feedback", sa.String(10)),
        _timestamp("feedback_at", nullable=True),
        _timestamp("created_at"),
    )
    op.create_index("ix_messages_member_id", "messages", ["member_id"])
    op.create_table(
        "handovers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("staff_chat_id", sa.String(64)),
        sa.Column("staff_message_id", sa.String(64)),
        _timestamp("created_at"),
        _timestamp("answered_at", nullable=True),
    )
    op.create_index("ix_handovers_member_id", "handovers", ["member_id"])
    op.create_index("ix_handovers_staff_post", "handovers", ["staff_chat_id", "staff_message_id"])


def downgrade() -> None:
    op.drop_table("handovers")
    op.drop_table("messages")
    op.drop_table("members")
    op.drop_table("review_questions")
