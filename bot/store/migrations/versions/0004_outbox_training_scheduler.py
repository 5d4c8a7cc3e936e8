"""Outbox of reminders, training sessions and registrations, scheduler state and jobs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(300)),
        sa.Column("online_url", sa.String(500)),
        sa.Column("province", sa.String(40)),
        sa.Column("coop_type", sa.String(40)),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(100)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "training_registrations",
        sa.Column(
            "session_id",
            sa.Integer(),
            sa.ForeignKey("training_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_training_registrations_member", "training_registrations", ["member_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref", sa.String(40), nullable=False),
        sa.Column("occurrence", sa.String(40), nullable=False),
        sa.Column("slot", sa.String(12), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(300)),
        sa.Column("reserved_by", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("member_id", "kind", "ref", "occurrence", "slot", name="uq_outbox_key"),
    )
    op.create_index("ix_outbox_status_send_at", "outbox", ["status", "send_at", "id"])
    # The planner selects a rule's subscribers; the primary key starts with member_id.
    op.create_index("ix_reminder_subscriptions_rule", "reminder_subscriptions", ["rule_id"])
    op.create_table(
        "scheduler_state",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # APScheduler's SQLAlchemyJobStore table (its own layout), kept under migrations.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
    op.drop_table("scheduler_state")
    op.drop_index("ix_reminder_subscriptions_rule", "reminder_subscriptions")
    op.drop_index("ix_outbox_status_send_at", "outbox")
    op.drop_table("outbox")
    op.drop_index("ix_training_registrations_member", "training_registrations")
    op.drop_table("training_registrations")
    op.drop_table("training_sessions")
