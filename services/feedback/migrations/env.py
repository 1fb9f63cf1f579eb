"""Alembic environment of the feedback service (version table in its own schema)."""

from tousu_shared.migrations import run_env

from tousu_feedback.adapters.orm import metadata

run_env(metadata)
