"""Tables of the sla-monitor service's own schema (migration 0002 creates them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.types import UserDefinedType
from tousu_shared.columns import timestamp_columns

metadata = sa.MetaData(schema="sla_monitor")

OPEN_MILESTONE = sa.text("next_fire_at IS NOT NULL")


class Xid8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id; read and written as text by this service."""

    cache_ok = True

    def get_col_spec(self, **_: object) -> str:
        return "xid8"


# Every published version of the policy set; the highest version is in force.
policy_set = sa.Table(
    "sla_policy_set",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("body", pg.JSONB, nullable=False),
    # Changes on every write, so caches never confuse two bodies with the same version number.
    sa.Column("etag", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)

# Business calendars, with operators' date overrides inside the body.
calendar = sa.Table(
    "sla_calendar",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", pg.JSONB, nullable=False),
    sa.Column("etag", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    *timestamp_columns(),
)

# One row per case: its serialised SLA aggregate and the facts the API filters on.
sla_case = sa.Table(
    "sla_case",
    metadata,
    sa.Column("case_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("policy_set_version", sa.Integer, nullable=False),
    sa.Column("policy_name", sa.Text, nullable=False),
    # Which revision of each calendar the stored due times were computed with.
    sa.Column("calendar_etags", pg.JSONB, nullable=False),
    sa.Column("urgency", sa.Text),
    sa.Column("severity", sa.Text),
    sa.Column("customer_tier", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("channel", sa.Text),
    sa.Column("department", sa.Text),
    sa.Column("escalation_level", sa.Text, nullable=False),
    sa.Column("state", pg.JSONB, nullable=False),
    sa.Column("last_error", sa.Text),
    *timestamp_columns(),
)

# One row per milestone of a case (its current cycle): the scheduler's index and the lists.
milestone = sa.Table(
    "sla_milestone",
    metadata,
    sa.Column(
        "case_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("sla_monitor.sla_case.case_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("milestone_key", sa.Text, primary_key=True),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("policy_name", sa.Text, nullable=False),
    sa.Column("clock", sa.Text, nullable=False),
    sa.Column("calendar", sa.Text, nullable=False),
    sa.Column("department", sa.Text),
    sa.Column("urgency", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("target_seconds", sa.Float, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True)),
    sa.Column("next_fire_at", sa.DateTime(timezone=True)),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("escalation_level", sa.Text, nullable=False),
    sa.Column("pauses", pg.JSONB, nullable=False),
    sa.Column("at_risk_at", sa.DateTime(timezone=True)),
    sa.Column("breached_at", sa.DateTime(timezone=True)),
    sa.Column("met_at", sa.DateTime(timezone=True)),
    sa.Column("elapsed_seconds", sa.Float),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    sa.Index("ix_sla_milestone_next_fire_at", "next_fire_at", postgresql_where=OPEN_MILESTONE),
    sa.Index("ix_sla_milestone_open_calendar", "calendar", postgresql_where=OPEN_MILESTONE),
    sa.Index(
        "ix_sla_milestone_breached",
        "due_at",
        "case_id",
        "milestone_key",
        postgresql_where=sa.text("breached_at IS NOT NULL"),
    ),
    sa.Index(
        "ix_sla_milestone_at_risk",
        "due_at",
        "case_id",
        "milestone_key",
        postgresql_where=sa.text("state = 'at_risk'"),
    ),
)

# Every SLA event published, appended in the outbox's transaction: the live stream reads it.
event_log = sa.Table(
    "sla_event_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    # The writer's transaction id orders the stream without gaps (see entrypoints/stream.py).
    sa.Column("xid", Xid8, server_default=sa.text("pg_current_xact_id()"), nullable=False),
    sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("complaint_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("milestone", sa.Text),
    sa.Column("department", sa.Text),
    sa.Column("urgency", sa.Text),
    # Unique per timer threshold: a second firing of the same threshold cannot commit.
    sa.Column("firing_key", sa.Text, unique=True),
    sa.Column("envelope", pg.JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    sa.Index("ix_sla_event_log_stream", "xid", "id"),
    sa.Index("ix_sla_event_log_created_at", "created_at"),
)
