"""Handlers of the case and SLA events intake follows, so a customer can track their complaint.

Each takes ``(uow, event, envelope)``: the consumer opens the unit of work, records the inbox
row and commits after the handler, so the effect happens once per event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tousu_shared.contracts import Envelope, Event
from tousu_shared.inbox import Handler, PermanentFailure

from tousu_intake.domain import tracking
from tousu_intake.domain.complaint import Complaint
from tousu_intake.service_layer.unit_of_work import IntakeWork


async def follow_case(uow: IntakeWork, event: Event, envelope: Envelope) -> None:
    """Mirror the case's status and department for tracking and department-bound reads."""
    if not isinstance(event, tracking.CaseStatusEvent):
        raise PermanentFailure(f"{envelope.type} does not change a case's status")
    await _apply(uow, event.complaint_id, lambda complaint: complaint.follow_case(event))


async def follow_deadline(uow: IntakeWork, event: Event, envelope: Envelope) -> None:
    """Keep the due dates the customer sees in step with the SLA clocks."""
    if not isinstance(event, tracking.DeadlineEvent):
        raise PermanentFailure(f"{envelope.type} does not move a deadline")
    await _apply(uow, event.complaint_id, lambda complaint: complaint.follow_deadline(event))


async def _apply(
    uow: IntakeWork, complaint_id: uuid.UUID, change: Callable[[Complaint], None]
) -> None:
    complaint = await uow.complaints.get(complaint_id, for_update=True)
    if complaint is None:
        return  # not a complaint intake recorded (a foreign or test case): nothing to follow
    change(complaint)
    await uow.complaints.save(complaint)


def event_handlers() -> dict[str, Handler]:
    """Event type → handler."""
    handlers: dict[str, Handler] = {cls.event_type: follow_case for cls in tracking.STATUS_AFTER}
    handlers.update({cls.event_type: follow_deadline for cls in tracking.DEADLINE_EFFECT})
    return handlers
