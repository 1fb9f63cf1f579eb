"""Writes the read model: executes the projection's upserts on one generation's tables.

Changes of one shape go to the database as one statement. A few rows (the consumer's one
event) are sent as an executemany; many rows (the bulk generator's batches) as a single
``INSERT … SELECT FROM jsonb_to_recordset(…) ON CONFLICT …``, with the same merge clause:
one round trip and one statement instead of thousands. A statement may touch a row only
once, so a batch that changes one key several times is applied in *layers* (the n-th change
of every key in the n-th layer), which keeps every key's changes in their order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
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


# From this many rows of one shape on, a layer goes as one INSERT … SELECT statement.
BULK_ROWS = 200


def _layers(batch: list[Upsert]) -> list[list[Upsert]]:
    """The changes split so that no layer holds a key twice; the n-th change of each key
    is in the n-th layer."""
    seen: dict[tuple, int] = defaultdict(int)
    layers: list[list[Upsert]] = []
    for change in batch:
        key = tuple(change.key.values())
        n = seen[key]
        seen[key] = n + 1
        if n == len(layers):
            layers.append([])
        layers[n].append(change)
    return layers


# Built statements by (table, change shape, bulk): building one (its merge clause over
# ``excluded``) cost a quarter of the consumer's CPU when it was done per event. A handful
# of shapes per generation of tables, so the cache stays small.
_STATEMENTS: dict[tuple[str, tuple, bool], Insert] = {}


class ReadModelWriter:
    """Applies upserts; changes of one shape go to the database as one statement."""

    def __init__(
        self, session: AsyncSession, tables: ReadModelTables, bulk_rows: int = BULK_ROWS
    ) -> None:
        self._session = session
        self._tables = {table.name.removesuffix(tables.suffix): table for table in tables.all}
        self._bulk_rows = bulk_rows
        # Changes staged for the end of the transaction, in rounds written one after the
        # other, and the round and shape of each row's latest staged change.
        self._rounds: list[list[Upsert]] = []
        self._staged_at: dict[tuple, tuple[int, tuple]] = {}

    def _on_conflict(self, table: sa.Table, stmt: Insert, change: Upsert) -> Insert:
        if not change.values:
            return stmt.on_conflict_do_nothing()
        return stmt.on_conflict_do_update(
            index_elements=list(change.key),
            set_={column: _merged(table, stmt, change, column) for column in change.values},
        )

    def _cached(self, signature: tuple, change: Upsert, bulk: bool) -> Insert:
        table = self._tables[change.table]
        key = (table.fullname, signature, bulk)
        stmt = _STATEMENTS.get(key)
        if stmt is None:
            stmt = self._bulk_statement(change) if bulk else self._statement(change)
            _STATEMENTS[key] = stmt
        return stmt

    def _statement(self, change: Upsert) -> Insert:
        table = self._tables[change.table]
        return self._on_conflict(table, insert(table), change)

    def _bulk_statement(self, change: Upsert) -> Insert:
        """The same upsert, its rows read from one JSON array parameter ``rows``."""
        table = self._tables[change.table]
        columns = [*change.key, *change.values]
        records = (
            sa.func.jsonb_to_recordset(sa.cast(sa.bindparam("rows", type_=sa.Text), pg.JSONB))
            .table_valued(*(sa.column(name, table.c[name].type) for name in columns))
            .render_derived(name="r", with_types=True)
        )
        stmt = insert(table).from_select(columns, sa.select(*(records.c[n] for n in columns)))
        return self._on_conflict(table, stmt, change)

    async def stage(self, changes: Iterable[Upsert]) -> None:
        """Apply changes when the transaction ends (:meth:`write_staged`), together with the
        other events' of the batch: a consumer's batch then costs a statement per change
        shape and round, not one per event and shape.

        Staged changes are written in rounds, each round grouped by shape, which keeps the
        order of a row's changes only while they all have one shape; so a row's change in
        another shape than its last staged one goes to the round after that one's. Rows
        differ otherwise, and the read model has no constraint between rows, so their order
        does not matter. (Writing what was staged at each change of shape instead cost a
        round trip per event where every complaint's events change its fact row in two
        shapes, as received then classified, or a case's department then its level do.)
        """
        for change in changes:
            row = (change.table, tuple(change.key.items()))
            shape = _signature(change)
            staged = self._staged_at.get(row)
            if staged is None:
                n = 0
            else:
                n = staged[0] if staged[1] == shape else staged[0] + 1
            self._staged_at[row] = (n, shape)
            if n == len(self._rounds):
                self._rounds.append([])
            self._rounds[n].append(change)

    async def write_staged(self) -> None:
        """Apply the staged changes now."""
        rounds, self._rounds, self._staged_at = self._rounds, [], {}
        for changes in rounds:
            await self.apply(changes)

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
            for layer in _layers(groups[signature]):
                rows = [{**change.key, **change.values} for change in layer]
                if len(rows) < self._bulk_rows:
                    await self._session.execute(self._cached(signature, layer[0], False), rows)
                else:
                    document = orjson.dumps(rows).decode()
                    statement = self._cached(signature, layer[0], True)
                    await self._session.execute(statement, {"rows": document})
