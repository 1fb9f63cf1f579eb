"""The composition root every service builds on: its engine, outbox, clients and workers.

Each service's ``bootstrap.py`` builds one :class:`Runtime` (infrastructure), one context of
its own (its unit-of-work factory, clock and caches) and one :class:`Service` (what the
runner can start: the API, the consumer, the relay and the service's own workers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tousu_shared.audit import AuditLog
from tousu_shared.auth import CredentialStore, FailureThrottle
from tousu_shared.contracts.platform import (
    CredentialIssued,
    CredentialRevoked,
    DepartmentDeclared,
    DepartmentRetired,
)
from tousu_shared.db import create_engine, create_session_factory
from tousu_shared.departments import DepartmentDirectory, Departments
from tousu_shared.inbox import BatchPreparer, EventConsumer, Handler
from tousu_shared.kafka import create_consumer, create_producer
from tousu_shared.outbox import CommitSignal, Outbox, OutboxRelay
from tousu_shared.settings import ServiceSettings
from tousu_shared.topics import consumed_by
from tousu_shared.uow import SqlUnitOfWork, sql_unit_of_work_factory

U = TypeVar("U", bound=SqlUnitOfWork)
DEPARTMENTS_TOPIC = DepartmentDeclared.topic

# A long-running role of its own (e.g. the SLA scheduler): runs until the event is set.
Worker = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Runtime:
    """The infrastructure one service process shares between its API, consumer and relay."""

    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    outbox: Outbox
    audit: AuditLog
    credentials: CredentialStore
    auth_throttle: FailureThrottle
    # Which departments exist: the replica of routing's directory (routing's bootstrap puts
    # its own department table here instead).
    departments: Departments
    # The consumers running in this process, so readiness can report a stalled partition.
    consumers: list[EventConsumer] = field(default_factory=list)

    @classmethod
    def build(cls, settings: ServiceSettings) -> Runtime:
        """Create the engine and helpers; nothing connects until first use."""
        engine = create_engine(settings)
        session_factory = create_session_factory(engine)
        admin_key = settings.bootstrap_admin_key
        signing_key = settings.credential_signing_key
        return cls(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            outbox=Outbox(settings, CommitSignal(settings, engine)),
            audit=AuditLog(settings.db_schema),
            credentials=CredentialStore(
                session_factory,
                settings.db_schema,
                service=settings.service_name,
                bootstrap_admin_key=admin_key.get_secret_value() if admin_key else None,
                signing_key=signing_key.get_secret_value() if signing_key else None,
                cache_seconds=settings.credential_cache_seconds,
            ),
            auth_throttle=FailureThrottle(
                settings.auth_failures_allowed,
                settings.auth_failure_window_seconds,
            ),
            departments=DepartmentDirectory(session_factory, settings.db_schema),
        )

    def unit_of_work_factory(self, cls: type[U]) -> Callable[[], U]:
        """New units of work of a service's type, on this runtime's database and outbox."""
        return sql_unit_of_work_factory(cls, self.session_factory, self.outbox, self.audit)

    def uow(self) -> SqlUnitOfWork:
        """A plain unit of work, for the platform's own writes (credentials)."""
        return SqlUnitOfWork(self.session_factory, self.outbox, self.audit)

    def producer(self) -> AIOKafkaProducer:
        """A new idempotent producer (started by its user)."""
        return create_producer(self.settings)

    def consumer(self, topics: list[str], group: str) -> AIOKafkaConsumer:
        """A new manual-commit consumer (started by its user)."""
        return create_consumer(self.settings, topics, group)

    async def close(self) -> None:
        """Release the database pool."""
        await self.engine.dispose()


@dataclass
class Service:
    """One service: its API, what it consumes, its relay, its workers and its migrations.

    ``uow`` makes the unit of work the consumer applies each event in; ``workers`` are roles
    of their own that ``python -m tousu_<service> <name>`` runs alone (and ``all`` runs with
    the rest); ``relay_companions`` run beside the relay because they serve it (e.g. making
    sure a topic exists before the relay publishes to it).
    """

    name: str
    runtime: Runtime
    app: FastAPI
    uow: Callable[[], SqlUnitOfWork]
    handlers: Mapping[str, Handler]
    consumed_topics: list[str]
    migrations_dir: Path
    workers: Mapping[str, Worker] = field(default_factory=dict)
    relay_companions: list[Worker] = field(default_factory=list)
    prepare: BatchPreparer | None = None

    @classmethod
    def of(
        cls,
        runtime: Runtime,
        app: FastAPI,
        uow: Callable[[], SqlUnitOfWork],
        handlers: Mapping[str, Handler],
        migrations_dir: Path,
        *,
        workers: Mapping[str, Worker] | None = None,
        relay_companions: list[Worker] | None = None,
        prepare: BatchPreparer | None = None,
    ) -> Service:
        """The service its settings name, consuming the topics the topic map routes to it."""
        name = runtime.settings.service_name
        return cls(
            name=name,
            runtime=runtime,
            app=app,
            uow=uow,
            handlers=handlers,
            consumed_topics=consumed_by(name),
            migrations_dir=migrations_dir,
            workers=workers or {},
            relay_companions=relay_companions or [],
            prepare=prepare,
        )

    def consumer(self) -> EventConsumer:
        """The service's idempotent consumer of every topic it subscribes to."""
        if self.runtime.credentials.signer is None:
            # Without the key every credential event would be refused and dead-lettered.
            raise RuntimeError(
                "TOUSU_CREDENTIAL_SIGNING_KEY is not set: the consumer could not verify "
                "credential events"
            )
        handlers: dict[str, Handler] = dict(self.handlers)
        handlers.setdefault(CredentialIssued.event_type, self.runtime.credentials.apply)
        handlers.setdefault(CredentialRevoked.event_type, self.runtime.credentials.apply)
        if DEPARTMENTS_TOPIC in self.topics:
            directory = self.runtime.departments
            if not isinstance(directory, DepartmentDirectory):
                raise RuntimeError(f"{self.name} consumes {DEPARTMENTS_TOPIC} but keeps no replica")
            handlers.setdefault(DepartmentDeclared.event_type, directory.apply)
            handlers.setdefault(DepartmentRetired.event_type, directory.apply)
        consumer = EventConsumer(
            self.runtime.settings,
            self.uow,
            handlers,
            topics=self.topics,
            consumer_factory=self.runtime.consumer,
            producer_factory=self.runtime.producer,
            prepare=self.prepare,
        )
        self.runtime.consumers.append(consumer)
        return consumer

    @property
    def topics(self) -> list[str]:
        """The logical topics the service's consumer subscribes to."""
        return list(dict.fromkeys([*self.consumed_topics, "platform.credentials"]))

    def relay(self) -> OutboxRelay:
        """The service's outbox relay."""
        return OutboxRelay(self.runtime.settings, self.runtime.engine, self.runtime.producer)


def include_routers(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Mount the service's routers."""
    for router in routers:
        app.include_router(router)
