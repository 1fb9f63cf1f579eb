"""Issue #13, hole 1: credentials forged through Kafka.

The broker lets no one in without a SASL login, and a service's user writes only what the
registry says it produces. A credential event written to ``platform.credentials`` by anyone
but an issuer (unsigned, or signed with another key) gives a key that no service accepts,
and it is dead-lettered; a credential issued through a service's admin API works on every
service.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from prometheus_client import REGISTRY
from tousu_analytics.bootstrap import bootstrap as analytics_bootstrap
from tousu_analytics.settings import AnalyticsSettings
from tousu_feedback.bootstrap import bootstrap as feedback_bootstrap
from tousu_feedback.settings import FeedbackSettings
from tousu_intake.bootstrap import bootstrap as intake_bootstrap
from tousu_intake.settings import IntakeSettings
from tousu_routing.bootstrap import bootstrap as routing_bootstrap
from tousu_routing.settings import RoutingSettings
from tousu_shared.auth import (
    CredentialCreate,
    credential_issued_event,
    credential_revoked_event,
    new_api_key,
)
from tousu_shared.contracts import Event
from tousu_shared.contracts.platform import CREDENTIALS_SUBJECT, CredentialIssued
from tousu_shared.kafka import Connection, connection_as, create_producer, password_of
from tousu_shared.runtime import Service
from tousu_shared.signing import CredentialSigner
from tousu_shared.testing import (
    KAFKA_BOOTSTRAP,
    api_client,
    envelope_of,
    fresh_namespace,
    issue_credential,
    read_topic,
    running,
    test_settings,
    wait_for,
)
from tousu_sla.bootstrap import bootstrap as sla_bootstrap
from tousu_sla.settings import SlaSettings

pytestmark = [pytest.mark.integration, pytest.mark.security]

ADMIN_KEY = new_api_key()[1]
CREDENTIALS = "platform.credentials"


def as_user(user: str | None, password: str | None = None) -> Connection:
    """Client options logging in as ``user`` (with its real password unless one is given)."""
    if user is None:
        return {"bootstrap_servers": KAFKA_BOOTSTRAP}
    return connection_as(KAFKA_BOOTSTRAP, user, password or password_of(user))


async def produce(kafka: Connection, topic: str) -> None:
    producer = AIOKafkaProducer(**kafka, request_timeout_ms=5000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}")
    finally:
        await producer.stop()


async def consume(kafka: Connection, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic, **kafka, group_id=group, auto_offset_reset="earliest", request_timeout_ms=5000
    )
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=2000)
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    "kafka",
    [as_user(None), as_user("intake", "not its password"), as_user("nobody", "guess")],
    ids=["no login", "wrong password", "unknown user"],
)
async def test_a_client_that_does_not_log_in_can_neither_produce_nor_consume(kafka):
    namespace = await fresh_namespace("bus-")
    with pytest.raises(KafkaError):
        await produce(kafka, f"{namespace}complaint.events")
    with pytest.raises(KafkaError):
        await consume(kafka, f"{namespace}complaint.events", "tousu-intake-probe")


@pytest.mark.parametrize(
    ("user", "topic"),
    [
        ("intake", "case.events"),  # routing's
        ("feedback", "complaint.events"),  # intake's
        ("analytics", "feedback.outbound"),  # feedback's gateway channel (personal data)
        ("intake", "case.routed.quality"),  # routing's department topics
        ("feedback", "complaint.events.dlq"),  # it does not consume complaint.events
    ],
)
async def test_a_service_user_cannot_write_another_services_topic(user, topic):
    namespace = await fresh_namespace("bus-", extra=[("case.routed.quality", 1)])
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(as_user(user), f"{namespace}{topic}")


async def test_a_service_user_reads_only_what_it_consumes_and_writes_its_own_topics():
    namespace = await fresh_namespace("bus-")
    # Analytics does not consume the gateway channel: the customers' texts stay unread.
    with pytest.raises(TopicAuthorizationFailedError):
        await consume(as_user("analytics"), f"{namespace}feedback.outbound", "tousu-analytics-x")
    # What the registry allows works (else the refusals above would prove nothing).
    await produce(as_user("intake"), f"{namespace}complaint.events")
    await produce(as_user("routing"), f"{namespace}complaint.events.dlq")
    await consume(as_user("routing"), f"{namespace}complaint.events", "tousu-routing-probe")


def five_services(namespace: str) -> list[Service]:
    common = {
        "bootstrap_admin_key": ADMIN_KEY,
        "topic_namespace": namespace,
        "own_kafka_user": True,
    }
    return [
        intake_bootstrap(test_settings(IntakeSettings, **common)),
        routing_bootstrap(test_settings(RoutingSettings, **common)),
        sla_bootstrap(test_settings(SlaSettings, **common)),
        feedback_bootstrap(
            test_settings(FeedbackSettings, **common, intake_api_key=new_api_key()[1])
        ),
        analytics_bootstrap(test_settings(AnalyticsSettings, **common)),
    ]


@contextlib.asynccontextmanager
async def clients(services: list[Service]) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(api_client(service.app, ADMIN_KEY))
            for service in services
        ]
        await stack.enter_async_context(running(*services))
        yield https


def forged_admin(signature: str | None) -> tuple[CredentialIssued, str]:
    """An admin credential as an attacker would write it, with a key they know."""
    event, key = credential_issued_event(
        CredentialCreate(name="intruder", role="admin"), issued_by="admin:intruder"
    )
    return event.model_copy(update={"signature": signature}), key


async def publish(producer: AIOKafkaProducer, topic: str, event: Event) -> None:
    await producer.send_and_wait(
        topic, envelope_of(event).to_bytes(), key=str(CREDENTIALS_SUBJECT).encode()
    )


async def statuses(https: list[httpx.AsyncClient], key: str) -> list[int]:
    """What each service answers a credential-admin request made with ``key``."""
    headers = {"Authorization": f"Bearer {key}"}
    return [
        (await http.get("/v1/admin/credentials", headers=headers)).status_code for http in https
    ]


def refused(reason: str) -> float:
    """Forged issues refused so far, over the five services (the counter is per process)."""
    return sum(
        REGISTRY.get_sample_value(
            "tousu_credential_events_refused_total",
            {"service": service, "type": "CredentialIssued", "reason": reason},
        )
        or 0.0
        for service in ("intake", "routing", "sla-monitor", "feedback", "analytics")
    )


async def test_forged_credential_events_are_refused_by_every_service_and_dead_lettered():
    namespace = await fresh_namespace("bus-")
    services = five_services(namespace)
    topic = f"{namespace}{CREDENTIALS}"
    unsigned_before, bad_before = refused("unsigned"), refused("bad_signature")
    # Written with the intake service's own producer: a user allowed to write the topic.
    producer = create_producer(services[0].runtime.settings)
    await producer.start()
    try:
        async with clients(services) as https:
            unsigned, unsigned_key = forged_admin(None)
            await publish(producer, topic, unsigned)
            wrong_key, wrong_key_key = forged_admin(None)
            wrong_key = CredentialSigner("an attacker's own key, 32+ chars").sign(wrong_key)
            await publish(producer, topic, wrong_key)
            # A real signature copied from another event does not fit these fields either.
            genuine = services[0].runtime.credentials.sign(forged_admin(None)[0])
            copied, copied_key = forged_admin(genuine.signature)
            await publish(producer, topic, copied)

            # Issued properly after the forgeries, on the one partition of the topic: once
            # every service accepts it, every service has already seen the forged ones.
            issued = await issue_credential(https[1], "admin", "real-admin")
            await wait_for(lambda: _all(statuses(https, issued), 200))
            for key in (unsigned_key, wrong_key_key, copied_key):
                assert await statuses(https, key) == [401] * 5

            # A forged revocation does not revoke: a later real credential marks the moment
            # every service has seen it, and the first key still works everywhere.
            issued_id = issued.split("_")[1]
            await publish(producer, topic, credential_revoked_event(issued_id, revoked_by="x"))
            barrier = await issue_credential(https[3], "admin", "barrier")
            await wait_for(lambda: _all(statuses(https, barrier), 200))
            assert await statuses(https, issued) == [200] * 5
    finally:
        await producer.stop()

    letters = await read_topic(f"{topic}.dlq", until=lambda records: len(records) >= 20)
    reasons = sorted(dict(record.headers)["dlq.reason"].decode() for record in letters)
    assert reasons == sorted(
        ["credential event refused: unsigned"] * 10
        + ["credential event refused: bad_signature"] * 10
    )
    assert refused("unsigned") - unsigned_before == 5
    assert refused("bad_signature") - bad_before == 10


async def _all(pending, status: int) -> bool:  # type: ignore[no-untyped-def]
    return set(await pending) == {status}
