"""Kafka clients configured for 'nothing lost': acks=all, idempotence, manual offset commits."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tousu_shared.settings import ServiceSettings

_TOPIC_ALREADY_EXISTS = 36


class TopicCreationFailed(RuntimeError):
    """The broker refused to create a topic."""


def create_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """An idempotent producer waiting for all in-sync replicas (aiokafka defaults to neither)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"tousu-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
    )


def create_consumer(
    settings: ServiceSettings, topics: Iterable[str], group: str
) -> AIOKafkaConsumer:
    """A consumer that never auto-commits: offsets are committed after the effect is stored."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"tousu-{settings.service_name}",
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.consumer_batch_size,
        # Long polls: an idle consumer asks twice a second, and data still comes at once.
        fetch_max_wait_ms=500,
        session_timeout_ms=10000,
        heartbeat_interval_ms=3000,
    )


async def ensure_topics(bootstrap: str, topics: Iterable[tuple[str, int]]) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created."""
    wanted = dict(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=partitions, replication_factor=1)
            for name, partitions in wanted.items()
            if name not in existing
        ]
        if not missing:
            return []
        response = await admin.create_topics(missing, timeout_ms=15000)
        created = []
        for topic, code, *message in response.topic_errors:
            if code == 0:
                created.append(topic)
            elif code != _TOPIC_ALREADY_EXISTS:
                raise TopicCreationFailed(f"{topic}: error {code} {message}")
        return created
    finally:
        await admin.close()
