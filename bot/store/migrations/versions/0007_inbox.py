"""The durable inbox (inbound updates) and the web chat's pending pushes.

Replaces ``processed_events`` (a claim without the update): a row now keeps the
update until it has been handled, with a lease naming the worker handling it, so
a crash after the acknowledgement loses nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Several processes and bots on one database: members belong to a bot account, and an
    # outbox reservation is a lease that a dead worker's successor may take over.
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("bot_id", sa.String(64)))
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("reserved_by", type_=sa.String(80), existing_type=sa.String(40))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("bot_id", sa.String(64), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text()),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(80)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.String(200)),
        sa.UniqueConstraint("channel", "bot_id", "event_key", name="uq_inbox_events_key"),
    )
    op.create_index("ix_inbox_events_pending", "inbox_events", ["status", "lease_until"])
    op.create_index("ix_inbox_events_received_at", "inbox_events", ["received_at"])
    op.drop_index("ix_processed_events_received_at", table_name="processed_events")
    op.drop_table("processed_events")
    op.create_table(
        "web_pushes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_pushes_session", "web_pushes", ["session_id", "id"])
    op.create_index("ix_web_pushes_created_at", "web_pushes", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lease_until")
        batch.alter_column("reserved_by", type_=sa.String(40), existing_type=sa.String(80))
    with op.batch_alter_table("members") as batch:
        batch.drop_column("bot_id")
    op.drop_index("ix_web_pushes_created_at", table_name="web_pushes")
    op.drop_index("ix_web_pushes_session", table_name="web_pushes")
    op.drop_table("web_pushes")
    op.create_table(
        "processed_events",
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("event_key", sa.String(200), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_processed_events_received_at", "processed_events", ["received_at"])
    op.drop_index("ix_inbox_events_received_at", table_name="inbox_events")
    op.drop_index("ix_inbox_events_pending", table_name="inbox_events")
    op.drop_table("inbox_events")
