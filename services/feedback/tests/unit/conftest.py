"""In-memory twins of the feedback unit of work, intake and the channels, for unit tests of
the use cases (no Kafka, no Postgres). Tests reach them through fixtures."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

import pytest
from contract_events import case_event, case_routed
from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.domain.policy import SurveyPolicy
from tousu_feedback.domain.records import CaseRef, OutboundMessage
from tousu_feedback.domain.survey import Survey
from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.ports import Contact, Delivery, DeliveryFailed
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWorkBase
from tousu_shared.clock import FixedClock
from tousu_shared.contracts.case import CaseResolved, CaseRouted
from tousu_shared.uow import FakeUnitOfWork


class FakeCases:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, CaseRef] = {}

    async def get(self, complaint_id: uuid.UUID) -> CaseRef | None:
        row = self.rows.get(complaint_id)
        return copy.copy(row) if row else None

    async def save(self, case: CaseRef) -> None:
        self.rows[case.complaint_id] = copy.copy(case)


class FakePolicies:
    def __init__(self) -> None:
        self.versions: dict[int, SurveyPolicy] = {0: SurveyPolicy()}

    async def current(self) -> tuple[int, SurveyPolicy]:
        version = max(self.versions)
        return version, self.versions[version]

    async def get(self, version: int) -> SurveyPolicy:
        return self.versions[version]

    async def add(self, version: int, policy: SurveyPolicy, **_: Any) -> None:
        self.versions[version] = policy


class FakeSurveys:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Survey] = {}
        self.next_action: dict[uuid.UUID, dt.datetime | None] = {}

    def _copy(self, survey: Survey) -> Survey:
        return copy.deepcopy(survey)

    async def get(self, survey_id: uuid.UUID) -> Survey | None:
        row = self.rows.get(survey_id)
        return self._copy(row) if row else None

    async def for_resolution(self, complaint_id: uuid.UUID, version: int) -> Survey | None:
        for row in self.rows.values():
            if row.complaint_id == complaint_id and row.resolution_version == version:
                return self._copy(row)
        return None

    async def open_for(self, complaint_id: uuid.UUID) -> Survey | None:
        for row in self.rows.values():
            if row.complaint_id == complaint_id and row.state.is_open:
                return self._copy(row)
        return None

    async def by_token(self, digest: str) -> Survey | None:
        for row in self.rows.values():
            if any(t.digest == digest for t in row.tokens):
                return self._copy(row)
        return None

    async def claim_due(self, now: dt.datetime, limit: int) -> list[Survey]:
        due = [sid for sid, at in self.next_action.items() if at is not None and at <= now]
        return [self._copy(self.rows[sid]) for sid in due[:limit]]

    async def add(self, survey: Survey, policy: SurveyPolicy) -> None:
        if any(
            r.complaint_id == survey.complaint_id
            and r.resolution_version == survey.resolution_version
            for r in self.rows.values()
        ):
            raise AssertionError("unique (complaint_id, resolution_version) violated")
        await self.save(survey, policy)

    async def save(self, survey: Survey, policy: SurveyPolicy) -> None:
        survey.new_history.clear()
        survey.new_attempts.clear()
        stored = self._copy(survey)
        stored._events = []
        self.rows[survey.id] = stored
        self.next_action[survey.id] = survey.next_action_at(policy)


class FakeMessages:
    def __init__(self) -> None:
        self.rows: list[OutboundMessage] = []

    async def add(self, message: OutboundMessage) -> None:
        self.rows.append(message)


class FakeFeedbackUnitOfWork(FakeUnitOfWork, FeedbackUnitOfWorkBase):
    """State lives across units of work, like a database's would."""

    def __init__(self) -> None:
        super().__init__()
        self.cases = FakeCases()
        self.policies = FakePolicies()
        self.surveys = FakeSurveys()
        self.messages = FakeMessages()


class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[Delivery] = []
        self.failing = False

    async def send(self, delivery: Delivery) -> str:
        if self.failing:
            raise DeliveryFailed("down")
        self.sent.append(delivery)
        return f"ref-{len(self.sent)}"

    async def close(self) -> None:
        pass


class FakeIntake:
    def __init__(self) -> None:
        self.contacts: dict[str, Contact] = {}
        self.filed: dict[str, uuid.UUID] = {}

    async def contact(self, url: str) -> Contact:
        return self.contacts[url]

    async def file_complaint(
        self, *, idempotency_key: str, contact: Contact, description: str
    ) -> uuid.UUID:
        return self.filed.setdefault(idempotency_key, uuid.uuid4())

    async def close(self) -> None:
        pass


BEIJING_NOON = dt.datetime(2026, 12, 1, 4, 0, tzinfo=dt.UTC)  # a Tuesday, 12:00 Beijing


class World:
    """One fake feedback service: its unit of work, clock, channels and intake."""

    def __init__(self) -> None:
        self.uow = FakeFeedbackUnitOfWork()
        self.clock = FixedClock(BEIJING_NOON)
        self.email = FakeChannel()
        self.sms = FakeChannel()
        self.intake = FakeIntake()
        self.ctx = FeedbackContext(
            uow=lambda: self.uow,
            clock=self.clock,
            channels={OutboundChannel.EMAIL: self.email, OutboundChannel.SMS: self.sms},
            intake=self.intake,
            public_base_url="https://feedback.test",
        )

    def routed(self, complaint_id: uuid.UUID, *, urgency: str = "routine") -> CaseRouted:
        url = f"https://intake.test/v1/complaints/{complaint_id}?include=contact"
        self.intake.contacts[url] = Contact(
            channel="email",
            tracking_code="TS-TEST",
            customer_tier="regular",
            email="wang@example.com",
            phone="13800138000",
        )
        return case_routed(complaint_id, self.clock(), urgency=urgency, contact_details_url=url)

    def resolved(self, complaint_id: uuid.UUID, version: int = 7) -> CaseResolved:
        return case_event(
            CaseResolved,
            complaint_id,
            self.clock(),
            case_version=version,
            resolution="refund paid",
            root_cause="transport",
            responsible_person="logistics",
        )


@pytest.fixture
def world() -> World:
    return World()
