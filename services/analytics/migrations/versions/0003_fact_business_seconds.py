"""The fact row keeps the business seconds of first response and resolution.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("first_response_business_seconds", "resolution_business_seconds")


def upgrade() -> None:
    # IF NOT EXISTS: 0002 creates the tables from the current ORM definitions.
    for column in COLUMNS:
        op.execute(f"ALTER TABLE analytics.fact ADD COLUMN IF NOT EXISTS {column} double precision")
    # Filled from the milestones the read model already holds (a rebuild gives the same).
    op.execute(
        "UPDATE analytics.fact f SET "
        "first_response_business_seconds = (SELECT elapsed_seconds FROM analytics.milestone m "
        "WHERE m.complaint_id = f.complaint_id AND m.milestone = 'first_response'), "
        "resolution_business_seconds = (SELECT elapsed_seconds FROM analytics.milestone m "
        "WHERE m.complaint_id = f.complaint_id AND m.milestone = 'resolve')"
    )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_column("fact", column, schema="analytics")
