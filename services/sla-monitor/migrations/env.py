"""Alembic environment of the sla-monitor service (version table in its own schema)."""

from tousu_shared.migrations import run_env
from tousu_sla.adapters.orm import metadata

run_env(metadata)
