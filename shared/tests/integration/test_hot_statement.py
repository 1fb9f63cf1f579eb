"""The outbox insert on the transaction's own asyncpg connection (``HotStatement``, issue #12):
its rows commit and roll back with the unit of work, on a session or a connection alike,
and a value the database refuses fails as SQLAlchemy reports it (the API's 422 path)."""

from __future__ import annotations

import uuid

import pytest
from contract_events import customer_message_added as message
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from tousu_analytics.settings import AnalyticsSettings
from tousu_shared.contracts import Envelope
from tousu_shared.db import HotStatement
from tousu_shared.outbox import lane_of
from tousu_shared.runtime import Runtime
from tousu_shared.testing import test_settings, truncate_schema
from tousu_shared.unstorable import refused_value

pytestmark = pytest.mark.integration

INSERT = text(
    "INSERT INTO analytics.outbox (event_id, event_type, topic, message_key, lane, value) "
    "VALUES (:event_id, :event_type, :topic, :message_key, :lane, :value)"
)


@pytest.fixture
async def runtime():
    runtime = Runtime.build(test_settings(AnalyticsSettings))
    await truncate_schema(runtime.engine, "analytics")
    yield runtime
    await runtime.close()


async def outbox_rows(runtime: Runtime, key: uuid.UUID) -> list:
    async with runtime.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT event_id, event_type, topic, message_key, lane, value, created_at, "
                "sent_at FROM analytics.outbox WHERE message_key = :key ORDER BY id"
            ),
            {"key": str(key)},
        )
        return list(result)


def row(**overrides) -> dict:
    values = {
        "event_id": uuid.uuid4(),
        "event_type": "Test",
        "topic": "t",
        "message_key": "k",
        "lane": 1,
        "value": b"{}",
    }
    return {**values, **overrides}


async def test_a_unit_of_work_writes_its_events_in_order_or_none_of_them(runtime):
    complaint_id = uuid.uuid4()
    events = [message(complaint_id, n) for n in (1, 2, 3)]
    async with runtime.uow() as uow:
        for event in events:
            uow.publish(event)
        # Left without commit: the first statement of the transaction was the outbox insert.
    assert await outbox_rows(runtime, complaint_id) == []

    async with runtime.uow() as uow:
        for event in events:
            uow.publish(event)
        await uow.commit()
    rows = await outbox_rows(runtime, complaint_id)
    assert len(rows) == 3
    stored = [Envelope.from_bytes(bytes(r.value)) for r in rows]
    assert [e.data["message_id"] for e in stored] == ["1", "2", "3"]
    assert [r.event_id for r in rows] == [e.id for e in stored]
    assert {r.event_type for r in rows} == {"CustomerMessageAdded"}
    assert {r.topic for r in rows} == {runtime.settings.topic(events[0].topic)}
    assert {r.lane for r in rows} == {lane_of(str(complaint_id))}
    assert all(r.created_at is not None and r.sent_at is None for r in rows)


async def test_a_failing_unit_of_work_leaves_no_events(runtime):
    complaint_id = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with runtime.uow() as uow:
            uow.publish(message(complaint_id, 1))
            await uow._store(uow._messages, [])  # the rows are in the transaction ...
            raise RuntimeError("the use case fails before commit")  # ... and roll back
    assert await outbox_rows(runtime, complaint_id) == []


async def test_enqueue_on_a_connection_commits_and_rolls_back_with_it(runtime):
    kept, dropped, later = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with runtime.engine.begin() as conn:  # a transaction begun, no statement yet
        await runtime.outbox.enqueue(conn, message(kept, 1))
    async with runtime.engine.connect() as conn:  # no transaction: through SQLAlchemy
        await runtime.outbox.enqueue(conn, message(dropped, 1))
        await conn.rollback()
    async with runtime.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # SQLAlchemy began it; the hot path joins it
        await runtime.outbox.enqueue_many(conn, [(message(later, 1), None)])
        await conn.commit()
    assert len(await outbox_rows(runtime, kept)) == 1
    assert await outbox_rows(runtime, dropped) == []
    assert len(await outbox_rows(runtime, later)) == 1


@pytest.mark.parametrize(
    ("values", "refused"),
    [({"topic": "nul\x00topic"}, "nul"), ({"lane": 10**20}, "int16")],
    ids=["nul byte", "20-digit integer"],
)
async def test_a_refused_value_fails_as_sqlalchemy_reports_it(runtime, values, refused):
    rows = [row(), row(**values)]
    failures = []
    for run in (HotStatement(INSERT).execute_many, None):
        async with runtime.session_factory() as session, session.begin():
            await session.execute(text("SELECT 1"))
            with pytest.raises(DBAPIError) as failure:
                if run is None:  # SQLAlchemy's own executemany, for comparison
                    await session.execute(INSERT, rows)
                else:
                    await run(session, rows)
            await session.rollback()
        failures.append(failure.value)
    hot, plain = failures
    assert type(hot) is type(plain)
    assert refused_value(hot) == refused_value(plain) == refused
    assert "nul\x00topic" not in str(hot)  # parameters stay hidden
    async with runtime.engine.connect() as conn:
        count = await conn.execute(
            text("SELECT count(*) FROM analytics.outbox WHERE message_key = 'k'")
        )
        assert count.scalar_one() == 0  # the row before it went with the transaction


async def test_no_rows_is_nothing_to_do(runtime):
    async with runtime.session_factory() as session, session.begin():
        await HotStatement(INSERT).execute_many(session, [])


async def test_a_session_reused_for_another_transaction_runs_in_that_one(runtime):
    """The driver connection is looked up once per transaction: the next transaction of the
    same session (on whichever pooled connection it gets) does not reuse the last one's."""
    insert = HotStatement(INSERT)
    first, second, other = (row(message_key=str(uuid.uuid4())) for _ in range(3))
    async with runtime.session_factory() as session:
        async with session.begin():
            await insert.execute_many(session, [first])
            await session.rollback()
        async with runtime.session_factory() as beside, beside.begin():
            # Another session holds a connection meanwhile, so the pool may hand the first
            # session's next transaction a different one.
            await insert.execute_many(beside, [other])
            async with session.begin():
                await insert.execute_many(session, [second])
    counts = {}
    async with runtime.engine.connect() as conn:
        for name, values in (("first", first), ("second", second), ("other", other)):
            result = await conn.execute(
                text("SELECT count(*) FROM analytics.outbox WHERE message_key = :k"),
                {"k": values["message_key"]},
            )
            counts[name] = result.scalar_one()
    assert counts == {"first": 0, "second": 1, "other": 1}
