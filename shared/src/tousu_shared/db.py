"""Async engine and session factory; created by each service's bootstrap, never at import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
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


def _json_text(value: Any) -> str | None:
    """A JSON(B) parameter as the dialect's codec takes it (the text; None stays NULL)."""
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _same(value: Any) -> Any:
    return value


# Where a session keeps its transaction's driver connection (its ``info``), for HotStatement.
_DRIVER = "tousu.hot_statement.driver"


class HotStatement:
    """A statement compiled once to asyncpg's SQL, run on the session's transaction without
    SQLAlchemy's per-execution work (parameter processing, execution context, result
    wrapping): on intake's submission path that cost more CPU than asyncpg's own work
    (issue #12).

    Parameters are passed as SQLAlchemy would bind them (JSON columns as their JSON text,
    the rest as they are). It runs inside the session's (or connection's) transaction, which
    it begins as the dialect would if no statement has run yet; outside a transaction, or on
    another driver, it goes through SQLAlchemy. It skips SQLAlchemy's autoflush, as Core and
    text statements do anyway: a caller with unsaved ORM changes flushes first. A failure
    is raised as SQLAlchemy raises it (``DBAPIError`` and subclasses, parameters
    hidden), so callers and the API's error handlers see no difference.
    """

    def __init__(
        self,
        statement: sa.Insert | sa.Select[Any] | sa.TextClause,
        *,
        columns: Sequence[str] | None = None,
    ) -> None:
        # ``columns``: an insert's columns given (the others keep their server defaults).
        compiled = statement.compile(
            dialect=asyncpg_dialect.dialect(),
            column_keys=list(columns) if columns is not None else None,
        )
        self.statement = statement
        self.sql = compiled.string
        names = compiled.positiontup or []
        self._names = names
        self._convert = [
            _json_text if isinstance(compiled.binds[name].type, sa.JSON) else _same
            for name in names
        ]
        # Values the statement carries itself (a LIMIT, say); every other one must be given.
        given = set(columns or ())
        self._defaults = {
            name: compiled.binds[name].value
            for name in names
            if name not in given and compiled.binds[name].value is not None
        }

    def _args(self, params: Mapping[str, Any]) -> list[Any]:
        defaults = self._defaults
        return [
            convert(params[name] if name in params else defaults[name])
            for name, convert in zip(self._names, self._convert, strict=True)
        ]

    async def _driver(
        self, session: AsyncSession | AsyncConnection
    ) -> tuple[Any, asyncpg.Connection] | None:
        if isinstance(session, AsyncSession):
            # Found once per transaction of the session: the connection is the transaction's
            # until it ends, and looking it up through SQLAlchemy cost more than the insert.
            transaction = session.sync_session.get_transaction()
            known = session.info.get(_DRIVER)
            if (
                known is not None
                and transaction is not None
                and known[0] is transaction
                and transaction.is_active
            ):
                return known[1]
            found = await self._find_driver(await session.connection())
            session.info[_DRIVER] = (session.sync_session.get_transaction(), found)
            return found
        return await self._find_driver(session)

    @staticmethod
    async def _find_driver(connection: AsyncConnection) -> tuple[Any, asyncpg.Connection] | None:
        if not connection.in_transaction():
            return None
        raw = await connection.get_raw_connection()
        adapter: Any = raw.dbapi_connection
        driver = raw.driver_connection
        if not isinstance(driver, asyncpg.Connection):
            return None
        if not driver.is_in_transaction() and getattr(adapter, "_transaction", False) is None:
            # The dialect begins its transaction with the first statement: begin it as it does.
            await adapter._start_transaction()
        return (adapter, driver) if driver.is_in_transaction() else None

    async def fetch(
        self, session: AsyncSession | AsyncConnection, params: Mapping[str, Any]
    ) -> list[Any]:
        """The rows (asyncpg records: by position or column name)."""
        found = await self._driver(session)
        if found is None:
            return list(await session.execute(self.statement, params))
        adapter, driver = found
        try:
            return await driver.fetch(self.sql, *self._args(params))
        except Exception as exc:
            raise self._translated(adapter, exc) from exc

    async def execute(
        self, session: AsyncSession | AsyncConnection, params: Mapping[str, Any]
    ) -> None:
        """Run it for its effect."""
        found = await self._driver(session)
        if found is None:
            await session.execute(self.statement, params)
            return
        adapter, driver = found
        try:
            await driver.execute(self.sql, *self._args(params))
        except Exception as exc:
            raise self._translated(adapter, exc) from exc

    async def execute_many(
        self, session: AsyncSession | AsyncConnection, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Run it once per row of parameters (asyncpg's executemany: one round trip)."""
        if not rows:
            return
        found = await self._driver(session)
        if found is None:
            await session.execute(self.statement, list(rows))
            return
        adapter, driver = found
        try:
            await driver.executemany(self.sql, [self._args(row) for row in rows])
        except Exception as exc:
            raise self._translated(adapter, exc) from exc

    def _translated(self, adapter: Any, exc: Exception) -> Exception:
        """The exception SQLAlchemy would raise for this driver error."""
        try:
            adapter._handle_exception(exc)  # raises the DB-API form of the error
        except Exception as dbapi_error:
            return DBAPIError.instance(
                self.sql,
                None,
                dbapi_error,
                asyncpg_dialect.dialect.import_dbapi().Error,
                hide_parameters=True,
            )
        return exc
