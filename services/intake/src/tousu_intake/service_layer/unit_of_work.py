"""Intake's unit of work: the complaint, its events and its audit entries commit together."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tousu_shared.audit import AuditEntry, AuditLog
from tousu_shared.outbox import Outbox
from tousu_shared.uow import OutgoingMessage, SqlUnitOfWork, UnitOfWorkPort

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.adapters.model_store import SqlModelRegistry
from tousu_intake.adapters.repository import (
    ComplaintRepository,
    IdempotencyKeys,
    RuleSets,
    SqlComplaintRepository,
    SqlIdempotencyKeys,
    SqlRuleSets,
)
from tousu_intake.domain.classification.textmodel import TextModel


class PromotedModels(Protocol):
    """Which trained model intake classifies with (the registry's newest promoted one)."""

    async def promoted_version(self) -> str | None: ...

    async def promoted_model(self) -> TextModel | None: ...


class IntakeWork(UnitOfWorkPort, Protocol):
    """What intake's use cases and handlers use of a unit of work (SQL or fake alike)."""

    complaints: ComplaintRepository
    idempotency: IdempotencyKeys
    rulesets: RuleSets
    models: PromotedModels


class IntakeUnitOfWork(SqlUnitOfWork):
    """One transaction on the intake schema, with its repositories bound to it."""

    complaints: ComplaintRepository
    idempotency: IdempotencyKeys
    rulesets: RuleSets
    models: PromotedModels

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
        self._complaints = SqlComplaintRepository(session, self._cipher)
        self.complaints = self._complaints
        self.idempotency = SqlIdempotencyKeys(session)
        self.rulesets = SqlRuleSets(session)
        self.models = SqlModelRegistry(session)

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        await self._complaints.write_unsaved()  # saved complaints first, then their events
        await super()._store(messages, entries)

    async def flush(self) -> None:
        await self._complaints.write_unsaved()
        await super().flush()
