"""SLA tables: policy-set versions, calendars, case SLA state, milestones, SLA event log.

Seeds the default policy set (domain.md §4) and the ``cn-statutory`` and ``24x7``
calendars, so a fresh deployment monitors deadlines from its first event.

Revision ID: 0002
Revises: 0001
"""

import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "sla_monitor"
OPEN_MILESTONE = sa.text("next_fire_at IS NOT NULL")
TABLES = ("sla_event_log", "sla_milestone", "sla_case", "sla_calendar", "sla_policy_set")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    policy_set = op.create_table(
        "sla_policy_set",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", pg.JSONB, nullable=False),
        sa.Column("etag", pg.UUID, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    calendar = op.create_table(
        "sla_calendar",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", pg.JSONB, nullable=False),
        sa.Column("etag", pg.UUID, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        *_timestamps(),
        schema=SCHEMA,
    )
    op.create_table(
        "sla_case",
        sa.Column("case_id", pg.UUID, primary_key=True),
        sa.Column("policy_set_version", sa.Integer, nullable=False),
        sa.Column("policy_name", sa.Text, nullable=False),
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
        *_timestamps(),
        schema=SCHEMA,
    )
    op.create_table(
        "sla_milestone",
        sa.Column(
            "case_id",
            pg.UUID,
            sa.ForeignKey(f"{SCHEMA}.sla_case.case_id", ondelete="CASCADE"),
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
        sa.Column("pauses", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("at_risk_at", sa.DateTime(timezone=True)),
        sa.Column("breached_at", sa.DateTime(timezone=True)),
        sa.Column("met_at", sa.DateTime(timezone=True)),
        sa.Column("elapsed_seconds", sa.Float),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    # The scheduler's only way in: due work by time, never a scan of every case.
    op.create_index(
        "ix_sla_milestone_next_fire_at",
        "sla_milestone",
        ["next_fire_at"],
        schema=SCHEMA,
        postgresql_where=OPEN_MILESTONE,
    )
    op.create_index(
        "ix_sla_milestone_open_calendar",
        "sla_milestone",
        ["calendar"],
        schema=SCHEMA,
        postgresql_where=OPEN_MILESTONE,
    )
    op.create_index(
        "ix_sla_milestone_breached",
        "sla_milestone",
        ["due_at", "case_id", "milestone_key"],
        schema=SCHEMA,
        postgresql_where=sa.text("breached_at IS NOT NULL"),
    )
    op.create_index(
        "ix_sla_milestone_at_risk",
        "sla_milestone",
        ["due_at", "case_id", "milestone_key"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'at_risk'"),
    )
    op.create_table(
        "sla_event_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", pg.UUID, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("complaint_id", pg.UUID, nullable=False),
        sa.Column("milestone", sa.Text),
        sa.Column("department", sa.Text),
        sa.Column("urgency", sa.Text),
        sa.Column("firing_key", sa.Text, unique=True),
        sa.Column("envelope", pg.JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    # xid8 has no SQLAlchemy type; the writer's transaction id orders the live stream.
    op.execute(
        f"ALTER TABLE {SCHEMA}.sla_event_log "
        "ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()"
    )
    op.create_index("ix_sla_event_log_stream", "sla_event_log", ["xid", "id"], schema=SCHEMA)
    op.create_index("ix_sla_event_log_created_at", "sla_event_log", ["created_at"], schema=SCHEMA)
    _seed_defaults(policy_set, calendar)


def _seed_defaults(policy_set: sa.Table, calendar: sa.Table) -> None:
    from tousu_sla.domain import (
        always_open_calendar,
        chinese_statutory_calendar,
        default_policy_set,
    )

    op.bulk_insert(
        policy_set,
        [
            {
                "version": 1,
                "body": default_policy_set().model_dump(mode="json"),
                "etag": str(uuid.uuid4()),
                "comment": "domain.md §4 defaults",
                "created_by": "migration",
            }
        ],
    )
    op.bulk_insert(
        calendar,
        [
            {
                "name": cal.name,
                "version": 1,
                "body": cal.model_dump(mode="json"),
                "etag": str(uuid.uuid4()),
                "updated_by": "migration",
            }
            for cal in (chinese_statutory_calendar(), always_open_calendar())
        ],
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table, schema=SCHEMA)
