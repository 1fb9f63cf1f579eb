"""The composition root every service builds on: its engine, outbox, clients and workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tousu_shared.audit import AuditLog
from tousu_shared.auth import CredentialStore
from tousu_shared.contracts.platform import CredentialIssued, CredentialRevoked
from tousu_shared.db import create_engine, create_session_factory
from tousu_shared.inbox import EventConsumer, Handler
from tousu_shared.kafka import create_consumer, create_producer
from tousu_shared.outbox import Outbox, OutboxRelay
from tousu_shared.settings import ServiceSettings


@dataclass
class Runtime:
    """The infrastructure one service process shares between its API, consumer and relay."""

    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    outbox: Outbox
    audit: AuditLog
    credentials: CredentialStore

    @classmethod
    def build(cls, settings: ServiceSettings) -> Runtime:
        """Create the engine and helpers; nothing connects until first use."""
        engine = create_engine(settings)
        session_factory = create_session_factory(engine)
        admin_key = settings.bootstrap_admin_key
        return cls(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            outbox=Outbox(settings),
            audit=AuditLog(settings.db_schema),
            credentials=CredentialStore(
                session_factory,
                settings.db_schema,
                bootstrap_admin_key=admin_key.get_secret_value() if admin_key else None,
                cache_seconds=settings.credential_cache_seconds,
            ),
        )

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
    """One service: its API, what it consumes, its relay and its migrations."""

    name: str
    runtime: Runtime
    app: FastAPI
    handlers: Mapping[str, Handler]
    consumed_topics: list[str]
    migrations_dir: Path
    background: list[Callable[[asyncio.Event], object]] = field(default_factory=list)

    def consumer(self) -> EventConsumer:
        """The service's idempotent consumer of every topic it subscribes to."""
        handlers: dict[str, Handler] = dict(self.handlers)
        handlers.setdefault(CredentialIssued.event_type, self.runtime.credentials.apply)
        handlers.setdefault(CredentialRevoked.event_type, self.runtime.credentials.apply)
        topics = list(dict.fromkeys([*self.consumed_topics, "platform.credentials"]))
        return EventConsumer(
            self.runtime.settings,
            self.runtime.session_factory,
            handlers,
            topics=topics,
            consumer_factory=self.runtime.consumer,
            producer_factory=self.runtime.producer,
        )

    def relay(self) -> OutboxRelay:
        """The service's outbox relay."""
        return OutboxRelay(self.runtime.settings, self.runtime.engine, self.runtime.producer)


def include_routers(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Mount the service's routers."""
    for router in routers:
        app.include_router(router)
