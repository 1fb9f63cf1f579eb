"""Column groups that several services' tables declare alike (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa


def timestamp_columns() -> list[sa.Column]:
    """``created_at`` and ``updated_at``, both filled by the database when a row is inserted.

    New columns on every call: a Column belongs to exactly one table.
    """
    return [
        sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())
        for name in ("created_at", "updated_at")
    ]
