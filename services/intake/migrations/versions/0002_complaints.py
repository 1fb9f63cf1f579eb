"""Complaints, encrypted contacts, messages, idempotency keys, classifier rule sets.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_table(
        "complaint",
        sa.Column("id", pg.UUID, primary_key=True),
        sa.Column("tracking_code", sa.Text, nullable=False, unique=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("contact_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_late", sa.Boolean, nullable=False),
        sa.Column("customer_ref", sa.Text, nullable=False),
        sa.Column("customer_tier", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("requested_remedies", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("product_ref", sa.Text),
        sa.Column("product_line", sa.Text),
        sa.Column("region", sa.Text),
        sa.Column("order_ref", sa.Text),
        sa.Column("amount", sa.Numeric(14, 2)),
        sa.Column("currency", sa.Text),
        sa.Column("subject_staff_ref", sa.Text),
        sa.Column("subject_unit", sa.Text),
        sa.Column("reported_emotion", sa.Text),
        sa.Column("affected_customers", sa.Integer),
        sa.Column("tags", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("resolved_on_first_contact", sa.Boolean, nullable=False),
        sa.Column("first_contact_resolution", sa.Text),
        sa.Column("related_complaint_ids", pg.ARRAY(pg.UUID), nullable=False),
        sa.Column("auto_classification", pg.JSONB, nullable=False),
        sa.Column("classification_explanation", pg.JSONB, nullable=False),
        sa.Column("ruleset_version", sa.Text, nullable=False),
        sa.Column("manual_classification", pg.JSONB),
        sa.Column("manual_classified_by", sa.Text),
        sa.Column("manual_classification_reason", sa.Text),
        sa.Column("manual_classified_at", sa.DateTime(timezone=True)),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("urgency", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("department", sa.Text),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_dates", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("anonymized_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index("ix_complaint_received", "complaint", ["received_at", "id"], schema=SCHEMA)
    op.create_index(
        "ix_complaint_customer", "complaint", ["customer_ref", "received_at"], schema=SCHEMA
    )
    op.create_table(
        "complaint_contact",
        sa.Column(
            "complaint_id",
            pg.UUID,
            sa.ForeignKey(f"{SCHEMA}.complaint.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("name_ct", sa.LargeBinary),
        sa.Column("phone_ct", sa.LargeBinary),
        sa.Column("email_ct", sa.LargeBinary),
        sa.Column("address_ct", sa.LargeBinary),
        sa.Column("phone_index", sa.LargeBinary),
        sa.Column("email_index", sa.LargeBinary),
        sa.Column("preferred_contact", sa.Text),
        schema=SCHEMA,
    )
    op.create_index("ix_contact_phone", "complaint_contact", ["phone_index"], schema=SCHEMA)
    op.create_index("ix_contact_email", "complaint_contact", ["email_index"], schema=SCHEMA)
    op.create_table(
        "complaint_message",
        sa.Column("id", pg.UUID, primary_key=True),
        sa.Column(
            "complaint_id",
            pg.UUID,
            sa.ForeignKey(f"{SCHEMA}.complaint.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("evidence", pg.JSONB, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_message_complaint", "complaint_message", ["complaint_id", "added_at"], schema=SCHEMA
    )
    op.create_table(
        "idempotency_key",
        sa.Column("credential", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("complaint_id", pg.UUID, nullable=False),
        sa.Column("response", pg.JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "classifier_ruleset",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rules", pg.JSONB, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("note", sa.Text),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "classifier_ruleset",
        "idempotency_key",
        "complaint_message",
        "complaint_contact",
        "complaint",
    ):
        op.drop_table(table, schema=SCHEMA)
