"""The feedback service's unit of work and the repositories its use cases see.

:class:`FeedbackUnitOfWork` binds the SQL repositories to the transaction's session; unit
tests use ``tests/unit/fakes.py``'s in-memory twin with the same attributes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.uow import SqlUnitOfWork, UnitOfWork

from tousu_feedback.adapters import repository
from tousu_feedback.domain.policy import SurveyPolicy
from tousu_feedback.domain.records import CaseRef, OutboundMessage
from tousu_feedback.domain.survey import Survey


class CaseRepository(Protocol):
    async def get(self, complaint_id: uuid.UUID) -> CaseRef | None: ...
    async def save(self, case: CaseRef) -> None: ...


class PolicyRepository(Protocol):
    async def current(self) -> tuple[int, SurveyPolicy]: ...
    async def get(self, version: int) -> SurveyPolicy: ...
    async def add(
        self, version: int, policy: SurveyPolicy, *, comment: str, actor: str, at: dt.datetime
    ) -> None: ...


class SurveyRepository(Protocol):
    async def get(self, survey_id: uuid.UUID) -> Survey | None: ...
    async def for_resolution(
        self, complaint_id: uuid.UUID, resolution_version: int
    ) -> Survey | None: ...
    async def open_for(self, complaint_id: uuid.UUID) -> Survey | None: ...
    async def by_token(self, digest: str) -> Survey | None: ...
    async def claim_due(self, now: dt.datetime, limit: int) -> list[Survey]: ...
    async def add(self, survey: Survey, policy: SurveyPolicy) -> None: ...
    async def save(self, survey: Survey, policy: SurveyPolicy) -> None: ...


class MessageRepository(Protocol):
    async def add(self, message: OutboundMessage) -> None: ...


class FeedbackUnitOfWorkBase(UnitOfWork):
    """What every feedback unit of work offers its use cases."""

    cases: CaseRepository
    policies: PolicyRepository
    surveys: SurveyRepository
    messages: MessageRepository


class FeedbackUnitOfWork(SqlUnitOfWork, FeedbackUnitOfWorkBase):
    """One transaction on the ``feedback`` schema with the service's repositories."""

    def bind(self, session: AsyncSession) -> None:
        self.cases = repository.SqlCaseRepository(session)
        self.policies = repository.SqlPolicyRepository(session)
        self.surveys = repository.SqlSurveyRepository(session)
        self.messages = repository.SqlMessageRepository(session)
