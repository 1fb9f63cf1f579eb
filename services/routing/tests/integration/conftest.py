"""Fixtures for the routing service against the real broker and database.

Each test gets its own topic namespace (deleted afterwards), an emptied routing schema with
the default department and rule seeded again, and a running consumer and outbox relay. So
tests pass in any order, twice in a row, and see only their own events. Test modules reach
the helpers through the ``kit`` fixture (with ``--import-mode=importlib`` they cannot import
this file).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from contract_events import complaint_received
from sqlalchemy import text
from tousu_routing.bootstrap import bootstrap
from tousu_routing.service_layer.defaults import ensure_defaults
from tousu_routing.service_layer.departments import ensure_department_topics
from tousu_routing.settings import RoutingSettings
from tousu_shared.auth import new_api_key
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintClassified,
    ComplaintReceived,
)
from tousu_shared.runtime import Service
from tousu_shared.testing import (
    KAFKA_ADMIN,
    api_client,
    delete_topics,
    envelope_of,
    fresh_namespace,
    issue_credential,
    running,
    test_settings,
    truncate_schema,
    wait_for,
)

ADMIN_KEY = new_api_key()[1]


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    """The routing service on its own topics, with an empty schema and the defaults seeded."""
    namespace = await fresh_namespace()
    routing = bootstrap(
        test_settings(RoutingSettings, bootstrap_admin_key=ADMIN_KEY, topic_namespace=namespace)
    )
    await _reset_schema(routing)
    await ensure_department_topics(routing.runtime)
    try:
        yield routing
    finally:
        # The database is shared with development runs: leave only the seeded defaults.
        await _reset_schema(routing)
        await routing.runtime.close()
        await delete_topics(namespace)


async def _reset_schema(routing: Service) -> None:
    await truncate_schema(routing.runtime.engine, "routing")
    async with routing.runtime.session_factory() as session, session.begin():
        await ensure_defaults(db_session=session)


@pytest.fixture
async def workers(service: Service) -> AsyncIterator[None]:
    """The service's consumer and outbox relay, running until the test ends."""
    async with running(service):
        yield


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An API client holding the bootstrap admin key."""
    async with api_client(service.app, ADMIN_KEY) as client:
        yield client


@pytest.fixture
async def kit(service: Service, http: httpx.AsyncClient, workers: None) -> Kit:
    """Helpers bound to this test's service, API client and running workers."""
    return Kit(service, http)


@pytest.fixture
async def still_kit(service: Service, http: httpx.AsyncClient) -> Kit:
    """The same helpers with no consumer running: the test applies events itself."""
    return Kit(service, http)


# ---- events from the other services -----------------------------------------------------------


def received(complaint_id: uuid.UUID, **overrides: Any) -> ComplaintReceived:
    """A received complaint (no personal data), contacted an hour ago; routing passes its
    contact link on (test_departments checks it)."""
    return complaint_received(
        complaint_id,
        datetime.now(UTC) - timedelta(hours=1),
        tracking_code=f"TS-{complaint_id.hex[:8]}",
        contact_details_url=f"http://intake/v1/complaints/{complaint_id}/contact",
        **overrides,
    )


def classification(**overrides: Any) -> ClassificationData:
    """A classification: product quality, general, routine unless told otherwise."""
    values: dict[str, Any] = {
        "category": "product_quality",
        "severity": "general",
        "urgency": "routine",
        "customer_tier": "regular",
    }
    values.update(overrides)
    return ClassificationData(**values)


def classified(complaint_id: uuid.UUID, **overrides: Any) -> ComplaintClassified:
    """The classifier's result for a complaint."""
    return ComplaintClassified(
        complaint_id=complaint_id,
        classification=classification(**overrides),
        explanation={"category": "keyword"},
        ruleset_version="test",
    )


async def read_all(topic: str) -> list[ConsumerRecord]:
    """Every record a topic holds right now (reads up to the end offset of each partition)."""
    # Without a group the consumer takes every partition of the topic itself.
    consumer = AIOKafkaConsumer(
        topic,
        **KAFKA_ADMIN,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        partitions = await wait_for(lambda: consumer.assignment())
        ends = await consumer.end_offsets(list(partitions))
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                records.extend(batch)
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return records


class Kit:
    """What a test does to the routing service: send events, call the API, read topics."""

    received = staticmethod(received)
    classified = staticmethod(classified)
    classification = staticmethod(classification)
    envelope_of = staticmethod(envelope_of)
    read_all = staticmethod(read_all)
    bearer = staticmethod(bearer)
    admin_key = ADMIN_KEY

    def __init__(self, service: Service, http: httpx.AsyncClient) -> None:
        self.service = service
        self.http = http

    def topic(self, logical: str) -> str:
        """This test's physical name of a topic."""
        return self.service.runtime.settings.topic(logical)

    async def publish(self, *events: Event) -> list[Envelope]:
        """Produce events as intake, the SLA monitor or feedback would."""
        producer = self.service.runtime.producer()
        await producer.start()
        sent = []
        try:
            for event in events:
                envelope = envelope_of(event)
                await producer.send_and_wait(
                    self.topic(event.topic), envelope.to_bytes(), key=event.subject.encode()
                )
                sent.append(envelope)
        finally:
            await producer.stop()
        return sent

    async def open_case(
        self, *, received_overrides: dict[str, Any] | None = None, **classification_overrides: Any
    ) -> dict[str, Any]:
        """Send a complaint through intake's events; its case once routing opened it."""
        return (
            await self.open_cases(
                1, received_overrides=received_overrides, **classification_overrides
            )
        )[0]

    async def open_cases(
        self,
        count: int,
        *,
        received_overrides: dict[str, Any] | None = None,
        **classification_overrides: Any,
    ) -> list[dict[str, Any]]:
        """Several complaints in one batch of events; their cases in the same order."""
        ids = [uuid.uuid4() for _ in range(count)]
        events: list[Event] = []
        for complaint_id in ids:
            events += [
                received(complaint_id, **(received_overrides or {})),
                classified(complaint_id, **classification_overrides),
            ]
        await self.publish(*events)
        return [await self.case_of(complaint_id) for complaint_id in ids]

    async def case_of(self, complaint_id: uuid.UUID | str) -> dict[str, Any]:
        """The full case of a complaint, waiting for routing to open it."""

        async def found():
            response = await self.http.get("/v1/cases", params={"complaint_id": str(complaint_id)})
            items = response.json()["items"]
            return items[0]["id"] if items else None

        case_id = await wait_for(found)
        return await self.case(case_id)

    async def case(self, case_id: str) -> dict[str, Any]:
        """A case as the admin sees it."""
        response = await self.http.get(f"/v1/cases/{case_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def case_when(
        self, case_id: str, condition: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The case once a condition holds (after an event was consumed)."""

        async def check():
            case = await self.case(case_id)
            return case if condition(case) else None

        return await wait_for(check)

    async def act(
        self,
        case: dict[str, Any],
        action: str,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        expect: int = 200,
    ) -> dict[str, Any]:
        """Perform an action on a case with its current version; returns the response body."""
        headers = {"If-Match": f'"{case["version"]}"'}
        if key is not None:
            headers.update(bearer(key))
        response = await self.http.post(
            f"/v1/cases/{case['id']}/actions/{action}", json=body or {}, headers=headers
        )
        assert response.status_code == expect, response.text
        return response.json()

    async def department(
        self, code: str, members: list[tuple[str, str]] = (), **fields: Any
    ) -> dict[str, Any]:
        """Create a department with members given as (id, level)."""
        response = await self.http.post(
            "/v1/departments",
            json={
                "code": code,
                "name": fields.pop("name", code.title()),
                **fields,
            },
        )
        assert response.status_code == 201, response.text
        for member_id, level in members:
            added = await self.http.post(
                f"/v1/departments/{code}/members",
                json={
                    "id": member_id,
                    "name": member_id.upper(),
                    "level": level,
                },
            )
            assert added.status_code == 201, added.text
        return (await self.http.get(f"/v1/departments/{code}")).json()

    async def quality(self, *more: tuple[str, str]) -> dict[str, Any]:
        """The quality department: two agents, a manager and a director (and ``more``)."""
        return await self.department(
            "quality",
            [
                ("qa-1", "agent"),
                ("qa-2", "agent"),
                ("qa-mgr", "department_manager"),
                ("qa-dir", "director"),
                *more,
            ],
        )

    async def resolve(
        self,
        case: dict[str, Any],
        *,
        solution: str,
        resolution: str,
        root_cause: str,
        responsible_person: str,
    ) -> dict[str, Any]:
        """Take a routed case the shortest way to resolved: acknowledge, investigate,
        propose a solution, resolve; returns the resolved case."""
        for action, body in [
            ("acknowledge", {}),
            ("start-investigation", {}),
            ("propose-solution", {"solution": solution}),
            (
                "resolve",
                {
                    "resolution": resolution,
                    "root_cause": root_cause,
                    "responsible_person": responsible_person,
                },
            ),
        ]:
            case = await self.act(case, action, body)
        return case

    async def dry_run(self, complaint: dict[str, Any], **fields: Any) -> httpx.Response:
        """Ask which rule, department and level a complaint would get (nothing is saved)."""
        return await self.http.post(
            "/v1/routing-rules:dry-run", json={"complaint": complaint, **fields}
        )

    async def rule(
        self, name: str, target: str, order: int | None = None, **criteria: list[str]
    ) -> dict[str, Any]:
        """Create a routing rule."""
        body: dict[str, Any] = {
            "id": name,
            "name": name,
            "target_department": target,
            "criteria": criteria,
        }
        if order is not None:
            body["order"] = order
        response = await self.http.post("/v1/routing-rules", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def credential(self, role: str, department: str | None = None) -> str:
        """Issue a credential through this service's admin API (stored locally at once)."""
        name = f"{role}-{uuid.uuid4().hex[:6]}"
        return await issue_credential(self.http, role, name, department=department)

    async def outbox_drained(self) -> None:
        """Wait until the relay published everything routing enqueued."""

        async def drained():
            async with self.service.runtime.engine.connect() as conn:
                unsent = await conn.scalar(
                    text("SELECT count(*) FROM routing.outbox WHERE sent_at IS NULL")
                )
            return unsent == 0

        await wait_for(drained)

    async def published(
        self, logical_topic: str, complaint_id: str | uuid.UUID | None = None
    ) -> list[Envelope]:
        """What routing published on a topic (for one complaint), in order."""
        await self.outbox_drained()
        records = sorted(
            await read_all(self.topic(logical_topic)), key=lambda r: (r.partition, r.offset)
        )
        return [
            Envelope.from_bytes(r.value)
            for r in records
            if complaint_id is None or r.key == str(complaint_id).encode()
        ]
