"""A service's replica of routing's department directory on the real Postgres and Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from tousu_feedback.bootstrap import bootstrap
from tousu_feedback.settings import FeedbackSettings
from tousu_shared.contracts import Event
from tousu_shared.contracts.platform import department_declared, department_retired
from tousu_shared.departments import DepartmentDirectory
from tousu_shared.runtime import Service
from tousu_shared.testing import (
    KAFKA_ADMIN,
    envelope_of,
    fresh_namespace,
    running,
    test_settings,
    truncate_schema,
    wait_for,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def feedback(kafka_topics: str) -> AsyncIterator[Service]:
    """Feedback on an empty schema and a topic namespace of its own."""
    namespace = await fresh_namespace("dir-")
    service = bootstrap(test_settings(FeedbackSettings, topic_namespace=namespace))
    await truncate_schema(service.runtime.engine, "feedback")
    try:
        yield service
    finally:
        await truncate_schema(service.runtime.engine, "feedback")
        await service.runtime.close()


async def apply(service: Service, *events: Event) -> None:
    """Each event through the directory's inbox handler, one transaction each."""
    directory = service.runtime.departments
    assert isinstance(directory, DepartmentDirectory)
    for event in events:
        async with service.uow() as uow:
            await directory.apply(uow, event, envelope_of(event))
            await uow.commit()


async def rows(service: Service) -> list[tuple]:
    async with service.runtime.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT code, name, retired FROM feedback.department_directory ORDER BY code")
        )
        return [tuple(row) for row in result]


async def _knows(service: Service, code: str) -> bool:
    return code in await service.runtime.departments.codes()


async def test_applying_is_idempotent_and_an_older_state_never_wins(feedback):
    directory = feedback.runtime.departments
    declared = department_declared("quality", "Quality desk", T0)
    await apply(feedback, declared, declared)  # redelivered
    assert "quality" in await directory.codes()
    assert await directory.codes() == ["quality"]

    retired = department_retired("quality", T0 + timedelta(minutes=5))
    await apply(feedback, retired, declared, retired)  # the old declaration replayed between
    assert "quality" not in await directory.codes()
    assert await directory.codes() == []
    assert await rows(feedback) == [("quality", "Quality desk", True)]

    # Created again under the same code later, renamed; an old name arriving late stays old.
    await apply(
        feedback,
        department_declared("quality", "Quality", T0 + timedelta(minutes=10)),
        department_declared("quality", "Quality desk", T0),
    )
    assert await rows(feedback) == [("quality", "Quality", False)]
    # A retirement of a department this replica never saw is kept, so a late declaration
    # older than it does not bring the department into existence.
    await apply(
        feedback,
        department_retired("billing", T0 + timedelta(minutes=1)),
        department_declared("billing", "Billing", T0),
    )
    assert await directory.codes() == ["quality"]


async def test_the_consumer_applies_routings_events_once_through_the_inbox(feedback):
    declared = envelope_of(department_declared("logistics", "Logistics", T0))
    retired = envelope_of(department_retired("logistics", T0 + timedelta(seconds=1)))
    topic = feedback.runtime.settings.topic("platform.departments")
    producer = AIOKafkaProducer(**KAFKA_ADMIN)
    await producer.start()
    try:
        async with running(feedback):
            for envelope in (declared, declared):  # the same event twice, as after a retry
                await producer.send_and_wait(
                    topic, envelope.to_bytes(), key=envelope.subject.encode()
                )
            await wait_for(lambda: _knows(feedback, "logistics"))
            await producer.send_and_wait(topic, retired.to_bytes(), key=retired.subject.encode())

            async def retired_once() -> bool:
                async with feedback.runtime.engine.connect() as conn:
                    applied = await conn.scalar(
                        text(
                            "SELECT count(*) FROM feedback.inbox WHERE topic = :topic "
                            "AND outcome = 'applied'"
                        ),
                        {"topic": topic},
                    )
                return applied == 2 and not await _knows(feedback, "logistics")

            await wait_for(retired_once)
    finally:
        await producer.stop()
    assert await rows(feedback) == [("logistics", "Logistics", True)]
