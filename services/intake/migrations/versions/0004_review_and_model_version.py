"""Review queue and model version on complaints: which model classified it, and whether a
person should look at it because the classifier was unsure.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.add_column(
        "complaint",
        sa.Column("needs_review", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.add_column("complaint", sa.Column("model_version", sa.Text), schema=SCHEMA)
    # Partial: the queue holds few rows, and the write path pays nothing for the others.
    op.create_index(
        "ix_complaint_review_queue",
        "complaint",
        [sa.text("received_at DESC"), sa.text("id DESC")],
        schema=SCHEMA,
        postgresql_where=sa.text("needs_review"),
    )


def downgrade() -> None:
    op.drop_index("ix_complaint_review_queue", "complaint", schema=SCHEMA)
    op.drop_column("complaint", "model_version", schema=SCHEMA)
    op.drop_column("complaint", "needs_review", schema=SCHEMA)
