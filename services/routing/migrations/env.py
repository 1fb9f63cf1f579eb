"""Alembic environment of the routing service (version table in its own schema)."""

from tousu_shared.migrations import run_env

from tousu_routing.adapters.orm import metadata

run_env(metadata)
