"""Tables of the intake schema (SQLAlchemy Core: the write path is hot, so no ORM there)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from tousu_shared.columns import insert_time_column

metadata = sa.MetaData(schema="intake")

complaint = sa.Table(
    "complaint",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
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
    sa.Column("related_complaint_ids", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=False),
    # The automatic result is never overwritten; a person's correction sits beside it.
    sa.Column("auto_classification", pg.JSONB, nullable=False),
    sa.Column("classification_explanation", pg.JSONB, nullable=False),
    sa.Column("ruleset_version", sa.Text, nullable=False),
    # The trained model that contributed (None: rules only) and whether a person should look.
    sa.Column("model_version", sa.Text),
    sa.Column("needs_review", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("manual_classification", pg.JSONB),
    sa.Column("manual_classified_by", sa.Text),
    sa.Column("manual_classification_reason", sa.Text),
    sa.Column("manual_classified_at", sa.DateTime(timezone=True)),
    # Effective dimensions (manual if present, else automatic), kept as columns for filters.
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("urgency", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("department", sa.Text),
    sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_dates", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("anonymized_at", sa.DateTime(timezone=True)),
)
sa.Index("ix_complaint_received", complaint.c.received_at, complaint.c.id)
sa.Index("ix_complaint_customer", complaint.c.customer_ref, complaint.c.received_at)
# The review queue: newest first among the few complaints the classifier was unsure about.
sa.Index(
    "ix_complaint_review_queue",
    complaint.c.received_at.desc(),
    complaint.c.id.desc(),
    postgresql_where=complaint.c.needs_review,
)


def _complaint_id(*, primary_key: bool = False) -> sa.Column[Any]:
    """The reference of a row that belongs to one complaint (its contact, its messages):
    one definition, so every such row is deleted with its complaint (ON DELETE CASCADE)."""
    return sa.Column(
        "complaint_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("intake.complaint.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


# Personal data, encrypted per field with AES-GCM; blind indexes find a customer without
# decrypting. Kept apart so that every read of it is deliberate (and audited).
complaint_contact = sa.Table(
    "complaint_contact",
    metadata,
    _complaint_id(primary_key=True),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("name_ct", sa.LargeBinary),
    sa.Column("phone_ct", sa.LargeBinary),
    sa.Column("email_ct", sa.LargeBinary),
    sa.Column("address_ct", sa.LargeBinary),
    sa.Column("phone_index", sa.LargeBinary),
    sa.Column("email_index", sa.LargeBinary),
    sa.Column("preferred_contact", sa.Text),
)
sa.Index("ix_contact_phone", complaint_contact.c.phone_index)
sa.Index("ix_contact_email", complaint_contact.c.email_index)

complaint_message = sa.Table(
    "complaint_message",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    _complaint_id(),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("body", sa.Text),
    sa.Column("evidence", pg.JSONB, nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("added_by", sa.Text, nullable=False),
)
sa.Index("ix_message_complaint", complaint_message.c.complaint_id, complaint_message.c.added_at)

idempotency_key = sa.Table(
    "idempotency_key",
    metadata,
    sa.Column("credential", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("complaint_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("response", pg.JSONB, nullable=False),
    insert_time_column(),
)

classifier_ruleset = sa.Table(
    "classifier_ruleset",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rules", pg.JSONB, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    insert_time_column(),
    sa.Column("note", sa.Text),
)
