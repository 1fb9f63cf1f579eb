"""Handlers of the events the analytics service consumes: each one feeds the read model."""

from __future__ import annotations

from tousu_shared.contracts import Envelope, Event
from tousu_shared.inbox import Handler

from tousu_analytics.domain.case_timeline import TIMELINE_EVENTS, console_changes
from tousu_analytics.domain.projection import PROJECTORS, changes_for
from tousu_analytics.service_layer.unit_of_work import AnalyticsUnitOfWork


async def project(uow: AnalyticsUnitOfWork, event: Event, envelope: Envelope) -> None:
    """Stage one event's changes to the read model; they are written with the batch's, when
    the consumer commits."""
    await uow.read_model.stage(
        [
            *changes_for(event, envelope.id),
            *console_changes(event, envelope.id, envelope.time),
        ]
    )


def event_handlers() -> dict[str, Handler]:
    """Event type → handler: every event the KPIs count or the console's timeline shows."""
    return {event_type.event_type: project for event_type in {*PROJECTORS, *TIMELINE_EVENTS}}
