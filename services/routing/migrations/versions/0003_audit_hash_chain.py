"""Audit log hash chain: each entry holds the previous entry's hash and its own.

Revision ID: 0003
Revises: 0002
"""

from tousu_shared.migrations import add_audit_hash_chain, drop_audit_hash_chain

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_audit_hash_chain("routing")


def downgrade() -> None:
    drop_audit_hash_chain("routing")
