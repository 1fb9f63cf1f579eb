"""The analytics unit of work: one transaction over the read model and the service's state."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tousu_shared.audit import AuditEntry, AuditLog
from tousu_shared.outbox import Outbox
from tousu_shared.uow import OutgoingMessage, SqlUnitOfWork

from tousu_analytics.adapters.kpi_queries import KpiQueries
from tousu_analytics.adapters.orm import LIVE, ReadModelTables
from tousu_analytics.adapters.read_model import ReadModelWriter
from tousu_analytics.adapters.repositories import (
    ActionRepository,
    AlertRepository,
    DenominatorRepository,
    ReportRepository,
)


class AnalyticsUnitOfWork(SqlUnitOfWork):
    """Binds the read-model writer (on one generation of tables) and the repositories."""

    read_model: ReadModelWriter
    kpis: KpiQueries
    alerts: AlertRepository
    actions: ActionRepository
    denominators: DenominatorRepository
    reports: ReportRepository

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        audit_log: AuditLog,
        tables: ReadModelTables = LIVE,
    ) -> None:
        super().__init__(session_factory, outbox, audit_log)
        self.tables = tables

    def bind(self, session: AsyncSession) -> None:
        self.read_model = ReadModelWriter(session, self.tables)
        self.kpis = KpiQueries(session, self.tables)
        self.alerts = AlertRepository(session)
        self.actions = ActionRepository(session)
        self.denominators = DenominatorRepository(session)
        self.reports = ReportRepository(session)

    async def flush(self) -> None:
        await self.read_model.write_staged()
        await super().flush()

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        await self.read_model.write_staged()  # the batch's read-model changes, then the rest
        await super()._store(messages, entries)


def analytics_uow_factory(
    session_factory: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    audit_log: AuditLog,
    tables: ReadModelTables = LIVE,
) -> Callable[[], AnalyticsUnitOfWork]:
    """New units of work writing to one generation of the read model."""

    def factory() -> AnalyticsUnitOfWork:
        return AnalyticsUnitOfWork(session_factory, outbox, audit_log, tables)

    return factory
