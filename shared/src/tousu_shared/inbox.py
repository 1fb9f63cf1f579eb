"""Idempotent consumer: the inbox row and the handler's effect commit together, offsets after.

A redelivered event finds its inbox row and has no second effect. A failing event is retried
with backoff; after the configured attempts (at once for a malformed one or a
``PermanentFailure``) it goes to the topic's dead-letter topic with the reason in its headers,
and the consumer moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from prometheus_client import Counter, Histogram
from sqlalchemy import text
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from tousu_shared.contracts import Envelope, Event, decode
from tousu_shared.logging import log_context
from tousu_shared.settings import ServiceSettings
from tousu_shared.topics import dlq_topic
from tousu_shared.uow import SqlUnitOfWork

log = logging.getLogger(__name__)

CONSUMED = Counter(
    "tousu_events_consumed_total",
    "Events consumed, by outcome",
    ["service", "type", "outcome"],
)
HANDLE_SECONDS = Histogram("tousu_event_handle_seconds", "Handler time per event", ["service"])

# A handler changes state through the unit of work it is given and never commits: the
# consumer commits the inbox row, the effect and the events it published together.
Handler = Callable[[Any, Event, Envelope], Awaitable[None]]
UnitOfWorkFactory = Callable[[], SqlUnitOfWork]


class PermanentFailure(Exception):
    """An event that can never succeed; it goes to the dead-letter topic without retries."""


@dataclass(frozen=True)
class DeadLetter:
    """Why an event was dead-lettered."""

    reason: str
    attempts: int


class EventConsumer:
    """Consumes a service's topics and applies each event at most once."""

    def __init__(
        self,
        settings: ServiceSettings,
        uow_factory: UnitOfWorkFactory,
        handlers: Mapping[str, Handler],
        *,
        topics: Iterable[str],
        consumer_factory: Callable[[list[str], str], AIOKafkaConsumer],
        producer_factory: Callable[[], AIOKafkaProducer],
        name: str | None = None,
    ) -> None:
        self._settings = settings
        self._uow_factory = uow_factory
        self._handlers = dict(handlers)
        self._topics = [settings.topic(topic) for topic in topics]
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self.name = name or settings.consumer_group
        self._record = text(
            f"INSERT INTO {settings.db_schema}.inbox "
            "(consumer, event_id, event_type, topic, kafka_partition, kafka_offset, outcome) "
            "VALUES (:consumer, :event_id, :event_type, :topic, :partition, :offset, :outcome) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        )
        self._producer: AIOKafkaProducer | None = None
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until stopped."""
        stop = stop or asyncio.Event()
        consumer = self._consumer_factory(self._topics, self.name)
        await consumer.start()
        self._producer = self._producer_factory()
        await self._producer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                if not self.ready.is_set() and consumer.assignment():
                    self.ready.set()
                if not batches:
                    continue
                await asyncio.gather(
                    *(
                        self._consume_partition(consumer, tp, records)
                        for tp, records in batches.items()
                    )
                )
        finally:
            await consumer.stop()
            await self._producer.stop()

    async def _consume_partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord],
    ) -> None:
        for record in records:
            await self.process(record)
        try:
            await consumer.commit({tp: records[-1].offset + 1})
        except CommitFailedError:
            # The partition moved to another member; it re-reads from the last commit and the
            # inbox turns the repeats into no-ops.
            log.warning("offset commit lost in a rebalance", extra={"partition": tp.partition})

    async def process(self, record: ConsumerRecord) -> str:
        """Apply one Kafka record; returns the outcome."""
        try:
            envelope = Envelope.from_bytes(record.value)
        except ValueError as exc:
            return await self._dead_letter(record, None, DeadLetter(f"malformed: {exc}", 1))
        handler = self._handlers.get(envelope.type)
        if handler is None:
            CONSUMED.labels(self._settings.service_name, envelope.type, "ignored").inc()
            return "ignored"
        try:
            event = decode(envelope)
        except ValueError as exc:
            return await self._dead_letter(
                record,
                envelope,
                DeadLetter(f"contract violation: {exc}", 1),
            )
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._settings.consumer_max_attempts),
                wait=wait_exponential(
                    multiplier=self._settings.consumer_retry_backoff_ms / 1000,
                    max=10,
                ),
                retry=retry_if_not_exception_type(PermanentFailure),
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    outcome = await self._apply(record, envelope, event, handler)
        except Exception as exc:
            log.warning(
                "event failed after %d attempts",
                attempts,
                extra={"event_type": envelope.type, "event_id": str(envelope.id)},
                exc_info=True,
            )
            return await self._dead_letter(
                record,
                envelope,
                DeadLetter(f"{type(exc).__name__}: {exc}", attempts),
            )
        CONSUMED.labels(self._settings.service_name, envelope.type, outcome).inc()
        return outcome

    async def _apply(
        self,
        record: ConsumerRecord,
        envelope: Envelope,
        event: Event,
        handler: Handler,
    ) -> str:
        started = time.perf_counter()
        with log_context(
            correlation_id=envelope.correlation_id,
            causation_id=str(envelope.id),
            complaint_id=envelope.subject,
        ):
            async with self._uow_factory() as uow:
                first_time = (
                    await uow.session.execute(
                        self._record,
                        self._inbox_row(record, envelope, "applied"),
                    )
                ).first()
                if first_time is None:
                    return "duplicate"
                await handler(uow, event, envelope)
                await uow.commit()
        HANDLE_SECONDS.labels(self._settings.service_name).observe(time.perf_counter() - started)
        return "applied"

    def _inbox_row(self, record: ConsumerRecord, envelope: Envelope, outcome: str) -> dict:
        return {
            "consumer": self.name,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "outcome": outcome,
        }

    async def _dead_letter(
        self,
        record: ConsumerRecord,
        envelope: Envelope | None,
        dead: DeadLetter,
    ) -> str:
        headers = list(record.headers or ()) + [
            ("dlq.reason", dead.reason[:2000].encode()),
            ("dlq.attempts", str(dead.attempts).encode()),
            ("dlq.consumer", self.name.encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
        ]
        assert self._producer is not None, "dead-lettering needs a running consumer"
        await self._producer.send_and_wait(
            dlq_topic(record.topic),
            record.value,
            key=record.key,
            headers=headers,
        )
        if envelope is not None:
            # Remember it, so a redelivery is not dead-lettered a second time.
            async with self._uow_factory() as uow:
                await uow.session.execute(
                    self._record,
                    self._inbox_row(record, envelope, "dead_lettered"),
                )
                await uow.commit()
        type_label = envelope.type if envelope else "unparseable"
        CONSUMED.labels(self._settings.service_name, type_label, "dead_lettered").inc()
        return "dead_lettered"
