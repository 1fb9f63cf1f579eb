"""Fixtures for sla-monitor tests against the real broker and database.

Every test gets its own topics (so a new consumer group does not replay earlier tests'
complaints), an emptied ``sla_monitor`` schema with the defaults re-seeded, and a test
policy set with second-scale targets on the 24x7 calendar.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from contract_events import case_event, case_routed, complaint_received
from sla_factories import milestone
from sqlalchemy import Row, text
from tousu_shared.auth import new_api_key
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.case import CaseRouted
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
)
from tousu_shared.runtime import Service
from tousu_shared.testing import (
    api_client,
    envelopes,
    fresh_namespace,
    read_topic,
    running,
    test_settings,
    truncate_schema,
)
from tousu_sla.bootstrap import bootstrap
from tousu_sla.domain import MatchCriteria, SlaPolicy
from tousu_sla.entrypoints.scheduler import SlaScheduler
from tousu_sla.service_layer import catalog
from tousu_sla.service_layer.context import SlaContext
from tousu_sla.settings import SlaSettings

ADMIN_KEY = new_api_key()[1]
S = dt.timedelta(seconds=1)
WAIT = {"pause_events": ("CustomerWaitStarted",), "resume_events": ("CustomerWaitEnded",)}


# Both test policies resolve on the 24x7 business calendar, pausing for the customer.
RESOLVE = milestone("resolve", 600 * S, "CaseResolved", clock="business", calendar="24x7", **WAIT)


def fast_policies() -> list[SlaPolicy]:
    """Second-scale policies: `urgent` for immediate cases, a relaxed catch-all otherwise."""
    return [
        SlaPolicy(
            name="urgent",
            match=MatchCriteria(urgency=("immediate",)),
            milestones=(
                milestone(
                    "first_response",
                    2 * S,
                    "FirstResponseSent",
                    warn_fractions=(0.5, 0.75),
                    escalation_interval=1 * S,
                ),
                RESOLVE,
            ),
        ),
        SlaPolicy(
            name="relaxed",
            milestones=(
                milestone("record", 60 * S, "ComplaintReceived", start_at_field="contact_at"),
                milestone("first_response", 120 * S, "FirstResponseSent"),
                RESOLVE,
                milestone(
                    "follow_up",
                    120 * S,
                    "CustomerInformed",
                    start_event="CaseResolved",
                    repeatable=True,
                ),
            ),
        ),
    ]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SlaHarness:
    """The service under test with helpers to feed events and watch what it publishes."""

    policies = staticmethod(fast_policies)

    def __init__(self, service: Service) -> None:
        self.service = service
        self.runtime = service.runtime
        self.settings: SlaSettings = service.runtime.settings  # type: ignore[assignment]
        self.ctx: SlaContext = service.app.state.sla
        self._producer = None

    # -- events in --------------------------------------------------------------------

    async def send(self, *events: Event) -> None:
        """Publish contract events on their topics, as intake / routing / feedback would."""
        if self._producer is None:
            self._producer = self.runtime.producer()
            await self._producer.start()
        for event in events:
            envelope = self.runtime.outbox.envelope(event)
            await self._producer.send_and_wait(
                self.settings.topic(event.topic),
                envelope.to_bytes(),
                key=envelope.subject.encode(),
            )

    async def apply(self, *events: Event) -> None:
        """Run events through the consumer's handler directly, one transaction each."""
        for event in events:
            envelope = self.runtime.outbox.envelope(event)
            handler = self.service.handlers[event.event_type]
            async with self.service.uow() as uow:
                await handler(uow, event, envelope)
                await uow.commit()

    # -- workers ----------------------------------------------------------------------

    def running(
        self, *, scheduler: bool = True
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        """Run the consumer and relay (and the scheduler) until the block ends."""
        return running(self.service, roles=scheduler)

    def scheduler(self) -> SlaScheduler:
        """A scheduler of its own (as another process would run)."""
        return SlaScheduler(self.settings, self.ctx)

    # -- events out -------------------------------------------------------------------

    async def sla_events(
        self,
        complaint_id: uuid.UUID,
        until: Callable[[list[Envelope]], bool],
    ) -> list[Envelope]:
        """SLA events published on Kafka for one complaint, once `until` holds for them."""
        subject = str(complaint_id).encode()

        def mine(records: Iterable[ConsumerRecord]) -> list[Envelope]:
            return envelopes([record for record in records if record.key == subject])

        records = await read_topic(
            self.settings.topic("sla.events"), until=lambda rs: until(mine(rs)), timeout=30.0
        )
        return mine(records)

    # -- stored state -----------------------------------------------------------------

    async def rows(self, sql: str, **params: Any) -> list[Row[Any]]:
        """The rows of a read-only query on the service's tables."""
        async with self.runtime.engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def scalars(self, sql: str, **params: Any) -> list[Any]:
        """The first column of a query's rows."""
        return [row[0] for row in await self.rows(sql, **params)]

    async def scalar(self, sql: str, **params: Any) -> Any:
        """The value of a query that gives exactly one row (fails otherwise)."""
        (value,) = await self.scalars(sql, **params)
        return value

    # -- HTTP -------------------------------------------------------------------------

    def http(
        self, key: str = ADMIN_KEY
    ) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        """An HTTP client speaking to the app in-process."""
        return api_client(self.service.app, key, base_url="http://sla")

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        await self.runtime.close()


@pytest.fixture(scope="session", autouse=True)
async def fresh_schema_after_the_run() -> AsyncIterator[None]:
    """Leave the schema as a fresh migration does (defaults in force, no test policies), so a
    service started after the tests does not run on second-scale test targets."""
    yield
    service = bootstrap(test_settings(SlaSettings))
    try:
        await truncate_schema(service.runtime.engine, "sla_monitor")
        ctx: SlaContext = service.app.state.sla
        async with ctx.uow() as uow:
            await catalog.seed_defaults(uow, ctx)
            await uow.commit()
    finally:
        await service.runtime.close()


@pytest.fixture
async def sla() -> AsyncIterator[SlaHarness]:
    """The service on topics of its own, with an empty schema and the test policies."""
    namespace = await fresh_namespace("sla-")
    service = bootstrap(
        test_settings(
            SlaSettings,
            topic_namespace=namespace,
            bootstrap_admin_key=ADMIN_KEY,
            scheduler_poll_ms=50,
            sse_poll_ms=50,
        )
    )
    await truncate_schema(service.runtime.engine, "sla_monitor")
    harness = SlaHarness(service)
    async with harness.ctx.uow() as uow:
        await catalog.seed_defaults(uow, harness.ctx)
        await catalog.publish_policy_set(
            uow, fast_policies(), based_on_version=None, comment="test", actor="test"
        )
        await uow.commit()
    yield harness
    await harness.close()


# -- contract event factories (fixtures so test modules need no imports of helpers) ------


class Events:
    """Builds contract events for one complaint."""

    def __init__(self, complaint_id: uuid.UUID | None = None) -> None:
        self.complaint_id = complaint_id or uuid.uuid4()

    def received(
        self, at: dt.datetime | None = None, *, contact_at: dt.datetime | None = None
    ) -> ComplaintReceived:
        at = at or now()
        return complaint_received(self.complaint_id, at, contact_at=contact_at or at)

    @staticmethod
    def classification(urgency: str, severity: str = "general") -> ClassificationData:
        return ClassificationData(
            category="product_quality", severity=severity, urgency=urgency, customer_tier="regular"
        )

    def classified(self, urgency: str, severity: str = "general") -> ComplaintClassified:
        return ComplaintClassified(
            complaint_id=self.complaint_id,
            classification=self.classification(urgency, severity),
            explanation={"urgency": "test"},
            ruleset_version="test",
        )

    def reclassified(self, urgency: str, *, previous: str = "routine") -> ComplaintReclassified:
        return ComplaintReclassified(
            complaint_id=self.complaint_id,
            classification=self.classification(urgency),
            previous=self.classification(previous),
            reason="customer is a hospital",
            corrected_by="manager:zhao",
        )

    def routed(
        self, department: str = "quality", urgency: str = "routine", at: dt.datetime | None = None
    ) -> CaseRouted:
        return case_routed(self.complaint_id, at or now(), department=department, urgency=urgency)

    def case(self, cls: type[Event], at: dt.datetime | None = None, **fields: Any) -> Event:
        return case_event(cls, self.complaint_id, at or now(), **fields)


@pytest.fixture
def new_complaint() -> Callable[[], Events]:
    """A factory of event builders, one complaint each."""
    return Events
