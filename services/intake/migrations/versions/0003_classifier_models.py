"""Classifier model registry: trained text-model versions, their metrics and artefacts.

A retrained candidate is stored with its evaluation; it is promoted only when it is not
worse than the current model on the held-out split and on recent corrections, otherwise it
stays "rejected" with the reason. The artefact is the serialised model (small, bytea).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_table(
        "classifier_model",
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("trained_on_hash", sa.Text, nullable=False),
        sa.Column("trained_on_size", sa.Integer, nullable=False),
        sa.Column("metrics", pg.JSONB, nullable=False),
        sa.Column("artefact", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("promoted_at", sa.DateTime(timezone=True)),
        sa.Column("promoted_by", sa.Text),
        sa.CheckConstraint(
            "status IN ('candidate', 'promoted', 'rejected')", name="ck_classifier_model_status"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_classifier_model_promoted",
        "classifier_model",
        ["status", "promoted_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_classifier_model_promoted", "classifier_model", schema=SCHEMA)
    op.drop_table("classifier_model", schema=SCHEMA)
