"""Rebuild the read model from offset zero beside the live one, then swap it in.

1. Create an empty shadow generation of the read-model tables (``fact__shadow`` …).
2. Consume every topic from the beginning in a consumer group of its own, through the same
   handlers and inbox, into the shadow tables.
3. Once the group has caught up with the end offsets, lock the live tables (the live
   consumer waits), catch up with whatever arrived meanwhile, and rename the shadow tables
   into place in the same transaction. The old generation is dropped.

The live consumer may re-apply, after the swap, events the rebuild already applied; the
projection's merges make that a no-op (``domain/projection.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from tousu_shared.inbox import EventConsumer
from tousu_shared.kafka import Connection, connection
from tousu_shared.runtime import Service

from tousu_analytics.adapters.orm import (
    LIVE,
    READ_MODEL_NAMES,
    RETIRED_SUFFIX,
    SCHEMA,
    SHADOW_SUFFIX,
    read_model_tables,
)
from tousu_analytics.service_layer.unit_of_work import analytics_uow_factory

log = logging.getLogger(__name__)
SHADOW = read_model_tables(SHADOW_SUFFIX)


@dataclass(frozen=True)
class RebuildResult:
    consumer_group: str
    complaints: int
    events_applied: int


async def _end_offsets(kafka: Connection, topics: Sequence[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**kafka, group_id=None, isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh call
    return consumer.partitions_for_topic(topic) or set()


async def _caught_up(kafka: Connection, group: str, ends: dict[TopicPartition, int]) -> bool:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return all(
        end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items()
    )


async def _wait_caught_up(
    kafka: Connection, group: str, ends: dict[TopicPartition, int], failed: asyncio.Task[None]
) -> None:
    while not await _caught_up(kafka, group, ends):
        if failed.done():
            failed.result()  # raises the consumer's error
            raise RuntimeError("the rebuild consumer stopped before it caught up")
        await asyncio.sleep(0.2)


async def _create_shadow(conn: AsyncConnection) -> None:
    for name in READ_MODEL_NAMES:
        await conn.execute(text(f"DROP TABLE IF EXISTS {SCHEMA}.{name}{SHADOW_SUFFIX}"))
    await conn.run_sync(lambda sync: SHADOW.fact.metadata.create_all(sync))


async def _lock_live(conn: AsyncConnection) -> None:
    live = ", ".join(f"{SCHEMA}.{name}" for name in READ_MODEL_NAMES)
    await conn.execute(text(f"LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE"))


async def _rename_into_place(conn: AsyncConnection) -> None:
    for name in READ_MODEL_NAMES:
        await conn.execute(text(f"ALTER TABLE {SCHEMA}.{name} RENAME TO {name}{RETIRED_SUFFIX}"))
        await conn.execute(text(f"ALTER TABLE {SCHEMA}.{name}{SHADOW_SUFFIX} RENAME TO {name}"))
        await conn.execute(text(f"DROP TABLE {SCHEMA}.{name}{RETIRED_SUFFIX}"))
    # The shadow's indexes (and primary keys) carry its suffix; give them the live names.
    indexes = (
        (
            await conn.execute(
                text(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = :schema "
                    "AND indexname LIKE :pattern"
                ),
                {"schema": SCHEMA, "pattern": f"%{SHADOW_SUFFIX}%"},
            )
        )
        .scalars()
        .all()
    )
    for index in indexes:
        await conn.execute(
            text(f'ALTER INDEX {SCHEMA}."{index}" RENAME TO "{index.replace(SHADOW_SUFFIX, "")}"')
        )


async def rebuild(service: Service) -> RebuildResult:
    """Rebuild the read model from offset zero and swap it in; returns what it counted."""
    runtime = service.runtime
    settings = runtime.settings
    group = f"{settings.consumer_group}-rebuild-{uuid.uuid4().hex[:8]}"
    async with runtime.engine.begin() as conn:
        await _create_shadow(conn)
    consumer = EventConsumer(
        settings,
        analytics_uow_factory(runtime.session_factory, runtime.outbox, runtime.audit, SHADOW),
        service.handlers,
        topics=service.consumed_topics,
        consumer_factory=runtime.consumer,
        producer_factory=runtime.producer,
        name=group,
    )
    topics = [settings.topic(topic) for topic in service.consumed_topics]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await _wait_caught_up(
            connection(settings),
            group,
            await _end_offsets(connection(settings), topics),
            task,
        )
        async with runtime.engine.begin() as conn:
            await _lock_live(conn)
            # Under the lock nothing new reaches the live tables; catch up with the rest.
            await _wait_caught_up(
                connection(settings),
                group,
                await _end_offsets(connection(settings), topics),
                task,
            )
            await _rename_into_place(conn)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
    async with runtime.engine.begin() as conn:
        # The rebuild's inbox rows served their purpose (no double effect while it ran).
        applied = await conn.scalar(
            text(
                f"WITH gone AS (DELETE FROM {SCHEMA}.inbox WHERE consumer = :group "
                "RETURNING outcome) SELECT count(*) FILTER (WHERE outcome = 'applied') "
                "FROM gone"
            ),
            {"group": group},
        )
        complaints = await conn.scalar(text(f"SELECT count(*) FROM {SCHEMA}.{LIVE.fact.name}"))
    log.info("read model rebuilt", extra={"group": group, "events": applied})
    return RebuildResult(group, int(complaints or 0), int(applied or 0))
