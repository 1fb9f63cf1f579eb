"""Fixtures for the analytics service against the real broker and database.

Each test gets topics of its own (deleted afterwards), an emptied ``analytics`` schema, and
helpers to publish other services' events and wait until the read model applied them.
Test modules reach the helpers through the ``analytics`` fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from contract_events import case_event, case_routed
from sqlalchemy import text
from tousu_analytics.bootstrap import bootstrap
from tousu_analytics.settings import AnalyticsSettings
from tousu_shared import testing
from tousu_shared.auth import new_api_key
from tousu_shared.clock import FixedClock
from tousu_shared.contracts import Envelope, Event
from tousu_shared.runtime import Service

pytestmark = pytest.mark.integration

ADMIN_KEY = new_api_key()[1]


class Harness:
    """The service under test: publish events as other services would, call its API."""

    def __init__(self, service: Service, clock: FixedClock) -> None:
        self.service = service
        self.clock = clock
        self.settings: AnalyticsSettings = service.runtime.settings  # type: ignore[assignment]
        self.ctx = service.app.state.analytics
        self.handled = 0  # events sent that the read model handles

    def envelope(self, event: Event) -> Envelope:
        return self.service.runtime.outbox.envelope(event)

    async def send(self, *items: Event | Envelope) -> list[Envelope]:
        """Publish events (or exact envelopes, to redeliver one) on their topics."""
        producer = self.service.runtime.producer()
        await producer.start()
        sent = []
        try:
            for item in items:
                envelope = item if isinstance(item, Envelope) else self.envelope(item)
                topic = self._topic_of(envelope)
                await producer.send_and_wait(
                    self.settings.topic(topic), envelope.to_bytes(), key=envelope.subject.encode()
                )
                sent.append(envelope)
        finally:
            await producer.stop()
        return sent

    @staticmethod
    def _topic_of(envelope: Envelope) -> str:
        from tousu_shared.contracts import EVENT_TYPES

        return EVENT_TYPES[(envelope.type, envelope.schema_version)].topic

    async def inbox_count(self, consumer: str | None = None) -> int:
        async with self.service.runtime.engine.connect() as conn:
            return int(
                await conn.scalar(
                    text("SELECT count(*) FROM analytics.inbox WHERE consumer = :c"),
                    {"c": consumer or self.settings.consumer_group},
                )
                or 0
            )

    async def until_applied(self, count: int) -> None:
        """Wait until the live consumer recorded ``count`` events in its inbox."""

        async def done() -> bool:
            return await self.inbox_count() >= count

        await testing.wait_for(done, timeout=60)

    def running(self) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        return testing.running(self.service)

    def http(
        self, key: str = ADMIN_KEY
    ) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return testing.api_client(self.service.app, key, base_url="http://analytics")

    async def credential(
        self, http: httpx.AsyncClient, role: str, department: str | None = None
    ) -> str:
        name = f"{role}-{uuid.uuid4().hex[:6]}"
        if department is not None:
            await testing.declare_departments(self.service.runtime, department)
        return await testing.issue_credential(http, role, name, department=department)


@pytest.fixture
async def analytics() -> AsyncIterator[Harness]:
    namespace = await testing.fresh_namespace("an-")
    clock = FixedClock(datetime(2025, 11, 3, 2, 0, tzinfo=UTC))
    service = bootstrap(
        testing.test_settings(
            AnalyticsSettings, topic_namespace=namespace, bootstrap_admin_key=ADMIN_KEY
        ),
        clock=clock,
    )
    await testing.truncate_schema(service.runtime.engine, "analytics")
    try:
        yield Harness(service, clock)
    finally:
        await testing.truncate_schema(service.runtime.engine, "analytics")
        await service.runtime.close()
        await testing.delete_topics(namespace)


@pytest.fixture
def kit() -> type[Events]:
    return Events


class Events:
    """Builds contract events of one complaint, as intake, routing, SLA and feedback would."""

    def __init__(self, **received: Any) -> None:
        self.complaint_id = uuid.uuid4()
        self.version = 0
        self._received = received

    def received(self) -> Event:
        from tousu_shared.contracts.complaint import ComplaintReceived

        values: dict[str, Any] = {
            "tracking_code": f"TS-{self.complaint_id.hex[:6]}",
            "channel": "phone",
            "customer_ref": "cust-x",
            "customer_tier": "regular",
            "contact_details_url": "https://intake/contact",
        }
        values.update(self._received)
        values.setdefault("received_at", values["contact_at"])
        return ComplaintReceived(complaint_id=self.complaint_id, **values)

    def classified(
        self, category: str, severity: str = "general", urgency: str = "routine"
    ) -> Event:
        from tousu_shared.contracts.complaint import ClassificationData, ComplaintClassified

        return ComplaintClassified(
            complaint_id=self.complaint_id,
            classification=ClassificationData(
                category=category, severity=severity, urgency=urgency, customer_tier="regular"
            ),
            explanation={},
            ruleset_version="test",
        )

    def reclassified(self, category: str, previous: str) -> Event:
        from tousu_shared.contracts.complaint import ClassificationData, ComplaintReclassified

        def data(cat: str) -> ClassificationData:
            return ClassificationData(
                category=cat, severity="general", urgency="routine", customer_tier="regular"
            )

        return ComplaintReclassified(
            complaint_id=self.complaint_id,
            classification=data(category),
            previous=data(previous),
            reason="wrong category",
            corrected_by="manager:zhao",
        )

    def case(self, cls: type[Event], at: datetime, department: str, **fields: Any) -> Event:
        self.version += 1
        return case_event(
            cls, self.complaint_id, at, department=department, case_version=self.version, **fields
        )

    def opened(self, category: str, department: str) -> list[Event]:
        """Received, classified as ``category`` and routed to ``department`` when the
        customer made contact: how every complaint's events begin."""
        at = self._received["contact_at"]
        return [
            self.received(),
            self.classified(category),
            self.routed(at, department, category=category),
        ]

    def routed(self, at: datetime, department: str, **fields: Any) -> Event:
        """Routing's first event: contract_events' general, routine product-quality case
        unless ``fields`` say otherwise."""
        self.version += 1
        return case_routed(
            self.complaint_id, at, department=department, case_version=self.version, **fields
        )

    def resolved(self, at: datetime, department: str, root_cause: str, **fields: Any) -> Event:
        from tousu_shared.contracts.case import CaseResolved

        values = {"resolution": "fixed", "responsible_person": "li", **fields}
        return self.case(CaseResolved, at, department, root_cause=root_cause, **values)

    def sla(self, cls: type[Event], milestone: str, due_at: datetime, **fields: Any) -> Event:
        return cls(
            complaint_id=self.complaint_id,
            milestone=milestone,
            policy="standard",
            due_at=due_at,
            **fields,
        )

    def feedback(self, cls: type[Event], survey: str, **fields: Any) -> Event:
        return cls(complaint_id=self.complaint_id, survey_id=survey, **fields)

    def met(
        self,
        milestone: str,
        at: datetime,
        business_hours: float,
        within_target: bool | None = None,
        *,
        due_at: datetime | None = None,
    ) -> Event:
        """The SLA monitor's milestone met at ``at`` after ``business_hours`` on its clock."""
        from tousu_shared.contracts.sla import SlaMet

        return self.sla(
            SlaMet,
            milestone,
            due_at or at,
            met_at=at,
            elapsed_seconds=business_hours * 3600,
            within_target=within_target,
        )

    def answered(
        self, survey: str, at: datetime, satisfaction: int, source: str, **fields: Any
    ) -> Event:
        """Feedback's survey answered at ``at`` (solved unless ``fields`` say otherwise)."""
        from tousu_shared.contracts.feedback import SurveyAnswered

        values = {"solved": True, **fields}
        return self.feedback(
            SurveyAnswered,
            survey,
            satisfaction=satisfaction,
            answered_at=at,
            source=source,
            **values,
        )
