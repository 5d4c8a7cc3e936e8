"""Review queue (who asked, NLU candidates, labels) and the NLU model registry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_questions") as batch:
        batch.add_column(sa.Column("member_id", sa.Integer()))
        batch.add_column(sa.Column("message_id", sa.Integer()))
        batch.add_column(sa.Column("candidates", sa.Text()))
        batch.add_column(sa.Column("label", sa.String(80)))
        batch.add_column(sa.Column("labelled_by", sa.String(100)))
        batch.add_column(sa.Column("labelled_at", sa.DateTime(timezone=True)))
        batch.create_foreign_key(
            "fk_review_questions_member", "members", ["member_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_review_questions_status", ["status", "id"])
        batch.create_index("ix_review_questions_member", ["member_id"])
    op.create_table(
        "nlu_models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.String(20), nullable=False, unique=True),
        sa.Column("file", sa.String(200)),
        sa.Column("data_hash", sa.String(64)),
        sa.Column("examples", sa.Integer()),
        sa.Column("reviewed_examples", sa.Integer()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("metrics", sa.Text()),
        sa.Column("decision", sa.Text()),
        sa.Column("train_seconds", sa.Float()),
        sa.Column("created_by", sa.String(100)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deployed_by", sa.String(100)),
        sa.Column("deployed_at", sa.DateTime(timezone=True)),
        sa.Column("loaded_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("nlu_models")
    with op.batch_alter_table("review_questions") as batch:
        batch.drop_index("ix_review_questions_member")
        batch.drop_index("ix_review_questions_status")
        batch.drop_constraint("fk_review_questions_member", type_="foreignkey")
        for name in ("labelled_at", "labelled_by", "label", "candidates"):
            batch.drop_column(name)
        batch.drop_column("message_id")
        batch.drop_column("member_id")
