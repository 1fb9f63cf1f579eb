"""Alembic environment of the intake service (version table in its own schema)."""

from tousu_shared.migrations import run_env

from tousu_intake.adapters.orm import metadata

run_env(metadata)
