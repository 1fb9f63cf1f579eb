"""Handlers of the events the sla-monitor service consumes (complaint, case, feedback streams)."""

from __future__ import annotations

from collections.abc import Sequence

from tousu_shared.contracts import EVENT_TYPES, Envelope, Event
from tousu_shared.inbox import BatchPreparer, Handler, PermanentFailure

from tousu_sla.service_layer import services
from tousu_sla.service_layer.context import EventNotApplicable, SlaContext, SlaUnitOfWork
from tousu_sla.service_layer.translation import to_case_event

CONSUMED_TOPICS = ("complaint.events", "case.events", "feedback.events")


def event_handlers(ctx: SlaContext) -> dict[str, Handler]:
    """Event type → handler; every event of the consumed streams may start, meet, pause or
    resume a milestone (operators name the events in policies) or tell the case's level."""

    async def apply(uow: SlaUnitOfWork, event: Event, envelope: Envelope) -> None:
        try:
            await services.apply_event(uow, ctx, event.complaint_id, to_case_event(event, envelope))
        except EventNotApplicable as error:
            raise PermanentFailure(str(error)) from error

    return {event_type: apply for event_type in _consumed_types()}


def batch_preparer(ctx: SlaContext) -> BatchPreparer:
    """Lock and load every case a consumed batch applies to, in one go (see load_cases)."""
    consumed = set(_consumed_types())

    async def prepare(uow: SlaUnitOfWork, events: Sequence[Event]) -> None:
        case_ids = [event.complaint_id for event in events if event.event_type in consumed]
        await services.load_cases(uow, ctx, case_ids)

    return prepare


def _consumed_types() -> list[str]:
    return [
        event_type
        for (event_type, _version), cls in EVENT_TYPES.items()
        if cls.topic in CONSUMED_TOPICS
    ]
