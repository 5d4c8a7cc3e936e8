"""Indexes for the dashboard's aggregates: by time (messages, hand-overs, members), by outbox ref.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BY_TIME = ("messages", "handovers", "members")


def upgrade() -> None:
    for table in _BY_TIME:
        op.create_index(f"ix_{table}_created_at", table, ["created_at"])
    op.create_index("ix_outbox_kind_ref", "outbox", ["kind", "ref", "status"])


def downgrade() -> None:
    op.drop_index("ix_outbox_kind_ref", table_name="outbox")
    for table in reversed(_BY_TIME):
        op.drop_index(f"ix_{table}_created_at", table_name=table)
