"""Alembic environment of the feedback service (version table in its own schema)."""

from tousu_feedback.adapters.orm import metadata
from tousu_shared.migrations import run_env

run_env(metadata)
