"""Routing's unit of work: its repositories on one transaction, and how a case's changes go in.

``RoutingWork`` is what use cases see: the repositories and the two steps that put a case's
changes into the transaction (``add_case`` / ``save_case``: write the case, track its
events, audit each new transition). ``RoutingUnitOfWork`` binds the repositories to the
session of a :class:`~tousu_shared.uow.SqlUnitOfWork`; the unit tests' fake binds
in-memory ones to a :class:`~tousu_shared.uow.FakeUnitOfWork`. Either commits once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.audit import AuditEntry
from tousu_shared.auth import Principal
from tousu_shared.uow import OutgoingMessage, SqlUnitOfWork, UnitOfWork

from tousu_routing.adapters.case_repository import CaseRepository
from tousu_routing.adapters.complaint_facts import ComplaintFactRepository
from tousu_routing.adapters.department_repository import DepartmentRepository
from tousu_routing.adapters.rule_repository import RuleRepository
from tousu_routing.domain.record import CaseRecord
from tousu_routing.domain.workflow import Transition

if TYPE_CHECKING:
    from tousu_routing.service_layer.openings import Openings


class RoutingWork(UnitOfWork):
    """The repositories routing's use cases work with, and the step that stores a case."""

    cases: CaseRepository
    complaint_facts: ComplaintFactRepository
    departments: DepartmentRepository
    rules: RuleRepository
    # What a consumed batch's case openings share, read once for the transaction.
    openings: Openings | None = None

    async def _begin(self) -> None:
        self.openings = None  # prepared for one transaction only
        await super()._begin()

    async def add_case(self, record: CaseRecord, principal: Principal, now: datetime) -> bool:
        """Insert a new case with its events and audit; False if the complaint has one already."""
        transitions = record.unsaved_transitions
        if not await self.cases.add(record, now):
            return False
        self._track_case(record, principal, transitions)
        return True

    async def save_case(self, record: CaseRecord, principal: Principal, now: datetime) -> None:
        """Write a changed case (its row lock held) with its events and audit entries."""
        transitions = record.unsaved_transitions
        await self.cases.save(record, now)
        self._track_case(record, principal, transitions)

    def _track_case(
        self, record: CaseRecord, principal: Principal, transitions: list[Transition]
    ) -> None:
        # The record hands over its events at commit; the audit keeps who moved it and how.
        self.track(record)
        for transition in transitions:
            self.audit(
                principal,
                f"case.{transition.action}",
                "case",
                record.case.case_id,
                complaint_id=uuid.UUID(record.case.complaint_id),
                details={
                    "version": transition.version,
                    "from_state": str(transition.from_state) if transition.from_state else None,
                    "to_state": str(transition.to_state),
                    "occurred_at": transition.occurred_at.isoformat(),
                    "department": record.case.department,
                    **transition.details,
                },
            )


class RoutingUnitOfWork(RoutingWork, SqlUnitOfWork):
    """Routing's repositories on one Postgres transaction."""

    def bind(self, session: AsyncSession) -> None:
        self.cases = CaseRepository(session)
        self.complaint_facts = ComplaintFactRepository(session)
        self.departments = DepartmentRepository(session, self.cases)
        self.rules = RuleRepository(session)

    async def flush(self) -> None:
        await self._write_unsaved()
        await super().flush()

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        await self._write_unsaved()
        await super()._store(messages, entries)

    async def _write_unsaved(self) -> None:
        """What the repositories kept back to write together: new cases, complaint facts."""
        await self.cases.write_unsaved()
        await self.complaint_facts.write_unsaved()
