"""Tables of the routing service's own schema (SQLAlchemy Core; migrations create them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from tousu_shared.columns import timestamp_columns

metadata = sa.MetaData(schema="routing")


department = sa.Table(
    "department",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # {handler level: [member id, …]}: who serves this department at each rung of its chain.
    sa.Column("chain", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    *timestamp_columns(),
)

member = sa.Table(
    "member",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # The home department; the chains say which departments the member serves.
    sa.Column("department", sa.Text, sa.ForeignKey("routing.department.code"), nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("availability", sa.Text, nullable=False, server_default="available"),
    sa.Column("manager_id", sa.Text),
    *timestamp_columns(),
)

routing_rule = sa.Table(
    "routing_rule",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # "order" in the API and the domain; a reserved word in SQL.
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "target_department", sa.Text, sa.ForeignKey("routing.department.code"), nullable=False
    ),
    sa.Column("criteria", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_by", sa.Text, nullable=False),
    *timestamp_columns(),
    # Deferred, so a reorder can swap positions inside one transaction.
    sa.UniqueConstraint(
        "position", name="uq_routing_rule_position", deferrable=True, initially="DEFERRED"
    ),
)

routing_rule_revision = sa.Table(
    "routing_rule_revision",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("snapshot", pg.JSONB, nullable=False),
    sa.Column("changed_by", sa.Text, nullable=False),
    sa.Column(
        "changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.UniqueConstraint("rule_id", "version"),
)

complaint_fact = sa.Table(
    "complaint_fact",
    metadata,
    sa.Column("complaint_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("tracking_code", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("contact_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("customer_tier", sa.Text, nullable=False),
    sa.Column("product_line", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("subject_staff_ref", sa.Text),
    sa.Column("subject_unit", sa.Text),
    sa.Column("contact_details_url", sa.Text, nullable=False),
    sa.Column(
        "stored_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

routed_case = sa.Table(
    "routed_case",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("complaint_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("department", sa.Text, nullable=False),
    sa.Column("handler_level", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("assignee_id", sa.Text),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("rule_version", sa.Integer),
    sa.Column("routing_reason", sa.Text, nullable=False),
    sa.Column("notify_management", sa.Boolean, nullable=False),
    sa.Column("excluded_member_ids", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("urgency", sa.Text, nullable=False),
    sa.Column("customer_tier", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("product_line", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("risk_flags", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("subject_staff_ref", sa.Text),
    sa.Column("subject_unit", sa.Text),
    sa.Column("contact_details_url", sa.Text, nullable=False),
    sa.Column("complaint_received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("root_cause", sa.Text),
    sa.Column("responsible_person", sa.Text),
    sa.Column("solution", sa.Text),
    sa.Column("resolution", sa.Text),
    sa.Column("escalation_level", sa.Integer, nullable=False),
    sa.Column("reopen_count", sa.Integer, nullable=False),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("first_response_at", sa.DateTime(timezone=True)),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("close_reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

case_history = sa.Table(
    "case_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "case_id", pg.UUID(as_uuid=True), sa.ForeignKey("routing.routed_case.id"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("from_state", sa.Text),
    sa.Column("to_state", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("details", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.UniqueConstraint("case_id", "version"),
)
