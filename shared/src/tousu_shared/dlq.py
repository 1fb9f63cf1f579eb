"""Dead-letter replay: put a service's dead letters back on their topics once the cause is fixed.

``python -m tousu_<service> dlq-replay`` reads the dead-letter topics of everything the
service consumes, takes the letters its own consumer wrote (the ``dlq.consumer`` header),
forgets the inbox row that marked each event dead-lettered, and publishes the original
record again, unchanged, to the topic it came from. Other consumers of that topic already
applied the event and see its id again as a duplicate; this consumer applies it once.

Replaying is idempotent: progress is kept as the offsets of the replay's own consumer group,
committed only after a letter was published again, so a second run finds nothing new, and a
run cut short repeats at most the letters it had not committed (a repeat is a duplicate the
inbox drops).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text

from tousu_shared.contracts import Envelope
from tousu_shared.kafka import connection
from tousu_shared.runtime import Service
from tousu_shared.topics import dlq_topic

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    """What one replay run did."""

    replayed: list[str] = field(default_factory=list)  # event ids
    skipped_other_consumer: int = 0
    unreadable: int = 0

    def summary(self) -> str:
        """One line for the operator."""
        return (
            f"replayed {len(self.replayed)}, other consumers' letters left "
            f"{self.skipped_other_consumer}, unreadable (kept) {self.unreadable}"
        )


async def replay_dead_letters(service: Service) -> ReplayReport:
    """Replay every dead letter of ``service``'s consumer not replayed before."""
    runtime, settings = service.runtime, service.runtime.settings
    consumer_name = settings.consumer_group
    topics = [dlq_topic(settings.topic(name)) for name in service.topics]
    reader = AIOKafkaConsumer(
        **connection(settings),
        group_id=f"{consumer_name}-dlq-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = runtime.producer()
    forget = text(
        f"DELETE FROM {settings.db_schema}.inbox "
        "WHERE consumer = :consumer AND event_id = :event_id AND outcome = 'dead_lettered'"
    )
    report = ReplayReport()
    await reader.start()
    await producer.start()
    try:
        # Assigned by hand (no group rebalance to wait for), read up to today's end.
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(await producer.partitions_for(topic))
        ]
        reader.assign(partitions)
        end = await reader.end_offsets(partitions)
        while any([await reader.position(tp) < end[tp] for tp in partitions]):
            batches = await reader.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get("dlq.consumer", b"").decode() != consumer_name:
                        report.skipped_other_consumer += 1
                        continue
                    try:
                        envelope = Envelope.from_bytes(record.value)
                    except ValueError:
                        # A malformed record would only be dead-lettered again.
                        report.unreadable += 1
                        continue
                    async with runtime.session_factory() as session, session.begin():
                        await session.execute(
                            forget,
                            {"consumer": consumer_name, "event_id": envelope.id},
                        )
                    original = [(k, v) for k, v in record.headers or () if not k.startswith("dlq.")]
                    await producer.send_and_wait(
                        headers["dlq.topic"].decode(),
                        record.value,
                        key=record.key,
                        headers=original,
                    )
                    report.replayed.append(str(envelope.id))
                    await reader.commit({tp: record.offset + 1})
    finally:
        await producer.stop()
        await reader.stop()
    log.info("dead-letter replay: %s", report.summary())
    return report
