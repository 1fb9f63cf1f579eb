"""Handlers of the events the sla-monitor service consumes (complaint, case, feedback streams)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.contracts import EVENT_TYPES, Envelope, Event
from tousu_shared.inbox import Handler, PermanentFailure

from tousu_sla.service_layer import services
from tousu_sla.service_layer.translation import to_case_event

CONSUMED_TOPICS = ("complaint.events", "case.events", "feedback.events")


def event_handlers(ctx: services.SlaContext) -> dict[str, Handler]:
    """Event type → handler; every event of the consumed streams may start, meet, pause or
    resume a milestone, since operators name the events in policies."""

    async def apply(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        try:
            await services.apply_event(
                event.complaint_id,
                to_case_event(event, envelope),
                db_session=session,
                ctx=ctx,
            )
        except services.EventNotApplicable as error:
            raise PermanentFailure(str(error)) from error

    return {
        event_type: apply
        for (event_type, _version), cls in EVENT_TYPES.items()
        if cls.topic in CONSUMED_TOPICS
    }
