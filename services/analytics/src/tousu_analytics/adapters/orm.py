"""Tables of the analytics service's own schema.

Two kinds of table live here:

- the **read model** (``fact``, ``milestone``, ``survey``, ``correction``): built only from
  events, so it can be dropped and rebuilt from offset zero. Its tables are made by
  :func:`read_model_tables` for a *generation* suffix: the live set has none, a rebuild
  fills a ``__shadow`` set beside it and renames it into place (``service_layer/rebuild.py``);
- the service's **own state** (denominators the business supplies, alerts, improvement
  actions, archived reports), which no event stream holds and a rebuild never touches.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

SCHEMA = "analytics"
SHADOW_SUFFIX = "__shadow"
RETIRED_SUFFIX = "__retired"

metadata = sa.MetaData(schema=SCHEMA)


@dataclass(frozen=True)
class ReadModelTables:
    """One generation of the read model's tables."""

    suffix: str
    fact: sa.Table
    milestone: sa.Table
    survey: sa.Table
    correction: sa.Table
    timeline: sa.Table
    clock: sa.Table

    @property
    def all(self) -> tuple[sa.Table, ...]:
        return (self.fact, self.milestone, self.survey, self.correction, self.timeline, self.clock)


READ_MODEL_NAMES = ("fact", "milestone", "survey", "correction", "timeline", "clock")


def read_model_tables(suffix: str = "", meta: sa.MetaData | None = None) -> ReadModelTables:
    """The read model's tables under one generation suffix (``""`` is the live set)."""
    meta = meta if meta is not None else sa.MetaData(schema=SCHEMA)
    ts = sa.DateTime(timezone=True)
    fact = sa.Table(
        f"fact{suffix}",
        meta,
        # One row per complaint; every column is set by the events about it, idempotently.
        sa.Column("complaint_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("received_at", ts),  # the contact time: deadlines and volumes count from it
        sa.Column("received_day", sa.Date),  # local (Asia/Shanghai) day of received_at
        sa.Column("channel", sa.Text),
        sa.Column("customer_ref", sa.Text),
        sa.Column("tier", sa.Text),
        sa.Column("product_line", sa.Text),
        sa.Column("product_ref", sa.Text),
        sa.Column("region", sa.Text),
        sa.Column("subject_unit", sa.Text),
        sa.Column("tags", pg.ARRAY(sa.Text)),
        sa.Column("fcr", sa.Boolean),
        sa.Column("category", sa.Text),
        sa.Column("severity", sa.Text),
        sa.Column("urgency", sa.Text),
        sa.Column("classified_by", sa.Text),  # "classifier" or "person"
        sa.Column("department", sa.Text),
        sa.Column("department_version", sa.Integer),
        sa.Column("first_response_at", ts),
        sa.Column("resolved_at", ts),
        sa.Column("closed_at", ts),
        sa.Column("close_reason", sa.Text),
        sa.Column("reopened_at", ts),
        sa.Column("root_cause", sa.Text),
        sa.Column("root_cause_version", sa.Integer),
        # Business seconds of the two timed milestones, copied from SlaMet so that the KPI
        # query needs no join (the milestone table keeps every milestone).
        sa.Column("first_response_business_seconds", sa.Float),
        sa.Column("resolution_business_seconds", sa.Float),
        # The case's handler level (of the highest case version) and its last escalation,
        # for the ops console's live board.
        sa.Column("handler_level", sa.Text),
        sa.Column("level_version", sa.Integer),
        sa.Column("escalated_at", ts),
        sa.Index(f"ix_fact{suffix}_received", "received_at"),
        sa.Index(f"ix_fact{suffix}_day_category", "received_day", "category"),
        sa.Index(f"ix_fact{suffix}_customer", "customer_ref", "received_at"),
    )
    milestone = sa.Table(
        f"milestone{suffix}",
        meta,
        sa.Column("complaint_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("milestone", sa.Text, primary_key=True),
        sa.Column("due_at", ts),
        sa.Column("met_at", ts),
        # Business seconds as the SLA monitor counted them (SlaMet.elapsed_seconds).
        sa.Column("elapsed_seconds", sa.Float),
        sa.Column("within_target", sa.Boolean),
        sa.Column("breached_at", ts),
    )
    survey = sa.Table(
        f"survey{suffix}",
        meta,
        sa.Column("survey_id", sa.Text, primary_key=True),
        sa.Column("complaint_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("satisfaction", sa.SmallInteger),
        sa.Column("source", sa.Text),
        sa.Column("solved", sa.Boolean),
        sa.Column("confirmed", sa.Boolean),
        sa.Column("answered_at", ts),
        sa.Index(f"ix_survey{suffix}_complaint", "complaint_id"),
    )
    correction = sa.Table(
        f"correction{suffix}",
        meta,
        # One row per corrected dimension of one reclassification event.
        sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("dimension", sa.Text, primary_key=True),
        sa.Column("complaint_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("from_value", sa.Text),
        sa.Column("to_value", sa.Text),
        sa.Index(f"ix_correction{suffix}_complaint", "complaint_id"),
    )
    timeline = sa.Table(
        f"timeline{suffix}",
        meta,
        # Every event about a complaint, as the console's case timeline shows it: what, when
        # (the time the fact happened, not when it was published), who, and the payload's
        # non-personal details (event payloads never carry personal data).
        sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("complaint_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("detail", pg.JSONB, nullable=False),
        sa.Index(f"ix_timeline{suffix}_complaint", "complaint_id", "at"),
    )
    clock = sa.Table(
        f"clock{suffix}",
        meta,
        # The live state of one SLA milestone's clock, as the SLA monitor announced it.
        sa.Column("complaint_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("milestone", sa.Text, primary_key=True),
        sa.Column("policy", sa.Text),
        sa.Column("started_at", ts),
        sa.Column("target_seconds", sa.Float),
        sa.Column("calendar", sa.Text),  # None: a wall clock
        sa.Column("due_at", ts),
        sa.Column("at_risk_at", ts),
        sa.Column("paused_at", ts),  # set while the clock is paused
        sa.Column("breached_at", ts),
        sa.Column("met_at", ts),
        sa.Column("cancelled_at", ts),
        sa.Column("updated_at", ts),
        sa.Index(f"ix_clock{suffix}_open", "due_at", postgresql_where=sa.text("met_at IS NULL")),
    )
    return ReadModelTables(suffix, fact, milestone, survey, correction, timeline, clock)


LIVE = read_model_tables("", metadata)

denominator = sa.Table(
    "denominator",
    metadata,
    sa.Column("month", sa.Date, primary_key=True),  # first day of the month
    # "" stands for "every product line" (a primary key cannot hold NULL).
    sa.Column("product_line", sa.Text, primary_key=True, server_default=""),
    sa.Column("orders", sa.BigInteger),
    sa.Column("customers", sa.BigInteger),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

alert = sa.Table(
    "alert",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("series_kind", sa.Text, nullable=False),  # category×product_line | ×department
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("series_value", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("first_day", sa.Date, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("evidence", pg.JSONB, nullable=False),
    sa.Column("action_id", pg.UUID(as_uuid=True)),
    sa.Column("dismiss_reason", sa.Text),
    sa.Column("history", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_alert_series", "series_kind", "category", "series_value", "last_day"),
)

improvement_action = sa.Table(
    "improvement_action",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("target", pg.JSONB, nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("due_on", sa.Date),
    sa.Column("target_rate", sa.Float),
    sa.Column("alert_id", pg.UUID(as_uuid=True)),
    sa.Column("root_cause", sa.Text),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("history", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

console_session = sa.Table(
    "console_session",
    metadata,
    # A signed-in console user: the cookie holds a random token, the table its SHA-256, so
    # a leaked table does not let anyone in. The principal is looked up by key id on every
    # request, so revoking the key ends the session too.
    sa.Column("token_sha256", sa.Text, primary_key=True),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("lang", sa.Text, nullable=False, server_default="zh"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_console_session_expires", "expires_at"),
)

report = sa.Table(
    "report",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("month", sa.Date, nullable=False, unique=True),
    sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("generated_by", sa.Text, nullable=False),
    # The live consumer's inbox position (topic → partition → last offset) it was built from.
    sa.Column("position", pg.JSONB, nullable=False),
    sa.Column("content", pg.JSONB, nullable=False),
)
