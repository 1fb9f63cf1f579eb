"""Handlers of the case and SLA events intake follows, so a customer can track their complaint."""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts import case as case_events
from tousu_shared.contracts import sla as sla_events
from tousu_shared.inbox import Handler
from tousu_shared.runtime import Runtime

from tousu_intake.adapters.orm import complaint

# The customer-visible status each case event leads to.
STATUS_AFTER = {
    case_events.CaseRouted: "routed",
    case_events.CaseTransferred: "routed",
    case_events.CaseAcknowledged: "acknowledged",
    case_events.InvestigationStarted: "investigating",
    case_events.CaseReopened: "investigating",
    case_events.SolutionProposed: "solution_proposed",
    case_events.CaseResolved: "resolved",
    case_events.CaseClosed: "closed",
}


async def follow_case(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """Mirror the case's status and department for tracking and department-bound reads."""
    status = STATUS_AFTER[type(event)]
    await session.execute(
        complaint.update()
        .where(complaint.c.id == event.complaint_id)
        .values(
            status=status,
            department=event.department,
            status_changed_at=event.occurred_at,
        )
    )


async def follow_deadline(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """Keep the due dates the customer may see: set when a milestone starts, dropped when met."""
    key = sa.literal(event.milestone)
    if isinstance(event, sla_events.SlaMilestoneStarted):
        value = complaint.c.due_dates.op("||")(
            sa.func.jsonb_build_object(key, event.due_at.astimezone(UTC).isoformat())
        )
    else:
        value = complaint.c.due_dates.op("-")(key)
    await session.execute(
        complaint.update().where(complaint.c.id == event.complaint_id).values(due_dates=value)
    )


def event_handlers(runtime: Runtime) -> dict[str, Handler]:
    """Event type → handler."""
    handlers: dict[str, Handler] = {cls.event_type: follow_case for cls in STATUS_AFTER}
    handlers[sla_events.SlaMilestoneStarted.event_type] = follow_deadline
    handlers[sla_events.SlaMet.event_type] = follow_deadline
    return handlers
