"""Intake's unit of work: the complaint, its events and its audit entries commit together."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tousu_shared.audit import AuditLog
from tousu_shared.auth import Principal
from tousu_shared.outbox import Outbox
from tousu_shared.uow import EventSource, SqlUnitOfWork

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.adapters.repository import (
    ComplaintRepository,
    IdempotencyKeys,
    RuleSets,
    SqlComplaintRepository,
    SqlIdempotencyKeys,
    SqlRuleSets,
)


class IntakeWork(Protocol):
    """What intake's use cases and handlers use of a unit of work (SQL or fake alike)."""

    complaints: ComplaintRepository
    idempotency: IdempotencyKeys
    rulesets: RuleSets

    def track(self, source: EventSource) -> None: ...

    def audit(
        self,
        principal: Principal,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        *,
        complaint_id: uuid.UUID | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class IntakeUnitOfWork(SqlUnitOfWork):
    """One transaction on the intake schema, with its repositories bound to it."""

    complaints: ComplaintRepository
    idempotency: IdempotencyKeys
    rulesets: RuleSets

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        audit_log: AuditLog,
        cipher: FieldCipher,
    ) -> None:
        super().__init__(session_factory, outbox, audit_log)
        self._cipher = cipher

    def bind(self, session: AsyncSession) -> None:
        self.complaints = SqlComplaintRepository(session, self._cipher)
        self.idempotency = SqlIdempotencyKeys(session)
        self.rulesets = SqlRuleSets(session)
