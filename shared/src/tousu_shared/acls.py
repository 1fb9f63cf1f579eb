"""The broker's ACLs, derived from the topic registry: who may write, read and create what.

The broker allows nothing without an ACL (``allow.everyone.if.no.acl.found=false``) and its
admin user is the only super user. Each service's SASL user (named like the service) may:

- write (and create) the topics it produces, the department topics for routing, and
  ``platform.credentials`` for every service, since each one issues credentials (what they
  write there is only accepted when signed, see ``tousu_shared.signing``);
- read the topics it consumes, and write and read their dead-letter topics (a consumer
  dead-letters what it cannot apply; its ``dlq-replay`` reads them back);
- use consumer groups named ``tousu-<service>…`` (its group, tests' suffixed groups, replay);
- see every topic's metadata under the namespace (a service checks at start that the
  registry's topics exist, and names alone tell nothing).

aiokafka has no ACL API, so the ACLs are created with kafka-python's ``KafkaAdminClient``
(``create_acls`` / ``describe_acls``), a maintained client speaking the same protocol; its
calls are synchronous and run in a thread. Kafka's own ``AclCommand`` would start a JVM per
namespace, which tests create by the dozen.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from tousu_shared.kafka import Connection
from tousu_shared.topics import DEPARTMENT_TOPIC_PREFIX, TOPICS, dlq_topic

ANY_PRODUCER = "any"
SERVICES: tuple[str, ...] = tuple(sorted({spec.producer for spec in TOPICS} - {ANY_PRODUCER}))
_VISIBLE_SECONDS = 15.0

Operation = str  # an ACLOperation member name: READ, WRITE, CREATE, DESCRIBE


@dataclass(frozen=True)
class Grant:
    """One allowed operation of one service's user on a topic or group (literal or prefix)."""

    service: str
    resource: str  # "topic" or "group"
    name: str
    operation: Operation
    prefixed: bool = False


def writers_of(producer: str) -> tuple[str, ...]:
    """The services whose users may write a topic the registry says ``producer`` produces."""
    return SERVICES if producer == ANY_PRODUCER else (producer,)


def service_grants(namespace: str) -> list[Grant]:
    """Every grant the services need on the topics of one namespace (and their groups)."""
    grants: list[Grant] = []
    for spec in TOPICS:
        topic = f"{namespace}{spec.name}"
        for service in writers_of(spec.producer):
            grants += [Grant(service, "topic", topic, op) for op in ("WRITE", "CREATE")]
        for service in (c for c in spec.consumers if c in SERVICES):
            grants.append(Grant(service, "topic", topic, "READ"))
            dead = dlq_topic(topic)
            grants += [Grant(service, "topic", dead, op) for op in ("WRITE", "READ", "CREATE")]
    department_topics = f"{namespace}{DEPARTMENT_TOPIC_PREFIX}"
    grants += [
        Grant("routing", "topic", department_topics, op, prefixed=True)
        for op in ("WRITE", "CREATE")
    ]
    for service in SERVICES:
        everything = (namespace, True) if namespace else ("*", False)
        grants.append(Grant(service, "topic", everything[0], "DESCRIBE", prefixed=everything[1]))
        grants.append(Grant(service, "group", f"tousu-{service}", "READ", prefixed=True))
    return list(dict.fromkeys(grants))


def _acl(grant: Grant) -> ACL:
    return ACL(
        principal=f"User:{grant.service}",
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP,
            grant.name,
            ACLResourcePatternType.PREFIXED if grant.prefixed else ACLResourcePatternType.LITERAL,
        ),
    )


def _visible(admin: KafkaAdminClient, acl: ACL) -> bool:
    pattern = acl.resource_pattern
    found, _ = admin.describe_acls(
        ACLFilter(
            principal=acl.principal,
            host="*",
            operation=acl.operation,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(
                pattern.resource_type, pattern.resource_name, pattern.pattern_type
            ),
        )
    )
    return bool(found)


def _create(kafka: Connection, acls: list[ACL]) -> None:
    admin = KafkaAdminClient(**kafka, client_id="tousu-acls")
    try:
        result = admin.create_acls(acls)
        if result["failed"]:
            raise RuntimeError(f"the broker refused ACLs: {result['failed'][:3]}")
        # Created through the controller; wait until the broker's authorizer has them too,
        # so a client starting right after is not refused (they come in one batch).
        deadline = time.monotonic() + _VISIBLE_SECONDS
        while not _visible(admin, acls[-1]):
            if time.monotonic() > deadline:
                raise RuntimeError("ACLs created but not visible on the broker")
            time.sleep(0.05)
    finally:
        admin.close()


async def grant_service_acls(kafka: Connection, namespace: str) -> int:
    """Create (idempotently) the services' ACLs on one topic namespace, as the admin user
    ``kafka`` logs in as; returns how many bindings there are."""
    acls = [_acl(grant) for grant in service_grants(namespace)]
    await asyncio.to_thread(_create, kafka, acls)
    return len(acls)
