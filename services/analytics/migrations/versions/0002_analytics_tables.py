"""Read model (fact, milestone, survey, correction) and the service's own state.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
from tousu_analytics.adapters.orm import metadata

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The tables as first released; later changes get migrations of their own.
TABLES = (
    "fact",
    "milestone",
    "survey",
    "correction",
    "denominator",
    "alert",
    "improvement_action",
    "report",
)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[f"analytics.{name}"] for name in TABLES])


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name, schema="analytics")
