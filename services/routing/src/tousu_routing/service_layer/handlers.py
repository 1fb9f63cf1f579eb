"""Handlers of the events the routing service consumes: ``(uow, event, envelope)``.

Each runs in the unit of work the inbox consumer opened for the event (the inbox row, the
effect and the events it publishes commit together), so none of them commits. An event that
can never apply raises ``PermanentFailure`` and goes to the dead-letter topic at once.

``SlaBreached`` is not consumed: a breach escalates a case only through the ``SlaEscalated``
the SLA monitor sends with it (the one escalation trigger).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.complaint import (
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
)
from tousu_shared.contracts.feedback import CustomerConfirmed, CustomerDissatisfied, SurveyExpired
from tousu_shared.contracts.sla import SlaEscalated
from tousu_shared.inbox import Handler, PermanentFailure

from tousu_routing.domain import ClosureReason
from tousu_routing.service_layer import cases, reactions
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.unit_of_work import RoutingWork

# What a handler does with its event, in the unit of work it is given.
Reaction = Callable[[RoutingWork, Event], Awaitable[object]]


def _handler(react: Reaction) -> Handler:
    """A consumer handler; an event about a complaint or case routing never saw is a dead letter."""

    async def handle(uow: RoutingWork, event: Event, envelope: Envelope) -> None:
        try:
            await react(uow, event)
        except (cases.ComplaintNotReceived, reactions.CaseNotOpened) as exc:
            # One complaint's events share a partition, so what is missing was dead-lettered
            # or never sent; waiting would not bring it.
            raise PermanentFailure(str(exc)) from exc

    return handle


def event_handlers(ctx: RoutingContext) -> dict[str, Handler]:
    """Event type → handler."""

    async def received(uow: RoutingWork, event: Event) -> None:
        assert isinstance(event, ComplaintReceived)
        await cases.remember_complaint(ctx, uow, event)

    async def classified(uow: RoutingWork, event: Event) -> None:
        assert isinstance(event, ComplaintClassified)
        await cases.open_case(ctx, uow, event.complaint_id, event.classification)

    async def reclassified(uow: RoutingWork, event: Event) -> None:
        assert isinstance(event, ComplaintReclassified)
        await reactions.apply_reclassification(
            ctx,
            uow,
            event.complaint_id,
            event.classification,
            reason=event.reason,
            corrected_by=event.corrected_by,
        )

    async def escalated(uow: RoutingWork, event: Event) -> None:
        assert isinstance(event, SlaEscalated)
        await reactions.escalate_for_sla(ctx, uow, event)

    async def dissatisfied(uow: RoutingWork, event: Event) -> None:
        assert isinstance(event, CustomerDissatisfied)
        await reactions.reopen_for_dissatisfaction(
            ctx, uow, event.complaint_id, comment=event.comment, satisfaction=event.satisfaction
        )

    async def confirmed(uow: RoutingWork, event: Event) -> None:
        assert isinstance(event, CustomerConfirmed)
        await reactions.close_after_feedback(
            ctx,
            uow,
            event.complaint_id,
            reason=ClosureReason.CUSTOMER_CONFIRMED,
            happened_at=event.confirmed_at,
        )

    async def expired(uow: RoutingWork, event: Event) -> None:
        assert isinstance(event, SurveyExpired)
        await reactions.close_after_feedback(
            ctx, uow, event.complaint_id, reason=ClosureReason.NO_RESPONSE, happened_at=None
        )

    reactions_by_type: dict[type[Event], Reaction] = {
        ComplaintReceived: received,
        ComplaintClassified: classified,
        ComplaintReclassified: reclassified,
        SlaEscalated: escalated,
        CustomerDissatisfied: dissatisfied,
        CustomerConfirmed: confirmed,
        SurveyExpired: expired,
    }
    return {
        event_type.event_type: _handler(react) for event_type, react in reactions_by_type.items()
    }
