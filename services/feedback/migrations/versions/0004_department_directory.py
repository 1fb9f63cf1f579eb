"""Department directory: this service's replica of routing's departments, filled from
platform.departments, so its admin API issues department credentials only for departments
that exist.

Revision ID: 0004
Revises: 0003
"""

from tousu_shared.migrations import create_department_directory, drop_department_directory

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_department_directory("feedback")


def downgrade() -> None:
    drop_department_directory("feedback")
