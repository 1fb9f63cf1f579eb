"""The ops console's read model (case timeline, live SLA clocks, handler level) and its
sign-in sessions.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from tousu_analytics.adapters.orm import metadata

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("timeline", "clock", "console_session")
FACT_COLUMNS = (
    ("handler_level", "text"),
    ("level_version", "integer"),
    ("escalated_at", "timestamp with time zone"),
)


def upgrade() -> None:
    # IF NOT EXISTS / checkfirst: 0002 creates the tables from the current ORM definitions.
    for column, kind in FACT_COLUMNS:
        op.execute(f"ALTER TABLE analytics.fact ADD COLUMN IF NOT EXISTS {column} {kind}")
    bind = op.get_bind()
    metadata.create_all(
        bind, tables=[metadata.tables[f"analytics.{name}"] for name in TABLES], checkfirst=True
    )
    # The events before this migration are in the inbox but not in these tables: a rebuild
    # (python -m tousu_analytics rebuild) fills them from offset zero.


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name, schema="analytics")
    for column, _ in reversed(FACT_COLUMNS):
        op.execute(f"ALTER TABLE analytics.fact DROP COLUMN IF EXISTS {column}")
