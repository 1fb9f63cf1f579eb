"""A consumed batch opens its cases with what it read once (see service_layer/openings): the
same least-loaded assignments as one transaction per event, statements that do not grow
with the batch, and no complaint facts left behind (real Postgres, no consumer running)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from tousu_shared.contracts import Event

pytestmark = pytest.mark.integration


@pytest.fixture
async def quality(still_kit):
    await still_kit.quality()
    await still_kit.rule("quality-products", "quality", category=["product_quality"])


@contextmanager
def statements_on(engine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends meanwhile."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)


async def apply_together(kit, events: list[Event]) -> None:
    """What the inbox does with a chunk of one partition: one unit of work, the service's
    preparer with every new event, then each handler, one commit."""
    service = kit.service
    async with service.uow() as uow:
        await service.prepare(uow, events)
        for item in events:
            await service.handlers[item.event_type](uow, item, kit.envelope_of(item))
        await uow.commit()


async def apply_alone(kit, events: list[Event]) -> None:
    """One transaction per event, as the consumer's one-by-one path applies them."""
    for item in events:
        async with kit.service.uow() as uow:
            await kit.service.handlers[item.event_type](uow, item, kit.envelope_of(item))
            await uow.commit()


def complaints(kit, count: int) -> tuple[list[uuid.UUID], list[Event]]:
    """``count`` complaints' received and classified events, interleaved as a partition
    brings them."""
    ids = [uuid.uuid4() for _ in range(count)]
    events: list[Event] = []
    for complaint_id in ids:
        events += [kit.received(complaint_id), kit.classified(complaint_id)]
    return ids, events


async def scalars(kit, query: str, **params) -> list:
    async with kit.service.runtime.session_factory() as session:
        return list((await session.execute(sa.text(query), params)).scalars())


async def assignees(kit, ids: list[uuid.UUID]) -> list[str]:
    return await scalars(
        kit,
        "SELECT assignee_id FROM routing.routed_case WHERE complaint_id = ANY(:ids) "
        "ORDER BY assignee_id",
        ids=ids,
    )


async def test_a_batch_assigns_as_one_transaction_per_event_does(still_kit, quality):
    batched, events = complaints(still_kit, 6)
    await apply_together(still_kit, events)
    alone, events = complaints(still_kit, 4)
    await apply_alone(still_kit, events)

    # Each case counts in the loads the next one is assigned by, in the batch as alone.
    assert await assignees(still_kit, batched) == ["qa-1"] * 3 + ["qa-2"] * 3
    assert await assignees(still_kit, alone) == ["qa-1"] * 2 + ["qa-2"] * 2
    assert await scalars(still_kit, "SELECT complaint_id FROM routing.complaint_fact") == []


async def test_a_batch_reads_what_its_cases_need_once(still_kit, quality):
    engine = still_kit.service.runtime.engine
    reads: list[list[str]] = []
    for count in (2, 6):
        _, events = complaints(still_kit, count)
        with statements_on(engine) as seen:
            await apply_together(still_kit, events)
        # (The outbox's commit signal, a pg_notify on its own schedule, is no read.)
        reads.append([s for s in seen if re.match(r"\s*SELECT", s) and "pg_notify" not in s])
        # Received and routed in the same batch: the facts are never written.
        assert not [s for s in seen if "complaint_fact" in s and not s.startswith("SELECT")]

    assert len(reads[1]) == len(reads[0])


async def test_a_batch_routes_complaints_received_before_it(still_kit, quality):
    ids, events = complaints(still_kit, 3)
    await apply_alone(still_kit, events[0::2])  # received, facts kept
    assert len(await scalars(still_kit, "SELECT complaint_id FROM routing.complaint_fact")) == 3

    # Classified, then a late copy of a received complaint that has its case by then.
    await apply_together(still_kit, [*events[1::2], still_kit.received(ids[0])])

    assert await assignees(still_kit, ids) == ["qa-1", "qa-1", "qa-2"]
    assert await scalars(still_kit, "SELECT complaint_id FROM routing.complaint_fact") == []
