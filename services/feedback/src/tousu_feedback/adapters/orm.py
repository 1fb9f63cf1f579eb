"""Tables of the feedback service's own schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(schema="feedback")

# What feedback knows of each case from routing's events: no personal data.
case_ref = Table(
    "case_ref",
    metadata,
    Column("complaint_id", UUID(as_uuid=True), primary_key=True),
    Column("department", String(64), nullable=False),
    Column("urgency", String(32)),
    Column("contact_details_url", Text, nullable=False),
)

survey_policy = Table(
    "survey_policy",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("body", JSONB, nullable=False),
    Column("comment", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

survey = Table(
    "survey",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("complaint_id", UUID(as_uuid=True), nullable=False),
    Column("resolution_version", Integer, nullable=False),
    Column("department", String(64), nullable=False),
    Column("urgency", String(32)),
    Column("resolution", Text, nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("channel", String(16)),
    Column("offer_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("informed_at", DateTime(timezone=True)),
    Column("offered_at", DateTime(timezone=True)),
    Column("reminders_sent", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("answer", JSONB),
    Column("answered_at", DateTime(timezone=True)),
    Column("answer_source", String(16)),
    Column("answered_by", String(200)),
    Column("call_ref", String(200)),
    Column("new_issue_due_at", DateTime(timezone=True)),
    Column("new_complaint_id", UUID(as_uuid=True)),
    Column("closed_reason", Text),
    Column("next_action_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # One survey per resolution: a redelivered CaseResolved finds this and does nothing.
    UniqueConstraint("complaint_id", "resolution_version", name="survey_one_per_resolution"),
    Index(
        "survey_next_action",
        "next_action_at",
        postgresql_where="next_action_at IS NOT NULL",
    ),
    Index("survey_department_due", "department", "due_at"),
    Index("survey_complaint", "complaint_id"),
)

survey_token = Table(
    "survey_token",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("survey_id", UUID(as_uuid=True), ForeignKey("survey.id"), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("survey_token_survey", "survey_id"),
)

survey_history = Table(
    "survey_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("survey_id", UUID(as_uuid=True), ForeignKey("survey.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("details", JSONB, nullable=False),
    Index("survey_history_survey", "survey_id", "id"),
)

callback_attempt = Table(
    "callback_attempt",
    metadata,
    Column("survey_id", UUID(as_uuid=True), ForeignKey("survey.id"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("agent", String(200), nullable=False),
    Column("note", Text),
    Column("call_ref", String(200)),
)

outbound_message = Table(
    "outbound_message",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("survey_id", UUID(as_uuid=True), ForeignKey("survey.id"), nullable=False),
    Column("complaint_id", UUID(as_uuid=True), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("provider_ref", Text),
    Column("error", Text),
    Index("outbound_message_survey", "survey_id", "created_at"),
)
