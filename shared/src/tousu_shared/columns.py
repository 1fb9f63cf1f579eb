"""Column groups that several services' tables declare alike (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def insert_time_column(name: str = "created_at") -> sa.Column[Any]:
    """A NOT NULL timestamp that the database fills (``now()``) when a row is inserted.

    A new column on every call: a Column belongs to exactly one table.
    """
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def timestamp_columns() -> list[sa.Column[Any]]:
    """``created_at`` and ``updated_at``, both filled by the database when a row is inserted."""
    return [insert_time_column(name) for name in ("created_at", "updated_at")]
