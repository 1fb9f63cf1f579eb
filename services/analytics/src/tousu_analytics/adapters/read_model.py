"""Writes the read model: executes the projection's upserts on one generation's tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from tousu_analytics.adapters.orm import ReadModelTables
from tousu_analytics.domain.projection import Merge, Upsert


def _merged(table: sa.Table, stmt: Insert, change: Upsert, column: str) -> Any:
    stored, incoming = table.c[column], stmt.excluded[column]
    match change.merge_of(column):
        case Merge.SET:
            return incoming
        case Merge.KEEP:
            return sa.func.coalesce(stored, incoming)
        case Merge.LEAST:
            return sa.func.least(stored, incoming)
        case Merge.GREATEST:
            return sa.func.greatest(stored, incoming)
        case Merge.ANY:
            return sa.func.coalesce(stored, False).op("OR")(sa.func.coalesce(incoming, False))
        case Merge.NEWER_CASE:
            assert change.version_column is not None, "NEWER_CASE needs a version column"
            newer = stmt.excluded[change.version_column] >= sa.func.coalesce(
                table.c[change.version_column], -1
            )
            return sa.case((newer, incoming), else_=stored)
        case Merge.UNLESS_PERSON:
            by_person = table.c.classified_by == "person"
            return sa.case((by_person, stored), else_=incoming)
    raise AssertionError(f"unknown merge {change.merge_of(column)}")


def _signature(change: Upsert) -> tuple:
    return (
        change.table,
        tuple(change.key),
        tuple(change.values),
        tuple(sorted(change.merge.items())),
        change.version_column,
    )


class ReadModelWriter:
    """Applies upserts; changes of one shape go to the database as one statement."""

    def __init__(self, session: AsyncSession, tables: ReadModelTables) -> None:
        self._session = session
        self._tables = {table.name.removesuffix(tables.suffix): table for table in tables.all}

    def _statement(self, change: Upsert) -> Insert:
        table = self._tables[change.table]
        stmt = insert(table)
        if not change.values:
            return stmt.on_conflict_do_nothing()
        return stmt.on_conflict_do_update(
            index_elements=list(change.key),
            set_={column: _merged(table, stmt, change, column) for column in change.values},
        )

    async def apply(self, changes: Iterable[Upsert]) -> None:
        """Apply changes in order (one event's changes, or a batch of generated ones)."""
        groups: dict[tuple, list[Upsert]] = defaultdict(list)
        order: list[tuple] = []
        for change in changes:
            signature = _signature(change)
            if signature not in groups:
                order.append(signature)
            groups[signature].append(change)
        for signature in order:
            batch = groups[signature]
            rows = [{**change.key, **change.values} for change in batch]
            await self._session.execute(self._statement(batch[0]), rows)
