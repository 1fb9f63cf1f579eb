"""A consumer's batch locks and reads its cases once, writes them once, and publishes exactly
what applying its events one transaction at a time publishes (real Postgres)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event

pytestmark = pytest.mark.integration


@contextmanager
def statements_on(engine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends meanwhile."""
    with executions_on(engine) as executions:
        seen: list[str] = []
        yield seen
        seen.extend(statement for statement, _ in executions)


@contextmanager
def executions_on(engine) -> Iterator[list[tuple[str, bool]]]:
    """Every SQL statement the engine sends meanwhile, and whether it went as an executemany
    (which the driver executes once per parameter set)."""
    seen: list[tuple[str, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, executemany))

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)


async def apply_as_one_batch(sla, events) -> None:
    """What the inbox does with a chunk of one partition: one unit of work, the service's
    preparer with every new event, then each handler, one commit."""
    async with sla.service.uow() as uow:
        assert sla.service.prepare is not None
        await sla.service.prepare(uow, events)
        for item in events:
            envelope = sla.runtime.outbox.envelope(item)
            await sla.service.handlers[item.event_type](uow, item, envelope)
        await uow.commit()


async def published(sla, complaint_id: uuid.UUID) -> list[tuple[str, str | None, str | None]]:
    """(type, milestone, due time) of what the case published, in publication order."""
    async with sla.ctx.uow() as uow:
        rows = await uow.session.execute(
            sa.text(
                "SELECT event_type, milestone, envelope -> 'data' ->> 'due_at' AS due "
                "FROM sla_event_log WHERE complaint_id = :id ORDER BY id"
            ),
            {"id": complaint_id},
        )
        return [(row.event_type, row.milestone, row.due) for row in rows]


async def test_a_batch_publishes_what_one_transaction_per_event_does(sla, new_complaint):
    at = dt.datetime.now(dt.UTC)
    batched = [new_complaint() for _ in range(3)]
    alone = [new_complaint() for _ in range(3)]
    urgencies = ["immediate", "routine", "priority"]

    def lifecycle(complaint, urgency):
        return [complaint.received(at), complaint.classified(urgency)]

    await sla.apply(*[e for c, u in zip(alone, urgencies, strict=True) for e in lifecycle(c, u)])
    # Interleaved, as a partition would bring them: a case's events are not adjacent.
    first = [lifecycle(c, u) for c, u in zip(batched, urgencies, strict=True)]
    await apply_as_one_batch(sla, [events[0] for events in first] + [e[1] for e in first])

    for one, other in zip(batched, alone, strict=True):
        mine = await published(sla, one.complaint_id)
        assert mine, "the batch published nothing"
        assert mine == await published(sla, other.complaint_id)
    async with sla.ctx.uow() as uow:
        states = [
            await uow.sla.case_state(c.complaint_id, for_update=False) for c in batched + alone
        ]
    assert [s["urgency"] for s in states] == urgencies * 2


async def test_a_batch_reads_and_writes_each_table_a_fixed_number_of_times(sla, new_complaint):
    complaints = [new_complaint() for _ in range(5)]
    await sla.apply(*[c.received() for c in complaints[:2]])  # two cases exist already
    events = [c.received() for c in complaints[2:]]
    events += [c.classified("priority") for c in complaints for _ in range(2)]
    with statements_on(sla.runtime.engine) as seen:
        await apply_as_one_batch(sla, events)
    case_reads = [s for s in seen if re.match(r"SELECT\s.*\sFROM\s(\w+\.)?sla_case\b", s, re.S)]
    case_writes = [s for s in seen if re.match(r"INSERT INTO (\w+\.)?sla_case\b", s)]
    milestone_writes = [s for s in seen if re.match(r"INSERT INTO (\w+\.)?sla_milestone\b", s)]
    # 13 events on 5 cases: one read of the existing cases, one insert of the 3 new ones and
    # one read of those, then one upsert of all cases and one of all their milestones.
    assert len(case_reads) == 2, case_reads
    assert len(case_writes) == 2, case_writes
    assert len(milestone_writes) == 1, milestone_writes
    async with sla.ctx.uow() as uow:
        for complaint in complaints:
            state = await uow.sla.case_state(complaint.complaint_id, for_update=False)
            assert state is not None and state["urgency"] == "priority"


async def test_a_batch_writes_each_table_in_one_execution_not_one_per_row(sla, new_complaint):
    complaints = [new_complaint() for _ in range(4)]
    await sla.apply(complaints[0].received())  # one case exists already
    events = [c.received() for c in complaints[1:]]
    events += [c.classified(urgency) for c in complaints for urgency in ("immediate", "routine")]
    with executions_on(sla.runtime.engine) as seen:
        await apply_as_one_batch(sla, events)
    for table in ("sla_case", "sla_milestone", "sla_event_log"):
        writes = [(s, many) for s, many in seen if re.match(rf"INSERT INTO (\w+\.)?{table}\b", s)]
        # The new cases are inserted once, then every case is upserted once.
        assert len(writes) == (2 if table == "sla_case" else 1), (table, writes)
        assert not any(many for _, many in writes), f"{table} written one row at a time"
    async with sla.ctx.uow() as uow:
        for complaint in complaints:
            state = await uow.sla.case_state(complaint.complaint_id, for_update=False)
            assert state is not None and state["urgency"] == "routine"
    logged = await sla.scalar(
        "SELECT count(*) FROM sla_event_log WHERE complaint_id = ANY(:ids)",
        ids=[c.complaint_id for c in complaints],
    )
    assert logged > len(complaints)  # several events per case, all in the log
