"""Alembic environment of the intake service (version table in its own schema)."""

from tousu_intake.adapters.orm import metadata
from tousu_shared.migrations import run_env

run_env(metadata)
