"""Audit log hash chain: each entry holds the previous entry's hash and its own.

Revision ID: 0005
Revises: 0004
"""

from tousu_shared.migrations import add_audit_hash_chain, drop_audit_hash_chain

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_audit_hash_chain("intake")


def downgrade() -> None:
    drop_audit_hash_chain("intake")
