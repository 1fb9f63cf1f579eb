"""Platform tables: outbox, inbox, audit log, credentials.

Revision ID: 0001
Revises:
"""

from tousu_shared.migrations import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables("sla_monitor")


def downgrade() -> None:
    drop_platform_tables("sla_monitor")
