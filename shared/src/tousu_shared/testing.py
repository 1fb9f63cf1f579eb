"""Pytest plugin for tests against the real broker and database.

Every test run gets its own topic namespace and consumer groups, and tests truncate the
tables they use, so runs pass in any order and twice in a row.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import importlib
import os
import re
import secrets
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tousu_shared.acls import grant_service_acls
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.platform import department_declared
from tousu_shared.departments import DepartmentDirectory
from tousu_shared.kafka import (
    ADMIN_USER,
    admin_connection,
    ensure_topics,
    password_of,
)
from tousu_shared.runtime import Runtime, Service
from tousu_shared.settings import ServiceSettings
from tousu_shared.topics import all_topic_names, compacted_topic_names

S = TypeVar("S", bound=ServiceSettings)

RUN_ID = uuid.uuid4().hex[:8]
# One credential signing key for every service of a test run, as one deployment shares one.
CREDENTIAL_SIGNING_KEY = secrets.token_hex(32)
TOPIC_NAMESPACE = f"test-{RUN_ID}."
# Each running test session leaves its pid here under its run id (machine-wide, so runs from
# other checkouts on this broker count too): a namespace whose run has no live pid was left
# by an interrupted run and is deleted at the next session's start.
RUNS_DIR = Path(tempfile.gettempdir()) / "tousu-test-runs"
KAFKA_BOOTSTRAP = os.environ.get(
    "TOUSU_KAFKA_BOOTSTRAP",
    ServiceSettings.model_fields["kafka_bootstrap"].default,
)
# Tools and tests act as the broker's admin user; each service under test as its own user.
KAFKA_ADMIN = admin_connection(KAFKA_BOOTSTRAP)
KEEP_TABLES = {"alembic_version", "outbox_lane"}
AUDIT_TABLE = "audit_log"
# Random keys of this run for the services that encrypt (intake refuses to start without keys
# and no key is in the code); services without such settings ignore them.
TEST_KEYS: dict[str, Any] = {
    "encryption_keys": {f"test-{RUN_ID}": base64.b64encode(secrets.token_bytes(32)).decode()},
    "blind_index_key": base64.b64encode(secrets.token_bytes(32)).decode(),
}


# Every service by the schema it owns: its package and its settings class, imported on demand
# (shared depends on no service).
SERVICES: dict[str, tuple[str, str]] = {
    "intake": ("tousu_intake", "IntakeSettings"),
    "routing": ("tousu_routing", "RoutingSettings"),
    "sla_monitor": ("tousu_sla", "SlaSettings"),
    "feedback": ("tousu_feedback", "FeedbackSettings"),
    "analytics": ("tousu_analytics", "AnalyticsSettings"),
}


def settings_class(schema: str) -> type[ServiceSettings]:
    """The settings class of the service that owns ``schema``."""
    package, name = SERVICES[schema]
    cls: type[ServiceSettings] = getattr(importlib.import_module(f"{package}.settings"), name)
    return cls


def test_settings(cls: type[S], *, own_kafka_user: bool = False, **overrides: Any) -> S:
    """Settings for a service under test: own topics, own consumer group, fast loops.

    On the broker the service logs in as the admin user, since most tests feed a service the
    events of others through its own runtime, which its own user may not write; with
    ``own_kafka_user`` it logs in as its own user, as in production (the ACLs' tests do).
    """
    values: dict[str, Any] = {
        **TEST_KEYS,
        "topic_namespace": TOPIC_NAMESPACE,
        "consumer_group_suffix": f"-{RUN_ID}-{uuid.uuid4().hex[:6]}",
        "relay_idle_poll_ms": 10,
        # Tests also enqueue rows directly (no commit signal); keep the fallback look short.
        "relay_fallback_poll_ms": 100,
        "consumer_max_attempts": 3,
        "consumer_retry_backoff_ms": 10,
        "credential_cache_seconds": 0.0,
        "credential_signing_key": CREDENTIAL_SIGNING_KEY,
        "db_pool_size": 5,
        # Tests try many bad keys on purpose; the throttle has a test of its own.
        "auth_failures_allowed": 10_000,
    }
    service = overrides.get("service_name", cls.model_fields["service_name"].default)
    user = service if own_kafka_user and isinstance(service, str) else ADMIN_USER
    password = password_of(user)
    if password:
        values.update(kafka_username=user, kafka_password=password)
    values.update(overrides)
    return cls(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite the name


@functools.cache
def superuser_socket() -> tuple[str, int]:
    """The Postgres superuser's way in (socket directory, port), as ``deploy/infra.sh env``
    prints it: tests that must act beyond a service role (empty an audit log, tamper with
    one) use it, as the postgres OS user or root would."""
    repo = Path(__file__).resolve().parents[3]
    printed = subprocess.run(
        ["bash", str(repo / "deploy" / "infra.sh"), "env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"^# superuser: .* -h (\S+) -p (\d+)", printed, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"deploy/infra.sh env names no superuser socket:\n{printed}")
    return found[1], int(found[2])


async def superuser_connection() -> asyncpg.Connection:
    """A connection to ``tousu`` as the superuser (close it when done)."""
    host, port = superuser_socket()
    return await asyncpg.connect(host=host, port=port, user="postgres", database="tousu")


async def truncate_schema(engine: AsyncEngine, schema: str) -> None:
    """Empty every table of a schema except migration bookkeeping and fixed lanes.

    The audit log belongs to ``tousu_audit`` (the service role may only append to it), so
    the superuser empties it; its hash chain starts again from the first entry."""
    async with engine.begin() as conn:
        tables = (
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                    {"schema": schema},
                )
            )
            .scalars()
            .all()
        )
        wanted = [
            f'{schema}."{name}"'
            for name in tables
            if name not in KEEP_TABLES and name != AUDIT_TABLE
        ]
        if wanted:
            await conn.execute(text(f"TRUNCATE {', '.join(wanted)} RESTART IDENTITY CASCADE"))
    if AUDIT_TABLE in tables:
        superuser = await superuser_connection()
        try:
            await superuser.execute(f'TRUNCATE {schema}."{AUDIT_TABLE}" RESTART IDENTITY')
        finally:
            await superuser.close()


async def read_topic(
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord]], bool],
    timeout: float = 20.0,
    bootstrap: str = KAFKA_BOOTSTRAP,
) -> list[ConsumerRecord]:
    """Read a topic from the start until ``until(records)`` holds; fails on timeout."""
    consumer = AIOKafkaConsumer(
        topic,
        **admin_connection(bootstrap),
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}: condition not met within {timeout}s ({len(records)} records read)"
                )
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def issue_credential(http: Any, role: str, name: str, **fields: Any) -> str:
    """Issue a credential through a service's admin API (as deploy/run-services.sh does for
    feedback's ``service`` key at intake) and return the key; ``http`` holds an admin key."""
    response = await http.post(
        "/v1/admin/credentials",
        json={"name": name, "role": role, **fields},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


async def declare_departments(runtime: Runtime, *codes: str) -> None:
    """Put departments into a service's replica of routing's directory the way its consumer
    does: routing's ``DepartmentDeclared`` events, applied by the service's own handler in
    one transaction. For a service under test without routing running; routing itself owns
    its departments (create them through its API, or ``ensure_defaults``)."""
    directory = runtime.departments
    if not isinstance(directory, DepartmentDirectory):
        raise TypeError(f"{runtime.settings.service_name} keeps no replica of the directory")
    now = datetime.now(UTC)
    async with runtime.uow() as uow:
        for code in codes:
            event = department_declared(code, code.replace("_", " ").title(), now)
            await directory.apply(uow, event, envelope_of(event))
        await uow.commit()


def envelope_of(event: Event) -> Envelope:
    """An event wrapped the way its producing service would (outside any correlation)."""
    return Envelope(
        source="tousu/test",
        type=event.event_type,
        subject=event.subject,
        schema_version=event.schema_version,
        correlation_id=event.subject,
        data=event.model_dump(mode="json", exclude={"complaint_id"}),
    )


def envelopes(records: list[ConsumerRecord]) -> list[Envelope]:
    """The envelopes of Kafka records."""
    return [Envelope.from_bytes(record.value) for record in records]


async def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05
) -> Any:
    """Poll an async or sync predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def create_topics(namespace: str, extra: Iterable[tuple[str, int]] = ()) -> str:
    """Create every platform topic (and ``extra`` ones, as (name, partitions), which only the
    admin user reaches) under a namespace, with the services' ACLs on them; returns the
    namespace."""
    await _claim_run()
    wanted = [*all_topic_names(), *extra]
    await ensure_topics(
        KAFKA_ADMIN,
        [(namespace + name, parts) for name, parts in wanted],
        compacted=[namespace + name for name in compacted_topic_names()],
    )
    await grant_service_acls(KAFKA_ADMIN, namespace)
    return namespace


async def fresh_namespace(label: str = "", extra: Iterable[tuple[str, int]] = ()) -> str:
    """A topic namespace of one test's own, inside this run's, with its topics created (so a
    new consumer group does not replay earlier tests' events)."""
    return await create_topics(f"{TOPIC_NAMESPACE}{label}{uuid.uuid4().hex[:8]}.", extra)


async def delete_topics(namespace: str) -> None:
    """Delete every topic under a namespace: a developer's broker would otherwise gather a
    dozen topics per run."""
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN)
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(namespace)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def running(*services: Service, roles: bool = False) -> AsyncIterator[asyncio.Event]:
    """Each service's consumer and outbox relay (with ``roles``, also its workers and relay
    companions, as ``all`` runs them) until the block ends; yields the stop event.

    The block starts once every consumer is ready (or a task ended early, so a crash shows
    instead of a wait).
    """
    stop = asyncio.Event()
    tasks: list[asyncio.Future[None]] = []
    consumers = []
    for service in services:
        consumer = service.consumer()
        consumers.append(consumer)
        tasks += [
            asyncio.create_task(consumer.run(stop)),
            asyncio.create_task(service.relay().run(stop)),
        ]
        if roles:
            others = [*service.workers.values(), *service.relay_companions]
            tasks += [asyncio.ensure_future(worker(stop)) for worker in others]
    try:
        await wait_for(
            lambda: all(c.ready.is_set() for c in consumers) or any(t.done() for t in tasks)
        )
        yield stop
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@contextlib.asynccontextmanager
async def api_client(
    app: Any, key: str, *, base_url: str = "http://test", lifespan: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client speaking to an app in-process with an API key; with ``lifespan`` the app's
    startup runs first and its shutdown after."""
    async with contextlib.AsyncExitStack() as stack:
        if lifespan:
            app = (await stack.enter_async_context(LifespanManager(app))).app
        yield await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=base_url,
                headers={"Authorization": f"Bearer {key}"},
            )
        )


async def delete_outbox_rows(namespace: str) -> None:
    """Delete the outbox rows of every schema addressed to a namespace's topics.

    Once those topics are gone no relay could ever send such a row, and an unsent one would
    hold back its lane: a stack started on the same database after the tests (``make run``
    after ``make test``) would then never publish the complaints of that lane.
    """
    conn = await superuser_connection()
    try:
        schemas = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
        )
        for (schema,) in schemas:
            await conn.execute(
                f'DELETE FROM "{schema}".outbox WHERE starts_with(topic, $1)', namespace
            )
    finally:
        await conn.close()


def _run_alive(run_id: str) -> bool:
    """Whether the test session of a run id is still running on this machine."""
    try:
        pid = int((RUNS_DIR / run_id).read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


async def delete_abandoned_namespaces() -> list[str]:
    """Delete the topics and outbox rows of test runs that ended without cleaning up (a
    killed or timed-out run): each leaves about fifty partitions on a developer's broker,
    and hundreds of them make even an idle broker busy (issue #12). Returns the namespaces."""
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith("test-")]
        runs = {name.split(".", 1)[0].removeprefix("test-") for name in names if "." in name}
        dead = sorted(run for run in runs if run != RUN_ID and not _run_alive(run))
        doomed = [name for name in names if name.split(".", 1)[0].removeprefix("test-") in dead]
        for start in range(0, len(doomed), 500):  # one request per few hundred topics
            await admin.delete_topics(doomed[start : start + 500])
    finally:
        await admin.close()
    for run in dead:
        await delete_outbox_rows(f"test-{run}.")
    for lease in RUNS_DIR.iterdir():  # the leases of runs that died, with or without topics
        if lease.name != RUN_ID and not _run_alive(lease.name):
            lease.unlink(missing_ok=True)
    return [f"test-{run}." for run in dead]


_claimed: list[Path] = []  # this run's lease, once it has created a topic


async def _claim_run() -> None:
    """On the first topics a run creates: leave its lease and remove what runs that died
    left behind. Runs that never touch Kafka (unit tests alone) never connect to it."""
    if _claimed:
        return
    RUNS_DIR.mkdir(exist_ok=True)
    lease = RUNS_DIR / RUN_ID
    lease.write_text(str(os.getpid()))
    _claimed.append(lease)
    await delete_abandoned_namespaces()


async def _release_run() -> None:
    try:
        await delete_topics(TOPIC_NAMESPACE)
        await delete_outbox_rows(TOPIC_NAMESPACE)
    finally:
        _claimed.pop().unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete every topic this run created (its own namespace and each test's fresh one
    inside it, whichever fixture made them) and the outbox rows addressed to them."""
    if _claimed:
        asyncio.run(_release_run())


@pytest.fixture(scope="session")
async def kafka_topics() -> AsyncIterator[str]:
    """Creates this run's topics; yields their namespace (the session's end deletes them,
    see pytest_sessionfinish)."""
    yield await create_topics(TOPIC_NAMESPACE)
