"""Trainers' share links: trainer codes, link opens; entries attached to training sessions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("trainer_code", sa.String(12)))
        batch.create_unique_constraint("uq_members_trainer_code", ["trainer_code"])
    with op.batch_alter_table("training_sessions") as batch:
        batch.add_column(sa.Column("entries", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "share_opens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("trainer_code", sa.String(12), nullable=False),
        sa.Column("via", sa.String(10), nullable=False),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="SET NULL", name="fk_share_opens_member"),
        ),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("follow_up_until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_share_opens_trainer", "share_opens", ["trainer_code", "opened_at"])
    op.create_index("ix_share_opens_member", "share_opens", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_share_opens_member", table_name="share_opens")
    op.drop_index("ix_share_opens_trainer", table_name="share_opens")
    op.drop_table("share_opens")
    with op.batch_alter_table("training_sessions") as batch:
        batch.drop_column("entries")
    with op.batch_alter_table("members") as batch:
        batch.drop_constraint("uq_members_trainer_code", type_="unique")
        batch.drop_column("trainer_code")
