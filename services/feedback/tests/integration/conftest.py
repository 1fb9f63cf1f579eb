"""Feedback against the real broker, database and a local SMTP server, with intake and
routing running beside it (as the e2e test runs them), driven through their public APIs.

Each test gets its own topic namespace, emptied schemas, a mail sink on a free port, and a
feedback credential issued through intake's admin API (``pii:read``: intake audits every
read of contact details). The feedback clock follows real time with an offset a test may
move: by default it stands at the next midday Beijing time, inside the send window.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import socket
import uuid
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from tousu_feedback import mailsink
from tousu_feedback.bootstrap import bootstrap as feedback_bootstrap
from tousu_feedback.entrypoints.scheduler import SurveyScheduler
from tousu_feedback.settings import FeedbackSettings
from tousu_intake.bootstrap import bootstrap as intake_bootstrap
from tousu_intake.settings import IntakeSettings
from tousu_routing.bootstrap import bootstrap as routing_bootstrap
from tousu_routing.service_layer.defaults import ensure_defaults
from tousu_routing.service_layer.departments import ensure_department_topics
from tousu_routing.settings import RoutingSettings
from tousu_shared import testing
from tousu_shared.auth import new_api_key
from tousu_shared.contracts import Envelope
from tousu_shared.runtime import Service

pytestmark = pytest.mark.integration

ADMIN_KEY = new_api_key()[1]
BEIJING = dt.timezone(dt.timedelta(hours=8))
GATEWAY_TOPIC = "feedback.outbound"


class ShiftedClock:
    """Real time plus an offset the test moves (timers and links see the same time)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def set(self, at: dt.datetime) -> None:
        self.offset = at - dt.datetime.now(dt.UTC)

    def advance(self, by: dt.timedelta) -> None:
        self.offset += by


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def next_beijing_midday() -> dt.datetime:
    """Midday Beijing today, or tomorrow once today's has passed.

    Inside the send window, and never behind the real time the other services stamp their
    events with: a case resolved in feedback's future would not be offered until then.
    """
    now = dt.datetime.now(BEIJING)
    midday = dt.datetime.combine(now.date(), dt.time(12), BEIJING)
    if midday < now:
        midday += dt.timedelta(days=1)
    return midday.astimezone(dt.UTC)


class System:
    """Intake, routing and feedback on one namespace, with helpers for the story steps."""

    def __init__(self, namespace: str, mail_dir: Path, clock: ShiftedClock) -> None:
        self.namespace = namespace
        self.mail_dir = mail_dir
        self.clock = clock
        self.intake: Service
        self.routing: Service
        self.feedback: Service
        self.http: dict[str, httpx.AsyncClient] = {}
        self.feedback_key = ""

    def topic(self, logical: str) -> str:
        return f"{self.namespace}{logical}"

    # -- the story ----------------------------------------------------------------------

    async def complaint(self, *, channel: str = "email", **customer: Any) -> dict[str, Any]:
        customer = customer or {"name": "王先生", "email": "wang@example.com"}
        response = await self.http["intake"].post(
            "/v1/complaints",
            json={
                "channel": channel,
                "customer": customer,
                "description": "笔记本电脑屏幕有划痕并且蓝屏，要求退货退款。",
                "product_ref": "LAPTOP-X1",
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def case_of(self, complaint: dict[str, Any]) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            page = await self.http["routing"].get(
                "/v1/cases", params={"complaint_id": complaint["id"]}
            )
            items = page.json()["items"]
            return items[0] if items else None

        return await testing.wait_for(found, timeout=20)

    async def act(self, case: dict[str, Any], action: str, **body: Any) -> None:
        response = await self.http["routing"].post(
            f"/v1/cases/{case['id']}/actions/{action}", json=body
        )
        assert response.status_code == 200, (action, response.text)

    async def resolve(self, case: dict[str, Any], *, first_time: bool = True) -> None:
        if first_time:
            await self.act(case, "acknowledge", note="taken")
            await self.act(case, "start-investigation", note="on site")
        await self.act(
            case, "record-root-cause", root_cause="transport damage", responsible_person="logistics"
        )
        await self.act(case, "propose-solution", solution="full refund and ¥200")
        await self.act(case, "resolve", resolution="refund and ¥200 compensation paid")

    async def resolved_case(self, **complaint: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        created = await self.complaint(**complaint)
        case = await self.case_of(created)
        await self.resolve(case)
        return created, case

    async def run_scheduler_once(self) -> int:
        """One scheduler round, for tests that move the clock by hand."""
        scheduler = SurveyScheduler(
            self.feedback.runtime.settings,  # type: ignore[arg-type]
            self.feedback.app.state.feedback,
        )
        return await scheduler.run_once()

    # -- feedback -----------------------------------------------------------------------

    async def surveys(self, complaint_id: str, **params: Any) -> list[dict[str, Any]]:
        page = await self.http["feedback"].get(
            "/v1/surveys", params={"complaint_id": complaint_id, **params}
        )
        assert page.status_code == 200, page.text
        return list(page.json()["items"])

    async def survey_when(self, complaint_id: str, state: str, count: int = 1) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            items = await self.surveys(complaint_id)
            matching = [s for s in items if s["state"] == state]
            return matching[-1] if len(matching) >= 1 and len(items) >= count else None

        found = await testing.wait_for(check, timeout=30)
        survey = await self.http["feedback"].get(f"/v1/surveys/{found['id']}")
        assert survey.status_code == 200, survey.text
        return dict(survey.json())

    def mails(self) -> list[EmailMessage]:
        return [
            message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for path in sorted(self.mail_dir.glob("*.eml"))
        ]

    async def mail_to(self, address: str, count: int = 1) -> EmailMessage:
        def arrived() -> list[EmailMessage]:
            mine = [m for m in self.mails() if m["To"] == address]
            return mine if len(mine) >= count else []

        return (await testing.wait_for(arrived, timeout=30))[count - 1]

    async def mail_text(self, address: str = "wang@example.com", count: int = 1) -> str:
        """The plain text of the ``count``-th mail to ``address``, once it arrived."""
        body = (await self.mail_to(address, count)).get_body(("plain",))
        assert body is not None, "the mail has a plain-text part"
        return str(body.get_content())

    async def offered_case(self) -> tuple[dict[str, Any], dict[str, Any], str]:
        """A resolved case whose survey was offered by mail: its complaint, its case and the
        token of the link in the customer's mail."""
        complaint, case = await self.resolved_case()
        await self.survey_when(complaint["id"], "offered")
        return complaint, case, self.token_of(self.link_in(await self.mail_text()))

    @staticmethod
    def link_in(text: str) -> str:
        found = re.search(r"https?://\S+?/s/[A-Za-z0-9_-]+", text)
        assert found, "no answer link in the message"
        return found.group(0)

    @staticmethod
    def token_of(link: str) -> str:
        return link.rsplit("/s/", 1)[1]

    async def gateway_message(self, complaint_id: str) -> dict[str, Any]:
        records = await testing.read_topic(
            self.topic(GATEWAY_TOPIC),
            until=lambda rs: any(r.key == complaint_id.encode() for r in rs),
            timeout=30,
        )
        record = next(r for r in records if r.key == complaint_id.encode())
        return dict(orjson.loads(record.value))

    async def case_events(self, complaint_id: str, event_type: str) -> list[Envelope]:
        def mine(records: list[Any]) -> list[Envelope]:
            return [
                e
                for e in testing.envelopes(records)
                if e.subject == complaint_id and e.type == event_type
            ]

        records = await testing.read_topic(
            self.topic("case.events"), until=lambda rs: bool(mine(rs)), timeout=30
        )
        return mine(records)

    async def feedback_events(self, complaint_id: str) -> list[str]:
        records = await testing.read_topic(
            self.topic("feedback.events"),
            until=lambda rs: any(r.key == complaint_id.encode() for r in rs),
        )
        return [e.type for e in testing.envelopes(records) if e.subject == complaint_id]

    async def answer(self, token: str, **answer: Any) -> httpx.Response:
        body = {"solved": True, "satisfaction": 5, "confirmed": True, **answer}
        return await self.http["feedback"].post(f"/v1/public/surveys/{token}", json=body)

    async def credential(self, role: str, department: str | None = None) -> str:
        name = f"{role}-{uuid.uuid4().hex[:6]}"
        if department is not None:
            await testing.declare_departments(self.feedback.runtime, department)
        return await testing.issue_credential(
            self.http["feedback"], role, name, department=department
        )


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    namespace = await testing.fresh_namespace("fb-", extra=[(GATEWAY_TOPIC, 3)])
    common = {"bootstrap_admin_key": ADMIN_KEY, "topic_namespace": namespace}
    clock = ShiftedClock()
    clock.set(next_beijing_midday())
    port = _free_port()
    sink = mailsink.start(tmp_path / "mail", port=port)
    world = System(namespace, tmp_path / "mail", clock)
    world.intake = intake_bootstrap(testing.test_settings(IntakeSettings, **common))
    world.routing = routing_bootstrap(testing.test_settings(RoutingSettings, **common))
    for service, schema in ((world.intake, "intake"), (world.routing, "routing")):
        await testing.truncate_schema(service.runtime.engine, schema)
    async with world.routing.runtime.session_factory() as session, session.begin():
        await ensure_defaults(db_session=session)
    await ensure_department_topics(world.routing.runtime)

    try:
        async with contextlib.AsyncExitStack() as stack:
            intake_app = (await stack.enter_async_context(LifespanManager(world.intake.app))).app
            world.http["intake"] = await stack.enter_async_context(
                testing.api_client(intake_app, ADMIN_KEY, lifespan=False)
            )
            world.feedback_key = await testing.issue_credential(
                world.http["intake"], "service", "feedback-service"
            )
            world.feedback = feedback_bootstrap(
                testing.test_settings(
                    FeedbackSettings,
                    **common,
                    smtp_port=port,
                    intake_api_key=world.feedback_key,
                    public_base_url="https://feedback.test",
                    scheduler_poll_ms=50,
                    # Tests move the clock: what falls due with time alone is seen at once.
                    scheduler_fallback_poll_ms=50,
                ),
                clock=clock,
                intake_transport=httpx.ASGITransport(app=intake_app),
            )
            await testing.truncate_schema(world.feedback.runtime.engine, "feedback")
            for name, service in (("routing", world.routing), ("feedback", world.feedback)):
                world.http[name] = await stack.enter_async_context(
                    testing.api_client(service.app, ADMIN_KEY)
                )
            await stack.enter_async_context(
                testing.running(world.intake, world.routing, world.feedback)
            )
            yield world
    finally:
        sink.stop()
        await testing.truncate_schema(world.routing.runtime.engine, "routing")
        async with world.routing.runtime.session_factory() as session, session.begin():
            await ensure_defaults(db_session=session)
        await world.intake.runtime.close()
        await world.routing.runtime.close()


@pytest.fixture
async def scheduled(system: System) -> AsyncIterator[System]:
    """The system with the feedback scheduler running as its own role."""
    stop = asyncio.Event()
    task = asyncio.create_task(system.feedback.workers["scheduler"](stop))
    try:
        yield system
    finally:
        stop.set()
        await task
