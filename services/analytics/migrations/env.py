"""Alembic environment of the analytics service (version table in its own schema)."""

from tousu_analytics.adapters.orm import metadata
from tousu_shared.migrations import run_env

run_env(metadata)
