"""Department directory: this service's replica of routing's departments, filled from
platform.departments, so its admin API issues department credentials only for departments
that exist.

Revision ID: 0006
Revises: 0005
"""

from tousu_shared.migrations import create_department_directory, drop_department_directory

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_department_directory("intake")


def downgrade() -> None:
    drop_department_directory("intake")
