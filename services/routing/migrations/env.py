"""Alembic environment of the routing service (version table in its own schema)."""

from tousu_routing.adapters.orm import metadata
from tousu_shared.migrations import run_env

run_env(metadata)
