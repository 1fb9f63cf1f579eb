"""Routing tables: departments, members, rules and their revisions, complaint facts, cases.

Seeds the default department ``general`` and the catch-all rule ``default`` so every
complaint can be routed from the first start.

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

SCHEMA = "routing"
APPEND_ONLY_TABLES = ("case_history", "routing_rule_revision")


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
    op.create_table(
        "department",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("chain", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        *_timestamps(),
        schema=SCHEMA,
    )
    op.create_table(
        "member",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "department", sa.Text, sa.ForeignKey(f"{SCHEMA}.department.code"), nullable=False
        ),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("availability", sa.Text, nullable=False, server_default="available"),
        sa.Column("manager_id", sa.Text),
        *_timestamps(),
        schema=SCHEMA,
    )
    op.create_index("ix_member_department", "member", ["department"], schema=SCHEMA)
    op.create_table(
        "routing_rule",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "target_department", sa.Text, sa.ForeignKey(f"{SCHEMA}.department.code"), nullable=False
        ),
        sa.Column("criteria", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_by", sa.Text, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint(
            "position", name="uq_routing_rule_position", deferrable=True, initially="DEFERRED"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "routing_rule_revision",
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
        schema=SCHEMA,
    )
    op.create_table(
        "complaint_fact",
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
        schema=SCHEMA,
    )
    op.create_table(
        "routed_case",
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
        schema=SCHEMA,
    )
    # Keyset pagination walks (created_at, id); the other indexes serve the list filters
    # and the load count of assignees.
    op.create_index("ix_routed_case_created", "routed_case", ["created_at", "id"], schema=SCHEMA)
    op.create_index(
        "ix_routed_case_department_state", "routed_case", ["department", "state"], schema=SCHEMA
    )
    op.create_index(
        "ix_routed_case_assignee",
        "routed_case",
        ["assignee_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("assignee_id IS NOT NULL"),
    )
    op.create_table(
        "case_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "case_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.routed_case.id"),
            nullable=False,
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
        schema=SCHEMA,
    )
    # Append-only in the database itself, like the audit log.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.refuse_change_of_append_only_row() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
        END $$
        """
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change_of_append_only_row()"
        )
    _seed_defaults()


def _seed_defaults() -> None:
    op.execute(
        f"INSERT INTO {SCHEMA}.department (code, name) "
        "VALUES ('general', 'General complaints desk')"
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.routing_rule "
        "(id, position, name, target_department, criteria, enabled, updated_by) "
        "VALUES ('default', 1000000, 'Default queue', 'general', '{}'::jsonb, true, "
        "'system:migration')"
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.routing_rule_revision "
        "(rule_id, version, change, snapshot, changed_by) VALUES ('default', 1, 'created', "
        """'{"order": 1000000, "name": "Default queue", "target_department": "general", """
        """"criteria": {}, "enabled": true}'::jsonb, 'system:migration')"""
    )


def downgrade() -> None:
    for table in (
        "case_history",
        "routed_case",
        "complaint_fact",
        "routing_rule_revision",
        "routing_rule",
        "member",
        "department",
    ):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.refuse_change_of_append_only_row()")
