"""Alembic environment of the analytics service (version table in its own schema)."""

from tousu_shared.migrations import run_env

from tousu_analytics.adapters.orm import metadata

run_env(metadata)
