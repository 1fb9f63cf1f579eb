"""Kafka clients configured for 'nothing lost': acks=all, idempotence, manual offset commits.

Every client authenticates with SASL SCRAM-SHA-512 (deploy/infra.sh sets the broker up so):
a service as its own user (``TOUSU_KAFKA_USERNAME`` / ``TOUSU_KAFKA_PASSWORD``), operator
tools and tests as the admin user, whose password they read from the file
``TOUSU_KAFKA_PASSWORDS_FILE`` names (infra.sh writes it, mode 600). Passwords are never
logged: settings hold them as ``SecretStr``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tousu_shared.settings import ServiceSettings
from tousu_shared.topics import TopicLayout

_TOPIC_ALREADY_EXISTS = 36
SASL_MECHANISM = "SCRAM-SHA-512"
ADMIN_USER = "admin"
# Options for a client: where the broker is and how to log in (see ``connection``).
Connection = dict[str, Any]


class TopicCreationFailed(RuntimeError):
    """The broker refused to create a topic."""


def connection_as(bootstrap: str, username: str | None, password: str | None) -> Connection:
    """aiokafka options reaching ``bootstrap`` as a SASL user (PLAINTEXT without one)."""
    if not username:
        return {"bootstrap_servers": bootstrap}
    return {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": SASL_MECHANISM,
        "sasl_plain_username": username,
        "sasl_plain_password": password or "",
    }


def connection(settings: ServiceSettings) -> Connection:
    """aiokafka options for a client acting as the service its settings describe."""
    password = settings.kafka_password.get_secret_value() if settings.kafka_password else None
    return connection_as(settings.kafka_bootstrap, settings.kafka_username, password)


def password_of(user: str, path: str | Path | None = None) -> str | None:
    """A user's password: ``TOUSU_KAFKA_PASSWORD_<USER>`` (docker-compose), else its line in
    the password file infra.sh writes (``user=password`` lines); None if neither has one."""
    named = os.environ.get(f"TOUSU_KAFKA_PASSWORD_{user.upper().replace('-', '_')}")
    if named:
        return named
    path = path or os.environ.get("TOUSU_KAFKA_PASSWORDS_FILE")
    if not path or not Path(path).is_file():
        return None
    for line in Path(path).read_text().splitlines():
        name, _, password = line.partition("=")
        if name == user and password:
            return password
    return None


def admin_connection(bootstrap: str) -> Connection:
    """aiokafka options for operator tools and tests: the admin user when the password file
    holds one (PLAINTEXT otherwise, for a broker without SASL)."""
    password = password_of(ADMIN_USER)
    return connection_as(bootstrap, ADMIN_USER if password else None, password)


def create_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """An idempotent producer waiting for all in-sync replicas (aiokafka defaults to neither)."""
    return AIOKafkaProducer(
        **connection(settings),
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
        **connection(settings),
        client_id=f"tousu-{settings.service_name}",
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.consumer_batch_size,
        # Long polls: data still comes at once; an idle consumer asks every this often.
        fetch_max_wait_ms=settings.consumer_fetch_wait_ms,
        # How long aiokafka's fetch routine sleeps when nothing wakes it (200 ms by default,
        # five wake-ups a second of an idle process, issue #12). A fetch completing, records
        # consumed, a rebalance, a resumed partition and a metadata update all wake it at
        # once, so the timer only ends the wait of a fetch in flight, which the broker
        # answers after the fetch wait anyway. At most a second, so that a wake-up missed all
        # the same costs a second, not a whole long poll (a test with a 30 s fetch wait
        # sometimes saw a busy partition's next record only after its 15 s patience).
        consumer_timeout_ms=min(settings.consumer_fetch_wait_ms, 1000),
        session_timeout_ms=10000,
        heartbeat_interval_ms=3000,
    )


def new_topics(
    topics: Iterable[tuple[str, int]],
    *,
    compacted: Iterable[str] = (),
    layout: TopicLayout | None = None,
) -> list[NewTopic]:
    """The creation requests for ``topics`` (name, registered partitions), laid out as
    ``layout`` says (default: ``TOUSU_TOPIC_*`` from the environment)."""
    layout = layout or TopicLayout()
    compact = set(compacted)
    return [
        NewTopic(
            name=name,
            num_partitions=layout.partitions(partitions),
            replication_factor=layout.replication_factor,
            topic_configs=layout.configs(compacted=name in compact),
        )
        for name, partitions in dict(topics).items()
    ]


async def ensure_topics(
    kafka: Connection,
    topics: Iterable[tuple[str, int]],
    *,
    compacted: Iterable[str] = (),
    layout: TopicLayout | None = None,
) -> list[str]:
    """Create the topics that do not exist yet (those named in ``compacted`` with
    ``cleanup.policy=compact``), laid out as in ``new_topics``; returns the names it
    created."""
    requests = new_topics(topics, compacted=compacted, layout=layout)
    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [request for request in requests if request.name not in existing]
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
