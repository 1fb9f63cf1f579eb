"""The read-model writer's bulk path (one INSERT … SELECT per layer of a batch, what the
generator uses) leaves exactly the rows that the row-at-a-time path leaves."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from analytics_factories import CST, H
from tousu_analytics.adapters.orm import ReadModelTables, read_model_tables
from tousu_analytics.adapters.read_model import ReadModelWriter
from tousu_analytics.domain.case_timeline import console_changes
from tousu_analytics.domain.projection import Upsert, changes_for
from tousu_shared.contracts import Event
from tousu_shared.contracts.case import (
    CaseClosed,
    CaseReopened,
    CaseTransferred,
    FirstResponseSent,
    RootCauseRecorded,
)
from tousu_shared.contracts.complaint import ComplaintAnonymized
from tousu_shared.contracts.feedback import CustomerConfirmed
from tousu_shared.contracts.sla import SlaBreached

pytestmark = pytest.mark.integration


def lifecycle(kit: Any, n: int) -> list[Event]:
    """Every event kind the projection counts, several of them twice for one complaint."""
    at = datetime(2025, 10, 9, 9, tzinfo=CST) + n * H
    c = kit(contact_at=at, customer_ref=f"cust-{n % 3}", tags=["screen", f"t{n}"])
    events = [
        c.received(),
        c.classified("product_quality"),
        c.routed(at, "quality"),
        c.case(FirstResponseSent, at + 3 * H, "quality"),
        c.case(FirstResponseSent, at + 2 * H, "quality"),  # an earlier one arrives later
        c.met("first_response", at + 2 * H, 2),
        c.case(RootCauseRecorded, at + 20 * H, "quality", root_cause="supplier batch"),
        c.resolved(at + 26 * H, "quality", "supplier batch 7"),
        c.met("resolve", at + 26 * H, 10),
        c.answered(f"s{n}", at + 30 * H, 1 + n % 5, "link", confirmed=False),
        c.feedback(CustomerConfirmed, f"s{n}", confirmed_at=at + 31 * H, source="callback"),
        c.case(CaseClosed, at + 31 * H, "quality", close_reason="customer_confirmed"),
        c.case(CaseReopened, at + 40 * H, "quality", reason="not solved"),
    ]
    if n % 2:
        # A person's correction, then the classifier again (the person's value stands), a
        # transfer, a breach, and the customer's data removed.
        events += [
            c.reclassified("service_attitude", "product_quality"),
            c.classified("delivery_delay"),
            c.case(CaseTransferred, at + 41 * H, "service", from_department="quality", reason="x"),
            c.sla(SlaBreached, "resolve", at + 48 * H),
            ComplaintAnonymized(complaint_id=c.complaint_id, anonymized_at=at + 50 * H),
        ]
    return events


async def _rows(conn: sa.ext.asyncio.AsyncConnection, tables: ReadModelTables) -> list[Any]:
    out = []
    for table in tables.all:
        keys = [column for column in table.primary_key.columns]
        rows = (await conn.execute(sa.select(table).order_by(*keys))).all()
        out.append([tuple(row) for row in rows])
    return out


@contextlib.asynccontextmanager
async def scratch_tables(analytics: Any, *suffixes: str) -> AsyncIterator[list[ReadModelTables]]:
    """Generations of the read-model tables of a test's own, dropped after it."""
    generations = [read_model_tables(suffix) for suffix in suffixes]
    engine = analytics.service.runtime.engine
    async with engine.begin() as conn:
        for tables in generations:
            await conn.run_sync(lambda sync, t=tables: t.fact.metadata.create_all(sync))
    try:
        yield generations
    finally:
        async with engine.begin() as conn:
            for table in (t for tables in generations for t in tables.all):
                await conn.execute(sa.text(f"DROP TABLE IF EXISTS analytics.{table.name}"))


async def test_the_bulk_path_leaves_the_rows_of_the_row_at_a_time_path(analytics, kit) -> None:
    events = [event for n in range(40) for event in lifecycle(kit, n)]
    changes = [change for event in events for change in changes_for(event, uuid.uuid4())]
    batch = changes + changes  # a redelivered batch: every key changed twice over
    engine = analytics.service.runtime.engine
    async with scratch_tables(analytics, "_test_bulk", "_test_rows") as (bulk, one_by_one):
        for tables, bulk_rows in ((bulk, 1), (one_by_one, 10**9)):
            async with analytics.service.runtime.session_factory() as session:
                await ReadModelWriter(session, tables, bulk_rows=bulk_rows).apply(batch)
                await session.commit()
        async with engine.connect() as conn:
            written_in_bulk = await _rows(conn, bulk)
            written_one_by_one = await _rows(conn, one_by_one)
    assert [len(rows) for rows in written_in_bulk][:4] == [40, 80, 40, 20]
    assert written_in_bulk == written_one_by_one


async def _staged(analytics: Any, tables: ReadModelTables, per_event: list[list[Upsert]]) -> None:
    """What a consumer's batch does: every event's changes staged, written at commit."""
    async with analytics.service.runtime.session_factory() as session:
        writer = ReadModelWriter(session, tables)
        for changes in per_event:
            await writer.stage(changes)
        await writer.write_staged()
        await session.commit()


async def _each(analytics: Any, tables: ReadModelTables, per_event: list[list[Upsert]]) -> None:
    """One transaction per event."""
    for changes in per_event:
        async with analytics.service.runtime.session_factory() as session:
            await ReadModelWriter(session, tables).apply(changes)
            await session.commit()


async def test_a_staged_batch_leaves_the_rows_of_one_event_at_a_time(analytics, kit) -> None:
    # Over events that change a row in several shapes.
    events = [event for n in range(12) for event in lifecycle(kit, n)]
    per_event = [changes_for(event, uuid.uuid4()) for event in events]
    engine = analytics.service.runtime.engine
    async with scratch_tables(analytics, "_test_staged", "_test_each") as (staged, sequential):
        await _staged(analytics, staged, per_event)
        await _each(analytics, sequential, per_event)
        async with engine.connect() as conn:
            written_staged = await _rows(conn, staged)
            written_each = await _rows(conn, sequential)
    assert written_staged[0], "the fact table got rows"
    assert written_staged == written_each


async def test_a_batch_of_complaints_costs_statements_per_shape_not_per_event(
    analytics, kit
) -> None:
    # Received then classified, routed then levelled: every complaint's fact row changes in
    # four shapes in a row. The batch writes a statement per shape and round, however many
    # complaints it holds, and leaves the rows of one transaction per event.
    published = datetime(2025, 10, 9, 9, tzinfo=CST)
    engine = analytics.service.runtime.engine
    statements = 0

    def counted(*_: Any) -> None:
        nonlocal statements
        statements += 1

    def batch_of(complaints: int) -> list[list[Upsert]]:
        events = [
            event
            for n in range(complaints)
            for event in kit(contact_at=published + n * H).opened("product_quality", "quality")
        ]
        ids = [uuid.uuid4() for _ in events]
        return [
            [*changes_for(event, id_), *console_changes(event, id_, published)]
            for event, id_ in zip(events, ids, strict=True)
        ]

    used = []
    async with scratch_tables(analytics, "_test_few", "_test_many", "_test_one") as generations:
        few, many, one_by_one = generations
        for tables, complaints in ((few, 2), (many, 30)):
            per_event = batch_of(complaints)
            statements = 0
            sa.event.listen(engine.sync_engine, "before_cursor_execute", counted)
            try:
                await _staged(analytics, tables, per_event)
            finally:
                sa.event.remove(engine.sync_engine, "before_cursor_execute", counted)
            used.append(statements)
        await _each(analytics, one_by_one, per_event)
        async with engine.connect() as conn:
            written_staged = await _rows(conn, many)
            written_each = await _rows(conn, one_by_one)
    # Fact rows received, then classified, routed, levelled; the timeline's rows in one.
    assert used == [5, 5]
    assert written_staged[0], "the fact table got rows"
    assert written_staged == written_each
