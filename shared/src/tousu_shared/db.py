"""Async engine and session factory; created by each service's bootstrap, never at import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tousu_shared.settings import ServiceSettings


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """An engine whose connections use only the service's own schema."""
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args={"server_settings": {"search_path": settings.db_schema}},
        # A failing statement's bound values (a description, a phone number) never reach an
        # exception message, so no log line or error report can carry them.
        hide_parameters=True,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def upsert(table: sa.Table, values: Mapping[str, Any], key: Sequence[str]) -> Insert:
    """Insert a row of ``values``; where a row with its ``key`` exists, set the others instead."""
    statement = insert(table).values(dict(values))
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: statement.excluded[name] for name in values if name not in key},
    )
